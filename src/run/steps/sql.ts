import { pausePoint, pauseWanted } from '../../faults.js';
import type { SqlStep } from '../../runbook/types.js';
import { eventStatement, recordEvent, type Undo } from '../journal.js';
import {
  booleanQuery,
  failed,
  heldLocks,
  inOneQuery,
  inTransaction,
  outsideTransaction,
  runStatements,
  withSessionTimeouts,
} from './checkpoint.js';
import type { StepKind, UndoKind } from './kind.js';

/** A SQL script: in one transaction with its checkpoint, or statement by statement between `started` and `done`. */
export const sqlStep: StepKind<SqlStep> = {
  label: (step) => (step.up.transaction ? 'sql' : 'sql, no transaction'),
  transactional: (step) => step.up.transaction,
  undo: (step) =>
    step.down
      ? { kind: 'sql', text: step.down.text, transaction: step.down.transaction }
      : { kind: 'none' },
  verify: (step) => step.verify ?? null,
  async apply(r, step, base) {
    if (!step.up.transaction) {
      await outsideTransaction(r, base, async () => {
        await withSessionTimeouts(r.client, step.timeouts, () =>
          runStatements(r.client, step.up.text),
        );
        if (step.verify && !(await booleanQuery(r.client, step.verify))) {
          throw new Error('its verify query returned false after up');
        }
      });
      return;
    }
    // Nothing to do between the script and its checkpoint: both go in one round trip.
    if (!step.verify && !r.observeLocks && !pauseWanted(`step:${step.id}:inside`)) {
      const checkpoint = eventStatement({ ...base, status: 'done' });
      await inOneQuery(r.client, step.timeouts, step.up.text, checkpoint).catch((err: unknown) =>
        failed(r, base, err),
      );
      return;
    }
    await inTransaction(r.client, step.timeouts, async () => {
      await r.client.query(step.up.text);
      if (step.verify && !(await booleanQuery(r.client, step.verify))) {
        throw new Error(`its verify query returned false after up`);
      }
      await pausePoint(`step:${step.id}:inside`);
      if (r.observeLocks) r.observeLocks(step.id, await heldLocks(r.client));
      await recordEvent(r.client, { ...base, status: 'done' });
    }).catch((err: unknown) => failed(r, base, err));
  },
};

export const sqlUndo: UndoKind<Extract<Undo, { kind: 'sql' }>> = {
  transactional: (undo) => undo.transaction,
  async run(r, undo, base, timeouts) {
    await pausePoint(`undo:${base.stepId}:before`);
    if (!undo.transaction) {
      await outsideTransaction(r, base, () =>
        withSessionTimeouts(r.client, timeouts, () => runStatements(r.client, undo.text)),
      );
      return;
    }
    await inTransaction(r.client, timeouts, async () => {
      await r.client.query(undo.text);
      await recordEvent(r.client, { ...base, status: 'done' });
    }).catch((err: unknown) => failed(r, base, err));
  },
};
