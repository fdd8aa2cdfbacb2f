import type { Argv } from 'yargs';
import { BadInputError, LifeboatError } from '../errors.js';
import type { Resolutions } from '../run/rollback.js';
import type { RunReport } from '../run/report-types.js';
import { parseDuration } from '../units.js';
import type { GlobalArgs } from './context.js';
import type { InterruptPolicy } from './interrupt.js';
import type { ReportSpec } from './reports.js';
import { runReportLines } from './run-report.js';

/** What `run` and `rollback` share: they take the run's lock and decide steps a crash left in doubt. */
export interface RunSessionArgs {
  lockWait: string;
  resolve: string[];
  terminateStale: boolean;
}

/** --lock-wait, --terminate-stale and --resolve, as run and rollback both take them. */
export function runSessionOptions<T>(y: Argv<T>) {
  return y
    .option('lock-wait', {
      type: 'string',
      default: '0s',
      describe: 'How long to wait for another run to finish',
    })
    .option('terminate-stale', {
      type: 'boolean',
      default: false,
      describe:
        "A stopped run's work still running on the server (a CREATE INDEX CONCURRENTLY): end it instead of waiting for it before deciding its step in doubt",
    })
    .option('resolve', {
      type: 'string',
      array: true,
      default: [] as string[],
      describe: 'Decide a step left in doubt by a crash: STEP=applied or STEP=not-applied',
    });
}

export function lockWait(text: string): number {
  const ms = parseDuration(text, { zero: true });
  if (typeof ms === 'string')
    throw new BadInputError(`--lock-wait: "${text}" is not a duration (write 30s, 5m).`);
  return ms;
}

export function parseResolutions(items: string[]): Resolutions {
  const out: Resolutions = {};
  for (const item of items) {
    const m = /^([a-z0-9][a-z0-9_/.-]*)=(applied|not-applied)$/.exec(item);
    if (!m)
      throw new BadInputError(`--resolve: "${item}" should read STEP=applied or STEP=not-applied.`);
    out[m[1]!] = m[2] as 'applied' | 'not-applied';
  }
  return out;
}

/** Ctrl-C during a run or rollback: the steps stop at the next safe point, each checkpointed. */
export const STEP_INTERRUPTS: InterruptPolicy = {
  kind: 'safe-point',
  first:
    'interrupt: stopping at the next safe point (after the current step), then rolling back as a failure would.',
  later:
    'interrupt: lifeboat is finishing the current step or its rollback, each checkpointed; stopping now would leave a step in doubt. It ends by itself; `lifeboat status` shows where it is.',
};

/**
 * A failed run still shows its step-by-step record before the error; either
 * way its reports name the backup that guarded it.
 */
export async function printingReport(
  argv: GlobalArgs,
  spec: ReportSpec,
  fn: () => Promise<RunReport>,
): Promise<RunReport> {
  try {
    const report = await fn();
    if (report.backupId) spec.backup = { id: report.backupId };
    return report;
  } catch (err) {
    const data =
      err instanceof LifeboatError ? (err.data as Partial<RunReport> | undefined) : undefined;
    if (typeof data?.backupId === 'string') spec.backup = { id: data.backupId };
    if (data?.runId !== undefined && data.steps && !argv.json) {
      process.stdout.write(`${runReportLines(data as RunReport).join('\n')}\n`);
    }
    throw err;
  }
}
