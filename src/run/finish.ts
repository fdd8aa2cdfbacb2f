import type { Config } from '../config.js';
import type { Progress } from '../progress.js';
import { changesSinceBackup, operatorAdvice } from './advice.js';
import type { StepRunner } from './execute.js';
import { readFreeze, thawRun } from './freeze.js';
import { setRunStatus } from './journal.js';
import { decideLastRung } from './ladder.js';
import type { RunReport } from './report-types.js';
import { rollBackByRestore } from './restore-rung.js';
import type { RollbackResult } from './rollback.js';

/**
 * How a run and a rollback end once the downs have run: the last rung as the
 * ladder decides it (restore the run's backup, or not), the freeze lifted
 * otherwise, and an incomplete rollback handed to the operator with advice.
 */

/** The last rung. True when it restored the backup (the run's client is released then). */
export async function takeLastRung(
  runner: StepRunner,
  report: RunReport,
  rollback: RollbackResult,
  opts: { config: Config; progress: Progress },
): Promise<boolean> {
  const lastRung = decideLastRung({
    complete: rollback.complete,
    frozenByRun: (await readFreeze(runner.client, runner.target.database))?.runId === report.runId,
    backupId: report.backupId,
  });
  if (lastRung.restore) {
    report.restoredBy = await rollBackByRestore({
      config: opts.config,
      target: runner.target,
      runId: report.runId,
      backupId: lastRung.backupId,
      progress: opts.progress,
      release: () => runner.client.end(),
    });
    return true;
  }
  // Whatever the outcome, the database does not stay frozen.
  await thawRun(runner.client, runner.target.database, report.runId, opts.progress);
  return false;
}

/** The downs stopped short and no restore could follow: the run needs the operator. */
export async function handToOperator(
  runner: StepRunner,
  report: RunReport,
  rollback: RollbackResult,
  opts: { config: Config; runbookFile: string },
): Promise<void> {
  report.status = 'needs-operator';
  await setRunStatus(
    runner.client,
    report.runId,
    'needs-operator',
    rollback.stoppedBecause ?? null,
  );
  report.advice = operatorAdvice(
    report,
    opts.runbookFile,
    await changesSinceBackup(opts.config, runner.client, report.backupId),
  );
}
