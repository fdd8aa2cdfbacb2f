import type { Argv, CommandModule } from 'yargs';
import { commandContext, globalOptions, type GlobalArgs } from '../cli/context.js';
import { exitCodes } from '../cli/help.js';
import { emit, runCommand } from '../cli/output.js';
import { BadInputError } from '../errors.js';
import { runGate } from '../gate.js';
import { loadRunbook } from '../runbook/load.js';
import { formatDuration } from '../units.js';

interface GateArgs extends GlobalArgs {
  maxAge?: string;
  copies?: number;
  runbook?: string;
  rehearsed: boolean;
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
      .option('runbook', {
        type: 'string',
        describe: 'Also require that every pending step of this runbook can be undone',
      })
      .option('rehearsed', {
        type: 'boolean',
        default: false,
        describe: 'With --runbook: require a passing rehearsal of this runbook on the backup',
      })
      .example(
        '$0 gate --runbook upgrade.yaml --rehearsed',
        'the backup was rehearsed with this exact runbook',
      )
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
      if (argv.rehearsed && !argv.runbook) {
        throw new BadInputError('--rehearsed needs --runbook FILE: a rehearsal is of one runbook.');
      }
      const runbook = argv.runbook ? await loadRunbook(argv.runbook) : undefined;
      const verdict = await runGate({ ...ctx, policy, runbook, requireRehearsal: argv.rehearsed });
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
