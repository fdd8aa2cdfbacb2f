import { withClient } from './db.js';
import { readFreeze, unfreezeDatabase, writableDuringFreeze, type Freeze } from './run/freeze.js';
import { readJournal } from './run/journal-view.js';
import type { RunRow } from './run/journal.js';
import type { LockHolder } from './run/lock.js';
import { isMoveId } from './run/runner-id.js';
import { stepStates, withKnexTruth, type StepState } from './run/state.js';
import { describeTarget, type Target } from './target.js';

/** Why a knex step's state differs from what lifeboat's journal recorded. */
const OUTSIDE = {
  applied: 'knex lists it as applied: applied outside lifeboat, which never undoes it',
  undone: 'knex no longer lists it: undone outside lifeboat (knex migrate:rollback or :down)',
};

/** What `lifeboat status` finds: the lock, the freeze, the last run and its steps. */
export interface TargetStatus {
  target: string;
  lock: LockHolder | null;
  lastRun: RunRow | null;
  steps: StatusStep[];
  runs: number;
  /** A freeze whose run had ended, lifted by this call. */
  unfrozen: Freeze | null;
  /** A freeze still in place: its run is unfinished. */
  frozen: Freeze | null;
}

export interface StatusStep {
  id: string;
  state: string;
  since: string;
  note: string | null;
}

/**
 * The current or last run on a target, from its journal. A freeze whose run
 * has ended (crashed after finishing, or gone) is lifted here; an unfinished
 * run keeps it: it is what lets its rollback restore the backup losslessly,
 * and so does an open move (its journal is in lifeboat's directory).
 */
export async function readStatus(target: Target): Promise<TargetStatus> {
  const { view, thawed, frozen } = await withClient(
    writableDuringFreeze(target),
    async (client) => {
      const view = await readJournal(client);
      const freeze = await readFreeze(client, target.database);
      const run = view.runs.find((r) => r.id === freeze?.runId);
      const unfinished = run && ['running', 'rolling-back'].includes(run.status);
      // A move's freeze is never a crashed run's: it holds until the move is finished or rolled back.
      const ofMove = isMoveId(freeze?.runId);
      const thawed =
        freeze && !view.holder && !unfinished && !ofMove
          ? await unfreezeDatabase(client, target.database)
          : undefined;
      return { view, thawed, frozen: thawed ? undefined : freeze };
    },
  );
  const last = view.runs.at(-1);
  let steps: StatusStep[] = [];
  if (last) {
    const states = withKnexTruth(stepStates(view.events, last.runbook), view.knex);
    const touched = view.events.filter((e) => e.runId === last.id);
    const ids = [...new Set(touched.map((e) => e.stepId))];
    const live = runIsLive(last, view.holder);
    steps = ids.map((id) => {
      const s = states.get(id)!;
      return {
        id,
        state: stepState(s, live),
        since: s.last.startedAt,
        note: s.outside ? OUTSIDE[s.outside] : s.last.error,
      };
    });
  }
  return {
    target: describeTarget(target),
    lock: view.holder ?? null,
    lastRun: last ?? null,
    steps,
    runs: view.runs.length,
    unfrozen: thawed ?? null,
    frozen: frozen ?? null,
  };
}

/**
 * The run is alive when the lock is held by it (or, for a rollback, which
 * holds the lock without naming a run, by anyone while the run is unfinished):
 * a step it has started is then still running, not in doubt.
 */
export function runIsLive(run: RunRow, holder: LockHolder | undefined): boolean {
  if (!holder || !['running', 'rolling-back'].includes(run.status)) return false;
  return holder.run ? holder.run.id === run.id : true;
}

/** What `status` calls a step: `running` while its run is alive, `in doubt` only once it is not. */
export function stepState(s: StepState, live: boolean): string {
  if (s.effect !== 'in-doubt') return s.effect;
  if (live && s.last.status === 'started')
    return s.last.direction === 'up' ? 'running' : 'being undone';
  return `in doubt (${s.last.direction} ${s.last.status})`;
}
