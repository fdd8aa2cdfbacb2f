import type pg from 'pg';
import type { AppliedStep } from '../runbook/plan.js';
import { readEvents, readRuns, type RunRow, type StepEvent } from './journal.js';
import { lockHolder, type LockHolder } from './lock.js';
import { stepStates, type StepState } from './state.js';

/** The journal as `plan`, `status` and `gate --runbook` read it, without changing anything. */
export interface JournalView {
  runs: RunRow[];
  events: StepEvent[];
  holder: LockHolder | undefined;
}

export async function readJournal(client: pg.ClientBase): Promise<JournalView> {
  return {
    runs: await readRuns(client),
    events: await readEvents(client),
    holder: await lockHolder(client),
  };
}

/** The runbook's steps that are, or may be, in the database: what planning needs. */
export function appliedSteps(events: StepEvent[], runbook: string): AppliedStep[] {
  return [...stepStates(events, runbook).values()]
    .filter((s: StepState) => s.effect !== 'not-applied')
    .map((s) => ({
      stepId: s.stepId,
      checksum: s.checksum,
      status: s.effect === 'applied' ? 'done' : 'in-doubt',
    }));
}
