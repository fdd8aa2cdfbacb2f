import { hostname } from 'node:os';
import type pg from 'pg';
import type { Config } from '../config.js';
import { BadInputError, RollbackIncompleteError, RolledBackError } from '../errors.js';
import type { Progress } from '../progress.js';
import { loadRunbook } from '../runbook/load.js';
import { requirePrivileges } from '../privileges.js';
import { planRunbook } from '../runbook/plan.js';
import { appliedSteps, readKnexTruth } from './journal-view.js';
import type { Runbook, Step } from '../runbook/types.js';
import { describeTarget, type Target } from '../target.js';
import {
  freezeDatabase,
  readFreeze,
  readMovedTo,
  thawRun,
  writableDuringFreeze,
} from './freeze.js';
import { releaseStaleKnexLocks, stepLabel, type StepRunner } from './execute.js';
import { applySteps, priorEffect } from './apply-steps.js';
import { guard, policyFor, type BackupMode } from './guard.js';
import {
  loadPreFingerprints,
  readEvents,
  readRuns,
  setRunStatus,
  type StepEvent,
} from './journal.js';
import { recordRun, takeProof } from './begin.js';
import { withRunLockAndSession } from './lock.js';
import { announceRun } from './stale-sessions.js';
import { isMoveId, newRunId } from './runner-id.js';
import { KnexSession } from './knex-migration.js';
import { knexBatch, knexTableKey, type KnexTables } from './knex-table.js';
import type { RunReport } from './report-types.js';
import { rehearsalRefusal, rehearseRunbook } from './rehearse.js';
import { handToOperator, takeLastRung } from './finish.js';
import { resolveInDoubt, rollbackRun, type Resolutions } from './rollback.js';
import { knexRefOf, stepStates, touchedByRun, withKnexTruth, type StepState } from './state.js';

export interface RunOptions {
  config: Config;
  target: Target;
  progress: Progress;
  runbookFile: string;
  backup: BackupMode;
  lockWaitMs: number;
  resolutions: Resolutions;
  freeze: boolean;
  /** Rehearse the steps and their rollback on a restored copy first; a failed rehearsal refuses the run. */
  rehearse: boolean;
  /** Aborted (Ctrl-C): the run stops before its next step and rolls back as a failure would. */
  signal?: AbortSignal;
  /** End a stopped run's sessions still working on the server instead of waiting for them. */
  terminateStale?: boolean;
}

/**
 * `lifeboat run`: lock → guard → steps with checkpoints → on failure the
 * rollback ladder, proved by fingerprints. A run left behind by a crash is
 * resumed after its last checkpoint; one that crashed while rolling back has
 * its rollback finished.
 */
export async function runRunbook(opts: RunOptions): Promise<RunReport> {
  const runbook = await loadRunbook(opts.runbookFile);
  const { progress } = opts;
  if (opts.freeze && opts.backup === 'existing') {
    throw new BadInputError(
      'A frozen run takes its backup after freezing, so that the backup is exactly what users had; drop --backup existing.',
    );
  }
  // lifeboat's own sessions stay writable while the database is frozen.
  const target = writableDuringFreeze(opts.target);
  const locked = { target, runId: 'pending', waitMs: opts.lockWaitMs };
  return withRunLockAndSession(locked, 'lifeboat steps', async (lockClient, client) => {
    // The journal and the fingerprints that prove a rollback: refused before anything runs.
    await requirePrivileges(lockClient, ['read', 'journal'], 'A run');
    const knex = new KnexSession(target, (message) => progress.warn(message));
    try {
      const runs = await readRuns(client);
      const unfinished = [...runs]
        .reverse()
        .find(
          (r) =>
            r.runbook === runbook.name &&
            ['running', 'rolling-back', 'needs-operator'].includes(r.status),
        );
      const runId = unfinished?.id ?? newRunId();
      await lockClient.query(`select set_config('application_name', $1, false)`, [
        `lifeboat run ${runId}`,
      ]);
      const runner: StepRunner = {
        client,
        target,
        runId,
        directory: runbook.directory,
        knex,
        ...(await announceRun(lockClient, client, knex, runId, opts)),
      };

      const journal = async (): Promise<{ states: Map<string, StepState>; tables: KnexTables }> => {
        const events = await readEvents(client);
        const tables = await readKnexTruth(client, events, runbook);
        refuseChanged(runbook, events, tables);
        if (unfinished)
          keepRunBatch(knex, touchedByRun(events, runId, runbook.name, tables), tables);
        return { states: withKnexTruth(stepStates(events, runbook.name), tables), tables };
      };
      let { states, tables } = await journal();
      if (unfinished && ['running', 'rolling-back'].includes(unfinished.status)) {
        await releaseStaleKnexLocks(runner, runbook.steps.filter(isKnexStep));
      }

      const report: RunReport = {
        runId,
        runbook: runbook.name,
        target: describeTarget(target),
        backupId: unfinished?.backupId ?? null,
        resumed: Boolean(unfinished),
        frozen: false,
        status: 'succeeded',
        steps: [],
        advice: [],
      };
      if (unfinished?.status === 'rolling-back') {
        // The run had failed and was being undone when it stopped: finish that, never go forward.
        return await finishRollback(report, runner, runbook, opts);
      }

      const undecided = await resolveInDoubt(runner, [...states.values()], opts.resolutions);
      if (undecided.length > 0) throw inDoubtError(undecided, states, runId, runbook.file);
      ({ states, tables } = await journal());
      const applied = (step: Step): boolean => priorEffect(step, states, tables) === 'applied';

      if (!unfinished && runbook.steps.every(applied)) {
        // Nothing to apply: no backup, no run record, nothing touched.
        report.runId = '';
        report.steps = runbook.steps.map((s) => ({ id: s.id, outcome: 'already-applied' }));
        return report;
      }
      if (!unfinished) {
        await startRun(report, runner, runbook, opts, target);
      } else {
        report.frozen = (await readFreeze(client, target.database))?.runId === runId;
        await setRunStatus(client, runId, 'running');
        if (!(await loadPreFingerprints(client, runId))) {
          // It stopped before its proof was taken; nothing ran since (a step needs the proof first).
          if (touchedByRun(await readEvents(client), runId, runbook.name).length > 0) {
            throw new RollbackIncompleteError(
              `Run ${runId} applied steps without recording the fingerprints that prove a rollback; it cannot be resumed safely.`,
              {
                details: [
                  `Look at the database and decide; \`lifeboat status\` shows what it applied.`,
                ],
              },
            );
          }
          await takeProof(runner, runbook, progress, 'run');
        }
      }

      const { outcomes, failure } = await applySteps(runner, runbook.steps, {
        prior: (step) => priorEffect(step, states, tables),
        title: (i, step) =>
          `Step ${i + 1}/${runbook.steps.length}: ${step.id} (${stepLabel(step)})`,
        progress,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      report.steps.push(...outcomes);
      if (failure) {
        report.failure = failure;
        return await finishRollback(report, runner, runbook, opts);
      }
      await setRunStatus(client, runId, 'succeeded');
      await thawRun(client, target.database, runId, progress);
      return report;
    } finally {
      await knex.close().catch(() => undefined);
    }
  });
}

/**
 * A new run: freeze first when asked (so the backup is exactly what users
 * had), then the guard; only then is anything written to the target: the
 * journal, the run's record, and the fingerprints that will prove a rollback.
 */
async function startRun(
  report: RunReport,
  runner: StepRunner,
  runbook: Runbook,
  opts: RunOptions,
  target: Target,
): Promise<void> {
  const { client } = runner;
  const { progress } = opts;
  await refuseMovedSource(client, target.database);
  let frozenSince: string | null = null;
  if (opts.freeze) {
    const freeze = await progress.task(`Freeze ${target.database}: other sessions read-only`, () =>
      freezeDatabase(client, target.database, report.runId),
    );
    frozenSince = freeze.since;
    report.frozen = true;
  }
  try {
    const policy = policyFor(runbook, opts.config);
    const guarded = await guard({
      mode: opts.freeze ? 'new' : opts.backup,
      policy,
      config: opts.config,
      target,
      progress,
      client,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    report.backupId = guarded.backupId;
    if (opts.rehearse) {
      // Before the target is touched: the whole run and its rollback, on a copy of that backup.
      report.rehearsal = await rehearseRunbook({
        ...opts,
        target,
        runbook,
        backupId: guarded.backupId,
      });
      if (!report.rehearsal.passed) throw rehearsalRefusal(report.rehearsal);
    }
  } catch (err) {
    if (frozenSince) await thawRun(client, target.database, report.runId, progress);
    throw err;
  }
  await recordRun(
    runner,
    {
      runbook: runbook.name,
      runbookFile: runbook.file,
      backupId: report.backupId,
      host: hostname(),
      pid: process.pid,
      frozenAt: frozenSince,
    },
    'run',
  );
  await takeProof(runner, runbook, progress, 'run');
}

/** A database a move holds or retired takes no run: its steps would miss the destination. */
async function refuseMovedSource(client: pg.ClientBase, database: string): Promise<void> {
  const movedTo = await readMovedTo(client, database);
  const freeze = await readFreeze(client, database);
  if (movedTo || isMoveId(freeze?.runId)) {
    throw new BadInputError(
      movedTo
        ? `${database} was moved to ${movedTo}; run the runbook against the destination.`
        : `${database} is being moved (${freeze!.runId}); finish the move and run the runbook against the destination, or roll the move back first.`,
    );
  }
}

/** Roll back, record the outcome in the report, and end with exit 5 or 6. */
async function finishRollback(
  report: RunReport,
  runner: StepRunner,
  runbook: Runbook,
  opts: RunOptions,
): Promise<never> {
  const byId = new Map(runbook.steps.map((s) => [s.id, s]));
  const rollback = await rollbackRun({
    runner,
    runbook: runbook.name,
    timeouts: (id) => byId.get(id)?.timeouts ?? {},
    resolutions: opts.resolutions,
    progress: opts.progress,
  });
  report.rollback = rollback;
  const what = report.failure?.interrupted
    ? `The run was interrupted ${report.failure.during ? 'during' : 'before'} step ${report.failure.stepId}.`
    : report.failure
      ? `Step ${report.failure.stepId} failed: ${report.failure.error}.`
      : `Run ${report.runId} was being rolled back when it stopped.`;
  if (await takeLastRung(runner, report, rollback, opts)) {
    report.status = 'rolled-back';
    throw new RolledBackError(
      `${what} Not every step could be undone by its down, so the run was rolled back by restoring its verified backup ${report.backupId}, taken while the database was frozen: nothing is lost. The failed database is kept as ${report.restoredBy?.replacedAs}.`,
      { data: report },
    );
  }
  // Applied steps now read as undone (or not); the failed step stays "failed", its undo is in report.rollback.
  for (const o of rollback.outcomes) {
    const entry = report.steps.find(
      (s) => s.id === o.id && s.outcome !== 'failed' && s.outcome !== 'interrupted',
    );
    if (entry && o.outcome !== 'skipped')
      Object.assign(entry, { outcome: o.outcome, ...(o.error ? { error: o.error } : {}) });
  }
  if (rollback.complete) {
    report.status = 'rolled-back';
    throw new RolledBackError(
      `${what} The run was rolled back and the database is as before the run (proved by fingerprints).`,
      { data: report },
    );
  }
  await handToOperator(runner, report, rollback, {
    config: opts.config,
    runbookFile: runbook.file,
  });
  throw new RollbackIncompleteError(`${what} Rollback is incomplete: operator action is needed.`, {
    details: report.advice,
    data: report,
  });
}

function isKnexStep(step: Step): step is Step & { kind: 'knex-migration' } {
  return step.kind === 'knex-migration';
}

/** A resumed run keeps putting its knex migrations into the batch of those it already applied. */
function keepRunBatch(knex: KnexSession, touched: StepState[], tables: KnexTables): void {
  const batches = new Map<string, number>();
  for (const state of touched) {
    const ref = knexRefOf(state);
    const batch = ref && knexBatch(tables, ref);
    if (ref && batch !== undefined) {
      const key = knexTableKey(ref);
      batches.set(key, Math.max(batches.get(key) ?? 0, batch));
      knex.useBatch(ref, batches.get(key)!);
    }
  }
}

function refuseChanged(runbook: Runbook, events: StepEvent[], tables: KnexTables): void {
  // Steps in doubt are decided next (verify, knex, --resolve); here only edits and reordering refuse.
  const applied = appliedSteps(events, runbook, tables).map((a) => ({
    ...a,
    status: 'done' as const,
  }));
  const refusals = planRunbook(runbook, applied).refusals;
  if (refusals.length > 0) {
    throw new BadInputError(`Runbook ${runbook.file} cannot run against this database's journal.`, {
      details: refusals,
    });
  }
}

function inDoubtError(
  ids: string[],
  states: Map<string, StepState>,
  runId: string,
  file: string,
): RollbackIncompleteError {
  return new RollbackIncompleteError(
    `Step ${ids.join(', ')} of run ${runId} is in doubt: it started at ${states.get(ids[0]!)?.last.startedAt ?? '?'} and was never recorded done, and nothing can tell whether it took effect.`,
    {
      details: [
        `Look at the database and decide, then: lifeboat run ${file} --resolve ${ids[0]}=applied (or =not-applied)`,
        `or undo the run instead: lifeboat rollback ${runId} --resolve ${ids[0]}=applied (or =not-applied)`,
      ],
    },
  );
}
