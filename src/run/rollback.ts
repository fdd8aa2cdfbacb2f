import type pg from 'pg';
import { compareFingerprints, type Difference, type Fingerprints } from '../fingerprint.js';
import { fingerprintDatabase } from '../fingerprint-session.js';
import type { Progress } from '../progress.js';
import type { Timeouts } from '../runbook/types.js';
import { probeInDoubt, recordResolution, undoStep, type StepRunner } from './execute.js';
import {
  JOURNAL_SCHEMA,
  dropCreatedTables,
  loadPreFingerprints,
  readEvents,
  setRunStatus,
} from './journal.js';
import { readKnexTruth } from './journal-view.js';
import { planRollback } from './ladder.js';
import { settleStaleSessions } from './stale-sessions.js';
import { touchedByRun, type StepState } from './state.js';

export type Resolutions = Record<string, 'applied' | 'not-applied'>;

export interface StepOutcome {
  id: string;
  outcome:
    | 'applied'
    | 'already-applied'
    | 'failed'
    | 'interrupted'
    | 'undone'
    | 'not-run'
    | 'undo-failed'
    | 'cannot-undo'
    | 'skipped';
  durationMs?: number;
  error?: string;
}

/**
 * An incomplete rollback leaves the run `rolling-back`: the caller may still
 * take the last rung (restore), and only then records `needs-operator`.
 */
export interface RollbackResult {
  complete: boolean;
  /** Why it stopped, when it did: what `needs-operator` records. */
  stoppedBecause?: string;
  outcomes: StepOutcome[];
  /** Why the ladder stopped, when it did. */
  blockers: { stepId: string; reason: string }[];
  /** Steps still applied (or in doubt) afterwards, newest first. */
  remaining: string[];
  proof?: { equal: boolean; differences: Difference[] };
  /**
   * The run stopped before its first step and before its pre-run fingerprints
   * were recorded: it applied nothing, so there is nothing to undo or prove.
   */
  nothingApplied?: boolean;
}

/**
 * Decide steps left in doubt: the operator's --resolve, else the journal's
 * verify query or knex's own table. Returns the ids nothing could decide.
 */
export async function resolveInDoubt(
  r: StepRunner,
  states: StepState[],
  resolutions: Resolutions,
): Promise<string[]> {
  const undecided: string[] = [];
  // Only a crash leaves `started`; a step that failed part-way is undone by its down instead.
  const doubtful = states.filter((s) => s.effect === 'in-doubt' && s.last.status === 'started');
  if (doubtful.length > 0 && r.stale) {
    // Its work may still be running on the server: no query can tell what it did until it ends.
    const runs = [...new Set(doubtful.map((s) => s.last.runId))];
    await settleStaleSessions(r.client, runs, r.stale);
  }
  for (const state of doubtful) {
    const given = resolutions[state.stepId];
    const runner = { ...r, runId: state.last.runId };
    const decided = given
      ? { applied: given === 'applied', how: 'by the operator (--resolve)' }
      : await probeInDoubt(runner, state);
    if (decided === undefined) {
      undecided.push(state.stepId);
      continue;
    }
    if (!given && !decided.applied && halfDoneCanBeCleared(state)) {
      // "Not applied" may still mean half done (an invalid index): its down clears that first.
      try {
        await undoStep(runner, state, {});
      } catch {
        undecided.push(state.stepId);
        continue;
      }
      decided.how += '; its down cleared what it had half done';
    }
    await recordResolution(runner, state, decided.applied, decided.how);
  }
  return undecided;
}

/** A non-transactional sql or shell up stopped part-way, with a down to clear what it left. */
function halfDoneCanBeCleared(state: StepState): boolean {
  return (
    state.last.direction === 'up' &&
    !state.last.transactional &&
    (state.undo?.kind === 'sql' || state.undo?.kind === 'shell')
  );
}

/**
 * Undo what a run applied, down the ladder, then prove the result against the
 * fingerprints taken before the run's first step.
 */
export async function rollbackRun(opts: {
  runner: StepRunner;
  runbook: string;
  timeouts: (stepId: string) => Timeouts;
  resolutions: Resolutions;
  progress: Progress;
}): Promise<RollbackResult> {
  const { runner: r, runbook, progress } = opts;
  await setRunStatus(r.client, r.runId, 'rolling-back');
  const touchedNow = async (): Promise<StepState[]> => {
    const events = await readEvents(r.client);
    return touchedByRun(events, r.runId, runbook, await readKnexTruth(r.client, events));
  };

  // The operator undid a step by hand (one with no working down) and says so: that rung is taken.
  for (const state of await touchedNow()) {
    if (opts.resolutions[state.stepId] === 'not-applied' && state.effect === 'applied') {
      await recordResolution(r, state, false, 'undone by hand, as the operator said (--resolve)');
    }
  }
  const undecided = await resolveInDoubt(r, await touchedNow(), opts.resolutions);
  const touched = await touchedNow();
  const ladder = planRollback(touched);
  const blockers = [
    ...undecided.map((stepId) => ({
      stepId,
      reason: 'it is in doubt (started, never recorded done) and has no verify query to decide it',
    })),
    ...(ladder.possible ? [] : ladder.blockers.filter((b) => !undecided.includes(b.stepId))),
  ];
  const outcomes: StepOutcome[] = [];
  if (blockers.length > 0) {
    for (const b of blockers)
      outcomes.push({ id: b.stepId, outcome: 'cannot-undo', error: b.reason });
    return {
      complete: false,
      stoppedBecause: `rollback stopped: ${blockers.map((b) => `${b.stepId} ${b.reason}`).join('; ')}`,
      outcomes,
      blockers,
      remaining: touched.map((s) => s.stepId),
    };
  }
  if (touched.length === 0 && !(await hasPreFingerprints(r.client, r.runId))) {
    // Stopped between recording the run and fingerprinting: no step ran, the database is as before.
    await dropCreatedTables(r.client, r.runId);
    await setRunStatus(r.client, r.runId, 'rolled-back', NOTHING_APPLIED);
    return { complete: true, outcomes, blockers: [], remaining: [], nothingApplied: true };
  }
  for (const action of ladder.actions) {
    if (action.kind === 'skip') {
      // Recorded all the same, so the journal no longer counts the check as part of the run.
      await undoStep(r, action.state, {});
      outcomes.push({ id: action.stepId, outcome: 'skipped' });
      continue;
    }
    const started = Date.now();
    try {
      await progress.task(`Undo ${action.stepId}`, () =>
        undoStep(r, action.state, opts.timeouts(action.stepId)),
      );
      outcomes.push({ id: action.stepId, outcome: 'undone', durationMs: Date.now() - started });
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      outcomes.push({
        id: action.stepId,
        outcome: 'undo-failed',
        durationMs: Date.now() - started,
        error,
      });
      const remaining = (await touchedNow()).map((s) => s.stepId);
      return {
        complete: false,
        stoppedBecause: `the down of ${action.stepId} failed: ${error}`,
        outcomes,
        blockers: [{ stepId: action.stepId, reason: `its down failed: ${error}` }],
        remaining,
      };
    }
  }
  await dropCreatedTables(r.client, r.runId);
  const proof = await proveRollback(r.client, r.target, r.runId, progress);
  if (!proof.equal) {
    return {
      complete: false,
      stoppedBecause: `after every down the database still differs from its pre-run state in ${proof.differences.length} place(s)`,
      outcomes,
      blockers: [],
      remaining: [],
      proof,
    };
  }
  await setRunStatus(r.client, r.runId, 'rolled-back');
  return { complete: true, outcomes, blockers: [], remaining: [], proof };
}

export const NOTHING_APPLIED =
  'nothing applied: the run stopped before its first step, so there was nothing to undo';

async function hasPreFingerprints(client: pg.ClientBase, runId: string): Promise<boolean> {
  return (await loadPreFingerprints(client, runId)) !== undefined;
}

async function proveRollback(
  client: pg.ClientBase,
  target: StepRunner['target'],
  runId: string,
  progress: Progress,
): Promise<{ equal: boolean; differences: Difference[] }> {
  const before = await loadPreFingerprints<Fingerprints>(client, runId);
  if (!before)
    return {
      equal: false,
      differences: [
        {
          kind: 'schema',
          object: '(run)',
          expected: 'pre-run fingerprints',
          found: 'none recorded',
        },
      ],
    };
  return progress.task(
    'Prove the rollback: fingerprints against the pre-run state',
    async (update) => {
      const after = await fingerprintDatabase(target, {
        excludeSchemas: [JOURNAL_SCHEMA],
        // As the pre-run fingerprints were hashed (text when a run began before methods were named).
        contentMethod: before.contentMethod,
        onTable: (d, t) => update(`${d}/${t} tables`),
      });
      const differences = compareFingerprints(before, after);
      return { equal: differences.length === 0, differences };
    },
  );
}
