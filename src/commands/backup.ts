import type { Argv, CommandModule } from 'yargs';
import { takeBackup, type BackupResult } from '../backup.js';
import { commandContext, globalOptions, type GlobalArgs } from '../cli/context.js';
import { exitCodes } from '../cli/help.js';
import { emit, runCommand } from '../cli/output.js';
import type { ReportSpec } from '../cli/reports.js';
import { BadInputError, InterruptedError, StorageError } from '../errors.js';
import { redact } from '../secrets.js';
import { describeTarget } from '../target.js';
import { formatBytes, formatDuration } from '../units.js';
import { verifyBackup, type VerifyResult } from '../verify.js';
import { verificationLines } from './verify.js';

interface BackupArgs extends GlobalArgs {
  verify: boolean;
  jobs?: number;
  scratchUrl?: string;
}

export const backupCommand: CommandModule<object, BackupArgs> = {
  command: 'backup',
  describe: 'Dump the target at an exported snapshot, store it in every destination, verify it',
  builder: (y: Argv) =>
    globalOptions(y)
      .option('verify', {
        type: 'boolean',
        default: true,
        describe: 'Restore into a scratch database and compare (--no-verify to skip)',
      })
      .option('jobs', { type: 'number', describe: 'Parallel pg_dump/pg_restore jobs (default 2)' })
      .option('scratch-url', { type: 'string', describe: 'Server for the scratch database' })
      .example('$0 backup', 'back up $DATABASE_URL and prove the backup restores')
      .example('$0 backup --no-verify --json', 'dump and store only; print the manifest summary')
      .epilog(exitCodes(0, 2, 4)),
  handler: (argv) => {
    const report: ReportSpec = { command: 'backup', dataKey: 'verification' };
    return runCommand(
      argv,
      async (signal) => {
        const ctx = await commandContext(argv, { jobs: argv.jobs, scratchUrl: argv.scratchUrl });
        Object.assign(report, { config: ctx.config, target: describeTarget(ctx.target) });
        const backup = await takeBackup({ ...ctx, signal });
        report.backup = { id: backup.id, manifest: backup.manifest };
        let verification: VerifyResult | undefined;
        try {
          verification = argv.verify
            ? await verifyBackup({ ...ctx, backupId: backup.id, checksumsJustRead: true, signal })
            : undefined;
        } catch (err) {
          if (err instanceof InterruptedError) {
            throw new InterruptedError(
              `Interrupted: backup ${backup.id} is stored but unverified; its verification was stopped and the scratch database dropped. \`lifeboat verify ${backup.id}\` proves it later.`,
            );
          }
          // The backup is stored; verification could not run (a privilege, a tool, the scratch
          // server). That says nothing against the backup: it is unverified, not failed.
          if (!(err instanceof BadInputError)) throw err;
          const doc = { ...backupDocument(backup, undefined), unverified: { reason: err.message } };
          if (!argv.json)
            process.stdout.write(`${redact(backupLines(backup, undefined).join('\n'))}\n`);
          throw new BadInputError(
            `Backup ${backup.id} is stored but unverified: ${err.message.charAt(0).toLowerCase()}${err.message.slice(1)}`,
            {
              details: err.details,
              data: doc,
              cause: err,
            },
          );
        }
        const doc = backupDocument(backup, verification);
        const lines = backupLines(backup, verification);
        const missed = backup.copies.filter((c) => !c.ok);
        if (missed.length > 0) {
          // A nightly job must not stay green without a copy it was configured to keep.
          if (!argv.json) process.stdout.write(`${redact(lines.join('\n'))}\n`);
          throw new StorageError(
            `Backup ${backup.id} is missing from ${missed.length} of ${backup.copies.length} destinations; the copies in ${backup.copies
              .filter((c) => c.ok)
              .map((c) => c.destination)
              .join(', ')} were kept${verification ? ' and verified' : ''}.`,
            { details: missed.map((c) => `${c.destination}: ${c.error}`), data: doc },
          );
        }
        return emit(argv, doc, lines);
      },
      report,
      { kind: 'abort', stopping: 'the backup' },
    );
  },
};

function backupDocument(b: BackupResult, v: VerifyResult | undefined) {
  const m = b.manifest;
  return {
    backup: {
      id: b.id,
      createdAt: m.createdAt,
      target: m.target,
      bytes: m.dump.bytes,
      dumpMs: m.dump.durationMs,
      files: m.files.length,
      tables: m.fingerprints.tables.length,
      copies: b.copies,
      phases: b.phases,
    },
    verification: v?.record ?? null,
  };
}

function backupLines(b: BackupResult, v: VerifyResult | undefined): string[] {
  const m = b.manifest;
  const lines = [
    `Backup ${b.id} of ${m.target.described}`,
    `  dump     ${formatBytes(m.dump.bytes)} in ${formatDuration(m.dump.durationMs)} (pg_dump ${m.tools.pgDump.version}, ${m.dump.jobs} jobs), ${m.fingerprints.tables.length} tables fingerprinted`,
    `  time     ${phaseLine(b.phases)}`,
    ...b.copies.map((c) =>
      c.ok
        ? `  copy     ${c.destination}: ${c.location}`
        : `  copy     ${c.destination}: FAILED — ${c.error}`,
    ),
  ];
  if (v) lines.push(...verificationLines(v.record));
  else lines.push(`  not verified yet: run \`lifeboat verify ${b.id}\``);
  return lines;
}

function phaseLine(p: BackupResult['phases']): string {
  const d = formatDuration;
  const copies = p.copiesMs > 0 ? `, other copies ${d(p.copiesMs)}` : '';
  return `dump ${d(p.dumpMs)} beside source fingerprints ${d(p.fingerprintMs)} (${d(p.snapshotMs)} together), checksums ${d(p.checksumMs)}${copies}`;
}
