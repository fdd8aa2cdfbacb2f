import type { Config } from '../config.js';
import { withClient } from '../db.js';
import { LifeboatError } from '../errors.js';
import { readPrivilegeGaps, type PrivilegeGap } from '../privileges.js';
import type { Progress } from '../progress.js';
import { loadRunbook } from '../runbook/load.js';
import { planRunbook, type Plan } from '../runbook/plan.js';
import { describeTarget, type Target } from '../target.js';
import { decideGuard, policyFor, type BackupMode } from './guard.js';
import { readEvents, readRuns, type Undo } from './journal.js';
import { appliedStepsIn, readKnexTruth } from './journal-view.js';
import { lockHolder, type LockHolder } from './lock.js';
import { readFreeze, writableDuringFreeze } from './freeze.js';
import { planRollback } from './ladder.js';
import { touchedByRun } from './state.js';

/**
 * What `run` and `rollback` would do, in order, read from the journal, the
 * lock, the catalog and the role's privileges, changing nothing: no lock is
 * taken, no backup, no journal written. `wouldExit` is the code the real
 * command would end with before its first step (0 when it would start).
 */
export interface RunPreview {
  runbook: string;
  target: string;
  lock: LockHolder | null;
  /** An unfinished run of this runbook that run would resume. */
  resumes: string | null;
  freeze: boolean;
  /** Which backup would guard the run: one reused, one taken (and why), or the refusal. */
  backup:
    | { action: 'reuse'; id: string }
    | { action: 'take'; because: string[] }
    | { action: 'refuse'; because: string[] };
  rehearse: boolean;
  plan: Plan;
  privileges: PrivilegeGap[];
  wouldExit: number;
}

export async function previewRun(opts: {
  config: Config;
  target: Target;
  progress: Progress;
  runbookFile: string;
  backup: BackupMode;
  freeze: boolean;
  rehearse: boolean;
}): Promise<RunPreview> {
  const runbook = await loadRunbook(opts.runbookFile);
  const target = writableDuringFreeze(opts.target);
  const journal = await withClient(target, async (client) => ({
    applied: await appliedStepsIn(client, runbook),
    runs: await readRuns(client),
    lock: await lockHolder(client),
    privileges: await readPrivilegeGaps(client, [
      'read',
      'journal',
      ...(opts.freeze ? (['freeze'] as const) : []),
    ]),
  }));
  const plan = planRunbook(runbook, journal.applied);
  const resumes = [...journal.runs]
    .reverse()
    .find(
      (r) =>
        r.runbook === runbook.name &&
        ['running', 'rolling-back', 'needs-operator'].includes(r.status),
    );
  let backup: RunPreview['backup'];
  try {
    const decision = await decideGuard({
      mode: opts.freeze ? 'new' : opts.backup,
      policy: policyFor(runbook, opts.config),
      config: opts.config,
      target,
      progress: opts.progress,
    });
    backup =
      'reuse' in decision
        ? { action: 'reuse', id: decision.reuse }
        : {
            action: 'take',
            because: decision.because
              ? [decision.because.message, ...decision.because.details]
              : [opts.freeze ? 'a frozen run takes its backup after freezing' : '--backup new'],
          };
  } catch (err) {
    if (!(err instanceof LifeboatError) || err.exitCode !== 3) throw err;
    backup = { action: 'refuse', because: [err.message, ...err.details] };
  }
  const wouldExit =
    journal.privileges.length > 0 || plan.refusals.length > 0
      ? 2
      : journal.lock
        ? 7
        : backup.action === 'refuse'
          ? 3
          : 0;
  return {
    runbook: runbook.name,
    target: describeTarget(opts.target),
    lock: journal.lock ?? null,
    resumes: resumes?.id ?? null,
    freeze: opts.freeze,
    backup,
    rehearse: opts.rehearse,
    plan,
    privileges: journal.privileges,
    wouldExit,
  };
}

/** What `rollback` would undo, newest first, and how, or why it would stop. */
export interface RollbackPreview {
  runId: string;
  runbook: string;
  target: string;
  lock: LockHolder | null;
  /** In order: undo a step with its down, or skip a check (nothing to undo). */
  actions: { stepId: string; action: 'undo' | 'skip'; how: string }[];
  /** Steps no down can undo: the rollback would stop there (or restore the backup, when frozen). */
  blockers: { stepId: string; reason: string }[];
  /** The run held the database frozen since its backup: a blocked ladder ends in a restore. */
  restoresBackup: string | null;
  wouldExit: number;
}

export async function previewRollback(opts: {
  target: Target;
  runId: string | undefined;
}): Promise<RollbackPreview | undefined> {
  const target = writableDuringFreeze(opts.target);
  return withClient(target, async (client) => {
    const runs = await readRuns(client);
    const run = opts.runId
      ? runs.find((r) => r.id === opts.runId)
      : [...runs].reverse().find((r) => r.status !== 'rolled-back' && r.status !== 'baseline');
    if (!run || run.status === 'rolled-back' || run.status === 'baseline') return undefined;
    const events = await readEvents(client);
    const tables = await readKnexTruth(client, events);
    const touched = touchedByRun(events, run.id, run.runbook, tables);
    const ladder = planRollback(touched);
    const frozen = (await readFreeze(client, target.database))?.runId === run.id;
    const blockers = ladder.possible ? [] : ladder.blockers;
    const lock = (await lockHolder(client)) ?? null;
    return {
      runId: run.id,
      runbook: run.runbook,
      target: describeTarget(opts.target),
      lock,
      actions: ladder.actions.map((a) => ({
        stepId: a.stepId,
        action: a.kind,
        how: a.kind === 'skip' ? a.reason : describeUndo(a.state.undo),
      })),
      blockers,
      restoresBackup: blockers.length > 0 && frozen ? run.backupId : null,
      wouldExit: lock ? 7 : blockers.length > 0 && !(frozen && run.backupId) ? 6 : 0,
    };
  });
}

function describeUndo(undo: Undo | null): string {
  if (!undo) return 'none';
  switch (undo.kind) {
    case 'sql':
      return `its SQL down${undo.transaction ? ', in a transaction' : ''}`;
    case 'shell':
      return `its shell down: ${undo.command}`;
    case 'knex':
      return "knex's down of the migration";
    default:
      return undo.kind;
  }
}
