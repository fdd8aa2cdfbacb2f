import type { Config } from '../config.js';
import { connect } from '../db.js';
import { BadInputError, RollbackIncompleteError } from '../errors.js';
import type { Progress } from '../progress.js';
import { describeTarget, type Target } from '../target.js';
import { changesSinceBackup, operatorAdvice } from './advice.js';
import { readFreeze, thawRun, writableDuringFreeze } from './freeze.js';
import { rollBackByRestore } from './restore-rung.js';
import { releaseStaleKnexLocks, type StepRunner } from './execute.js';
import { readEvents, readRuns, setRunStatus } from './journal.js';
import { KnexSession } from './knex-migration.js';
import { decideLastRung } from './ladder.js';
import { knexRefOf } from './state.js';
import { withRunLock } from './lock.js';
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
  return withRunLock(target, opts.runId ?? 'rollback', opts.lockWaitMs, async (lockClient) => {
    const client = await connect(target, 'lifeboat rollback');
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
      const lastRung = decideLastRung({
        complete: rollback.complete,
        frozenByRun: (await readFreeze(client, target.database))?.runId === run.id,
        backupId: run.backupId,
      });
      if (lastRung.restore) {
        report.restoredBy = await rollBackByRestore({
          config: opts.config,
          target,
          runId: run.id,
          backupId: lastRung.backupId,
          progress,
          release: () => client.end(),
        });
        return report;
      }
      await thawRun(client, target.database, run.id, progress);
      if (!rollback.complete) {
        report.status = 'needs-operator';
        await setRunStatus(client, run.id, 'needs-operator', rollback.stoppedBecause ?? null);
        report.advice = operatorAdvice(
          report,
          run.runbookFile,
          await changesSinceBackup(opts.config, client, run.backupId),
        );
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
      await client.end().catch(() => undefined);
    }
  });
}
