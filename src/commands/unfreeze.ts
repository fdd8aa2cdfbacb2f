import type { Argv, CommandModule } from 'yargs';
import { globalOptions, targetFor, type GlobalArgs } from '../cli/context.js';
import { exitCodes } from '../cli/help.js';
import { emit, runCommand } from '../cli/output.js';
import { loadConfig } from '../config.js';
import { describeTarget } from '../target.js';
import { unfreeze } from '../unfreeze.js';

interface UnfreezeArgs extends GlobalArgs {
  force: boolean;
}

export const unfreezeCommand: CommandModule<object, UnfreezeArgs> = {
  command: 'unfreeze',
  describe: 'Lift a freeze left on the database by a run (other sessions may write again)',
  builder: (y: Argv) =>
    globalOptions(y)
      .option('force', {
        type: 'boolean',
        default: false,
        describe:
          'Unfreeze even while a run holds the lock (its restore rung then stops being lossless)',
      })
      .example('$0 unfreeze', 'let applications write again after a crashed frozen run')
      .epilog(exitCodes(0, 2, 7)),
  handler: (argv) =>
    runCommand(
      argv,
      async () => {
        const config = await loadConfig({ config: argv.config });
        const target = targetFor(argv, config);
        const result = await unfreeze(target, { force: argv.force });
        emit(argv, { unfrozen: result ?? null }, [
          result
            ? `Unfroze ${describeTarget(target)} (frozen by run ${result.runId} since ${result.since}); other sessions may write again.`
            : `${describeTarget(target)} is not frozen by lifeboat; nothing to do.`,
        ]);
      },
      undefined,
      { kind: 'abort', stopping: 'the unfreeze' },
    ),
};
