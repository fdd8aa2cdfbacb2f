import type { CheckStep } from '../../runbook/types.js';
import { recordEvent } from '../journal.js';
import { booleanQuery } from './checkpoint.js';
import type { StepKind, UndoKind } from './kind.js';
import { StepFailure } from './runner.js';

/** A check reads and changes nothing: it holds, or the run stops there. */
export const checkStep: StepKind<CheckStep> = {
  label: () => 'check',
  transactional: () => true,
  undo: () => ({ kind: 'nothing-to-undo' }),
  verify: () => null,
  async apply(r, step, base) {
    const ok = await booleanQuery(r.client, step.query);
    if (!ok) throw new StepFailure(step.id, 'up', `check failed: ${step.message}`);
    await recordEvent(r.client, { ...base, status: 'done' });
  },
};

/** Undoing a check is recorded all the same, so the journal no longer counts it as applied. */
export const nothingToUndo: UndoKind<{ kind: 'nothing-to-undo' }> = {
  transactional: () => true,
  async run(r, _undo, base) {
    await recordEvent(r.client, { ...base, transactional: true, status: 'done' });
  },
};
