import type { Config } from '../config.js';
import { BadInputError, RollbackIncompleteError } from '../errors.js';
import type { Progress } from '../progress.js';
import { describeTarget, type Target } from '../target.js';
import { writableDuringFreeze } from './freeze.js';
import { handToOperator, takeLastRung } from './finish.js';
import { releaseStaleKnexLocks, type StepRunner } from './execute.js';
import { readEvents, readRuns } from './journal.js';
import { KnexSession } from './knex-migration.js';
import { knexRefOf } from './state.js';
import { withRunLockAndSession } from './lock.js';
import { rollbackRun, type Resolutions } from './rollback.js';
import type { RunReport } from './report-types.js';
import { announceRun } from './stale-sessions.js';

/**
 * `lifeboat rollback [RUN]`: undo a partial or finished run with the undo
 * stored for each applied step (the runbook file is not needed), newest
 * first, proved against the fingerprints taken before the run.
 */
export async function undoRun(opts: {
  config: Config;
  target: Target;
  progress: Progress;
  runId: string | undefined;
  lockWaitMs: number;
  resolutions: Resolutions;
  /** End a stopped run's sessions still working on the server instead of waiting for them. */
  terminateStale?: boolean;
}): Promise<RunReport> {
  const { progress } = opts;
  const target = writableDuringFreeze(opts.target);
  const locked = { target, runId: opts.runId ?? 'rollback', waitMs: opts.lockWaitMs };
  return withRunLockAndSession(locked, 'lifeboat rollback', async (lockClient, client) => {
    const knex = new KnexSession(target, (message) => progress.warn(message));
    try {
      const runs = await readRuns(client);
      const run = opts.runId
        ? runs.find((r) => r.id === opts.runId)
        : [...runs].reverse().find((r) => r.status !== 'rolled-back' && r.status !== 'baseline');
      if (!run) {
        throw new BadInputError(
          opts.runId
            ? `There is no run ${opts.runId} in the journal of ${describeTarget(target)}; see \`lifeboat status\`.`
            : `There is no run to roll back in ${describeTarget(target)}.`,
        );
      }
      if (run.status === 'rolled-back') {
        throw new BadInputError(`Run ${run.id} is already rolled back.`);
      }
      if (run.status === 'baseline') {
        throw new BadInputError(
          `Run ${run.id} is a baseline: it records steps applied before lifeboat was adopted, which lifeboat never undoes.`,
        );
      }
      const report: RunReport = {
        runId: run.id,
        runbook: run.runbook,
        target: describeTarget(target),
        backupId: run.backupId,
        resumed: false,
        frozen: false,
        status: 'rolled-back',
        steps: [],
        advice: [],
      };
      const runner: StepRunner = {
        client,
        target,
        runId: run.id,
        directory: process.cwd(),
        knex,
        ...(await announceRun(lockClient, client, knex, run.id, opts)),
      };
      if (['running', 'rolling-back'].includes(run.status)) {
        // Its process stopped: a knex lock it held is stale.
        const events = await readEvents(client);
        await releaseStaleKnexLocks(
          runner,
          events.filter((e) => e.runId === run.id).flatMap((e) => knexRefOf(e) ?? []),
        );
      }
      const rollback = await rollbackRun({
        runner,
        runbook: run.runbook,
        timeouts: () => ({}),
        resolutions: opts.resolutions,
        progress,
      });
      report.rollback = rollback;
      report.steps = rollback.outcomes;
      if (await takeLastRung(runner, report, rollback, opts)) return report;
      if (!rollback.complete) {
        await handToOperator(runner, report, rollback, {
          config: opts.config,
          runbookFile: run.runbookFile,
        });
        throw new RollbackIncompleteError(
          `Rollback of run ${run.id} is incomplete: operator action is needed.`,
          {
            details: report.advice,
            data: report,
          },
        );
      }
      return report;
    } finally {
      await knex.close().catch(() => undefined);
    }
  });
}
