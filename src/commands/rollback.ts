import type { Argv, CommandModule } from 'yargs';
import { commandContext, globalOptions, type GlobalArgs } from '../cli/context.js';
import { exitCodes } from '../cli/help.js';
import { emit, runCommand } from '../cli/output.js';
import type { ReportSpec } from '../cli/reports.js';
import { withClient } from '../db.js';
import { requirePrivileges } from '../privileges.js';
import { describeTarget } from '../target.js';
import { runReportLines } from '../cli/run-report.js';
import { undoRun } from '../run/undo-run.js';
import { lockWait, parseResolutions, printingReport } from './run.js';
import type { InterruptPolicy } from '../cli/interrupt.js';

interface RollbackArgs extends GlobalArgs {
  run?: string;
  lockWait: string;
  resolve: string[];
}

export const rollbackCommand: CommandModule<object, RollbackArgs> = {
  command: 'rollback [run]',
  describe: 'Undo a partial or finished run, newest step first, proved by fingerprints',
  builder: (y: Argv) =>
    globalOptions(y)
      .positional('run', {
        type: 'string',
        describe: 'Run id (default: the latest run not rolled back)',
      })
      .option('lock-wait', {
        type: 'string',
        default: '0s',
        describe: 'How long to wait for another run',
      })
      .option('resolve', {
        type: 'string',
        array: true,
        default: [] as string[],
        describe: 'Decide a step left in doubt: STEP=applied or STEP=not-applied',
      })
      .example('$0 rollback', 'undo the latest run')
      .example(
        '$0 rollback run-20261121T101500Z-3f2a --json',
        'undo one run; print its record as JSON',
      )
      .epilog(exitCodes(0, 2, 6, 7)) as unknown as Argv<RollbackArgs>,
  handler: (argv) => {
    const spec: ReportSpec = { command: 'rollback' };
    return runCommand(
      argv,
      async () => {
        const ctx = await commandContext(argv);
        Object.assign(spec, { config: ctx.config, target: describeTarget(ctx.target) });
        // The journal and the fingerprints that prove a rollback: refused before anything runs.
        await withClient(ctx.target, (c) =>
          requirePrivileges(c, ['read', 'journal'], 'A rollback'),
        );
        const report = await printingReport(argv, () =>
          undoRun({
            ...ctx,
            runId: argv.run,
            lockWaitMs: lockWait(argv.lockWait),
            resolutions: parseResolutions(argv.resolve),
          }),
        );
        return emit(argv, { rollback: report }, runReportLines(report));
      },
      spec,
      ROLLBACK_INTERRUPTS,
    );
  },
};

/** A rollback is not stopped half-way: that would leave the database in neither state. */
const ROLLBACK_INTERRUPTS: InterruptPolicy = {
  kind: 'safe-point',
  first:
    'interrupt: the rollback goes on to its end, each step checkpointed: stopping half-way would leave the database in neither state. It ends by itself; `lifeboat status` shows where it is.',
  later: 'interrupt: the rollback is still finishing; it ends by itself.',
};
