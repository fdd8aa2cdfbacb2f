import type { Argv, CommandModule } from 'yargs';
import { commandContext, globalOptions, type GlobalArgs } from '../cli/context.js';
import { exitCodes } from '../cli/help.js';
import { emit, runCommand } from '../cli/output.js';
import type { ReportSpec } from '../cli/reports.js';
import { BadInputError } from '../errors.js';
import type { VerificationRecord } from '../repository/manifest.js';
import { describeTarget } from '../target.js';
import { formatDuration } from '../units.js';
import { verifyNamedBackup } from '../verify.js';

interface VerifyArgs extends GlobalArgs {
  id: string;
  jobs?: number;
  scratchUrl?: string;
  from?: string;
  allCopies: boolean;
}

export const verifyCommand: CommandModule<object, VerifyArgs> = {
  command: 'verify [id]',
  describe: 'Restore a backup into a scratch database and compare it with its manifest',
  builder: (y: Argv) =>
    globalOptions(y)
      .positional('id', { type: 'string', default: 'latest', describe: 'Backup id, or latest' })
      .option('jobs', { type: 'number', describe: 'Parallel pg_restore jobs (default 2)' })
      .option('scratch-url', { type: 'string', describe: 'Server for the scratch database' })
      .option('from', {
        type: 'string',
        describe: "Restore the copy in this destination (the others' checksums are still read)",
      })
      .option('all-copies', {
        type: 'boolean',
        default: false,
        describe: 'Restore every copy, one after the other',
      })
      .example('$0 verify', "prove the target's newest backup restores")
      .example('$0 verify 20261121T101500Z-app-1f2e3d', 'prove one backup')
      .example('$0 verify --from offsite', 'prove the off-site copy restores (decrypting it)')
      .example('$0 verify --all-copies', 'restore every copy of the newest backup')
      .epilog(exitCodes(0, 2, 4)) as unknown as Argv<VerifyArgs>,
  handler: (argv) => {
    const report: ReportSpec = { command: 'verify', dataKey: 'verification' };
    return runCommand(
      argv,
      async (signal) => {
        if (argv.from && argv.allCopies)
          throw new BadInputError('Give --from DEST or --all-copies, not both.');
        const ctx = await commandContext(argv, { jobs: argv.jobs, scratchUrl: argv.scratchUrl });
        Object.assign(report, { config: ctx.config, target: describeTarget(ctx.target) });
        const result = await verifyNamedBackup({
          ...ctx,
          name: argv.id,
          named: (id) => {
            report.backup = { id };
          },
          from: argv.from,
          allCopies: argv.allCopies,
          signal,
        });
        return emit(
          argv,
          { verification: result.record, verifications: result.records, copies: result.copies },
          [`Backup ${result.backupId}`, ...result.records.flatMap(verificationLines)],
        );
      },
      report,
      { kind: 'abort', stopping: 'the verification' },
    );
  },
};

export function verificationLines(r: VerificationRecord): string[] {
  const c = r.compared;
  return [
    `  verified ${r.ok ? 'yes' : 'NO'}: restored from ${r.restoredFrom} into ${r.scratch.database} in ${formatDuration(r.restoreMs)}${r.fingerprintMs !== undefined ? `, fingerprinted in ${formatDuration(r.fingerprintMs)}` : ''}`,
    `           ${c.tables} tables, ${c.sequences} sequences, ${c.largeObjects} large objects and the schema match the snapshot`,
  ];
}
