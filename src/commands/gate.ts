import type { Argv, CommandModule } from 'yargs';
import { commandContext, globalOptions, type GlobalArgs } from '../cli/context.js';
import { exitCodes } from '../cli/help.js';
import { emit, runCommand } from '../cli/output.js';
import { runGate } from '../gate.js';
import { formatDuration } from '../units.js';

interface GateArgs extends GlobalArgs {
  maxAge?: string;
  copies?: number;
}

export const gateCommand: CommandModule<object, GateArgs> = {
  command: 'gate',
  describe: 'CI gate: exit 0 only if a fresh, verified backup of the target exists',
  builder: (y: Argv) =>
    globalOptions(y)
      .option('max-age', {
        type: 'string',
        describe: 'Oldest acceptable backup (e.g. 6h, 1d; default: policy, 24h)',
      })
      .option('copies', { type: 'number', describe: 'Intact copies required (default: policy, 1)' })
      .example(
        '$0 gate --max-age 6h',
        'fail the pipeline unless a verified backup is at most 6 hours old',
      )
      .example('$0 gate --copies 2 --json', 'require two intact copies; print the verdict as JSON')
      .epilog(exitCodes(0, 2, 3)),
  handler: (argv) =>
    runCommand(argv, async () => {
      const ctx = await commandContext(argv, { maxAge: argv.maxAge, copies: argv.copies });
      const policy = { maxAgeMs: ctx.config.maxAgeMs, copies: ctx.config.copies };
      const verdict = await runGate({ ...ctx, policy });
      const b = verdict.backup!;
      emit(argv, { gate: verdict }, [
        `Gate passed for ${verdict.target}`,
        `  backup   ${b.id} (taken ${b.createdAt}, verified ${b.verifiedAt})`,
        `  copies   ${b.intactCopies.join(', ')} (${policy.copies} required)`,
        `  policy   max age ${formatDuration(policy.maxAgeMs)}`,
        `  changes  ${verdict.changesSinceBackup?.note ?? 'unknown'}`,
      ]);
    }),
};
