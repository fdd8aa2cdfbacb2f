import type { Argv, CommandModule } from 'yargs';
import { commandContext, globalOptions, type GlobalArgs } from '../cli/context.js';
import { exitCodes } from '../cli/help.js';
import { emit, runCommand } from '../cli/output.js';
import type { ReportSpec } from '../cli/reports.js';
import { runDrill } from '../drill.js';
import type { DrillRecord } from '../repository/manifest.js';
import { describeTarget } from '../target.js';
import { formatDuration } from '../units.js';

interface DrillArgs extends GlobalArgs {
  from?: string;
  to?: string;
  backup?: string;
  jobs?: number;
}

export const drillCommand: CommandModule<object, DrillArgs> = {
  command: 'drill',
  describe:
    'Disaster-recovery drill: restore the newest verified backup from one destination alone, prove it, time it',
  builder: (y: Argv) =>
    globalOptions(y)
      .option('from', {
        type: 'string',
        describe:
          'The destination to restore from, as if every other copy were gone (default: the first off-site one)',
      })
      .option('to', {
        type: 'string',
        describe:
          'Restore onto this server (a connection URL) instead of the target’s; the drill’s database there is dropped afterwards',
      })
      .option('backup', {
        type: 'string',
        describe: 'Drill this backup id instead of the newest verified one',
      })
      .option('jobs', { type: 'number', describe: 'Parallel pg_restore jobs (default 2)' })
      .example('$0 drill', 'restore the off-site copy of the newest verified backup and prove it')
      .example('$0 drill --from offsite --to postgres://dr-host/postgres', 'onto a standby server')
      .epilog(
        [
          'The drill reads nothing but the one destination: not the other copies, not the',
          'source (with --to, the source may be down). It records, beside that copy, the',
          'recovery time by phase and the backup’s age: what a real disaster would cost.',
          '`lifeboat gate --drilled 30d` demands a passing drill younger than 30 days.',
          '',
          exitCodes(0, 2, 3, 4),
        ].join('\n'),
      ),
  handler: (argv) => {
    const report: ReportSpec = { command: 'drill', dataKey: 'drill' };
    return runCommand(
      argv,
      async (signal) => {
        const ctx = await commandContext(argv, { jobs: argv.jobs });
        Object.assign(report, { config: ctx.config, target: describeTarget(ctx.target) });
        const drill = await runDrill({
          ...ctx,
          from: argv.from,
          to: argv.to,
          backupId: argv.backup,
          chosen: (id) => {
            report.backup = { id };
          },
          signal,
        });
        return emit(argv, { drill }, drillLines(drill));
      },
      report,
      { kind: 'abort', stopping: 'the drill' },
    );
  },
};

export function drillLines(d: DrillRecord): string[] {
  return [
    `Drill of backup ${d.backupId} from ${d.from.destination}${d.from.remote ? ' (off-site)' : ''}: ${d.passed ? 'passed' : 'FAILED'}`,
    `  restored onto ${d.onto.server} as ${d.onto.database} and proved in ${formatDuration(d.durationMs)} (recovery time)`,
    `  the backup was ${formatDuration(d.backupAgeMs)} old: a disaster now would lose the writes since`,
    ...(d.encryption
      ? [
          `  encrypted to ${d.encryption.recipients.join(', ')}; key from ${d.encryption.identityFrom}`,
        ]
      : []),
    ...d.phases.map((p) => `  ${formatDuration(p.ms).padStart(8)}  ${p.name}`),
  ];
}
