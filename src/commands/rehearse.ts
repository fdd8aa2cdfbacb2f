import type { Argv, CommandModule } from 'yargs';
import { commandContext, globalOptions, type GlobalArgs } from '../cli/context.js';
import { exitCodes } from '../cli/help.js';
import { emit, runCommand } from '../cli/output.js';
import { guard, policyFor, type BackupMode } from '../run/guard.js';
import type { RehearsalRecord } from '../repository/manifest.js';
import { rehearsalRefusal, rehearseRunbook } from '../run/rehearse.js';
import { loadRunbook } from '../runbook/load.js';
import { formatDuration } from '../units.js';

interface RehearseArgs extends GlobalArgs {
  runbook: string;
  backup: BackupMode;
}

export const rehearseCommand: CommandModule<object, RehearseArgs> = {
  command: 'rehearse <runbook>',
  describe:
    'Run the steps and their rollback on a copy restored from the verified backup; the target is not touched',
  builder: (y: Argv) =>
    globalOptions(y)
      .positional('runbook', { type: 'string', demandOption: true })
      .option('backup', {
        choices: ['auto', 'new', 'existing'] as const,
        default: 'auto' as const,
        describe: 'The backup to rehearse on: reuse a fresh verified one, or take one',
      })
      .example(
        '$0 rehearse upgrade.yaml',
        'forecast each step’s duration and locks, and prove the rollback',
      )
      .epilog(exitCodes(0, 2, 3, 4)),
  handler: (argv) =>
    runCommand(
      argv,
      async () => {
        const ctx = await commandContext(argv);
        const runbook = await loadRunbook(argv.runbook);
        const { backupId } = await guard({
          ...ctx,
          mode: argv.backup,
          policy: policyFor(runbook, ctx.config),
        });
        const record = await rehearseRunbook({ ...ctx, runbook, backupId });
        if (!record.passed) {
          if (!argv.json) process.stdout.write(`${rehearsalLines(record).join('\n')}\n`);
          throw rehearsalRefusal(record);
        }
        emit(argv, { rehearsal: record }, rehearsalLines(record));
      },
      undefined,
      { kind: 'abort', stopping: 'the rehearsal' },
    ),
};

export function rehearsalLines(r: RehearsalRecord): string[] {
  const width = Math.max(...r.steps.map((s) => s.id.length), 4);
  return [
    `Rehearsal of ${r.runbook} on backup ${r.backupId}: ${r.passed ? 'passed' : 'FAILED'} (${formatDuration(r.durationMs)})`,
    ...r.steps.map((s) => {
      const time = s.durationMs !== undefined ? ` ${formatDuration(s.durationMs)}` : '';
      const locks = s.locks?.length ? `  locks: ${s.locks.join(', ')}` : '';
      return `  ${s.id.padEnd(width)}  ${s.outcome}${time}${locks}`;
    }),
    `  rollback: ${r.rollback.undone.join(' → ') || 'nothing to undo'}; ${r.rollback.complete ? 'back to the backup’s fingerprints' : 'did NOT return to the backup’s state'}`,
  ];
}
