import type { Argv, CommandModule } from 'yargs';
import { findBackup, readCatalog, type CatalogEntry } from '../repository/catalog.js';
import { globalOptions, targetFor, type GlobalArgs } from '../cli/context.js';
import { exitCodes } from '../cli/help.js';
import { emit, runCommand } from '../cli/output.js';
import { confirm } from '../cli/confirm.js';
import { loadConfig } from '../config.js';
import { pruneBackups, type PruneOutcome } from '../prune/prune-backups.js';
import { BadInputError, VerificationFailedError } from '../errors.js';
import { redact } from '../secrets.js';
import { formatBytes } from '../units.js';
import { needsLines } from '../cluster-needs.js';

interface BackupsArgs extends GlobalArgs {
  action: 'list' | 'show' | 'prune';
  id?: string;
  keep?: number;
  dryRun: boolean;
  yes: boolean;
}

export const backupsCommand: CommandModule<object, BackupsArgs> = {
  command: 'backups <action> [id]',
  describe: 'The backup repository: list, show ID, prune',
  builder: (y: Argv) =>
    globalOptions(y)
      .positional('action', { choices: ['list', 'show', 'prune'] as const, demandOption: true })
      .positional('id', {
        type: 'string',
        describe: 'Backup id, or latest (the newest backup of the target), for show',
      })
      .option('keep', {
        type: 'number',
        describe:
          "prune: verified backups to keep in each destination (default: the destination's keep, else retention.keep, 7)",
      })
      .option('dry-run', {
        type: 'boolean',
        default: false,
        describe: 'prune: only say what would go',
      })
      .example('$0 backups list', 'every backup with its copies and last verification')
      .example(
        '$0 backups show latest',
        'the newest backup of the target: copies, content, verifications',
      )
      .option('yes', {
        type: 'boolean',
        default: false,
        describe: 'prune: do not ask for confirmation (needed when not on a terminal)',
      })
      .example('$0 backups prune --keep 3 --dry-run', 'what pruning would remove')
      .example(
        '$0 backups prune --yes',
        "prune the target's backups (DATABASE_URL, or the PG* variables), in every destination, without asking",
      )
      .epilog(exitCodes(0, 2)) as unknown as Argv<BackupsArgs>,
  handler: (argv) =>
    runCommand(
      argv,
      async (signal) => {
        const config = await loadConfig({ config: argv.config });
        if (argv.action === 'prune') {
          if (argv.keep !== undefined && !(Number.isInteger(argv.keep) && argv.keep >= 0))
            throw new BadInputError(
              '--keep must be a whole number ≥ 0 (the newest verified backup is kept whatever it says).',
            );
          const prune = await pruneBackups({
            config,
            target: targetFor(argv, config),
            keep: argv.keep,
            dryRun: argv.dryRun,
            confirm: (removed) =>
              confirm(
                `Remove ${removed.length} cop${removed.length === 1 ? 'y' : 'ies'}: ${removed.map((d) => `${d.id} in ${d.destination}`).join(', ')}?`,
                { yes: argv.yes, command: 'backups prune' },
              ),
            signal,
          });
          emit(argv, { prune }, pruneLines(prune));
          return;
        }
        if (argv.action === 'list') {
          const entries = await readCatalog(config.destinations, config.signingKey);
          emit(argv, { backups: entries.map(summary) }, listLines(entries));
        } else if (argv.action === 'show') {
          const entry = await findBackup(argv.id, {
            destinations: config.destinations,
            key: config.signingKey,
            target: () => targetFor(argv, config),
          });
          const doc = {
            backup: {
              ...summary(entry),
              manifest: entry.manifest ?? null,
              verifications: entry.verifications,
            },
          };
          if (!entry.manifest) {
            // Nothing in it can be trusted: what it claims is shown, and the exit says so.
            if (!argv.json) process.stdout.write(`${redact(showLines(entry).join('\n'))}\n`);
            throw new VerificationFailedError(
              `Backup ${entry.id} is damaged: its manifest cannot be trusted, so it is never used.`,
              { details: entry.manifestProblems, data: doc },
            );
          }
          emit(argv, doc, showLines(entry));
        }
      },
      undefined,
      { kind: 'abort', stopping: 'the pruning' },
    ),
};

function pruneLines({ dryRun, decisions, reports }: PruneOutcome): string[] {
  const removed = decisions.filter((d) => d.action === 'remove').length;
  return [
    ...decisions.map(
      (d) =>
        `${d.action === 'keep' ? 'keep  ' : dryRun ? 'would remove' : 'remove'}  ${d.id}  ${d.destination}  (${d.reason})`,
    ),
    `${removed} cop${removed === 1 ? 'y' : 'ies'} ${dryRun ? 'would be ' : ''}removed`,
    `${reports.length} report${reports.length === 1 ? '' : 's'} ${dryRun ? 'would be ' : ''}removed${reports.length > 0 ? `: ${reports.join(', ')}` : ''}`,
  ];
}

function summary(e: CatalogEntry) {
  const last = e.verifications.at(-1);
  return {
    id: e.id,
    database: e.manifest?.target.database ?? null,
    systemIdentifier: e.manifest?.target.systemIdentifier ?? null,
    createdAt: e.manifest?.createdAt ?? null,
    bytes: e.manifest?.dump.bytes ?? null,
    copies: e.copies.map((c) => ({ destination: c.destination, location: c.location })),
    verified: last ? { at: last.at, ok: last.ok } : null,
    problems: e.manifestProblems,
  };
}

function verifiedText(e: CatalogEntry): string {
  const last = e.verifications.at(-1);
  return last ? `${last.ok ? 'verified' : 'FAILED'} ${last.at}` : 'not verified';
}

function listLines(entries: CatalogEntry[]): string[] {
  if (entries.length === 0) return ['No backups yet; run `lifeboat backup`.'];
  return entries.map(
    (e) =>
      `${e.id}  ${e.manifest?.target.database ?? '?'}  ${e.manifest ? formatBytes(e.manifest.dump.bytes) : 'DAMAGED'}  ${e.copies.map((c) => c.destination).join(',')}  ${e.manifest ? verifiedText(e) : `never used: ${e.manifestProblems[0] ?? 'manifest unreadable'}`}`,
  );
}

function showLines(e: CatalogEntry): string[] {
  const m = e.manifest;
  if (!m) {
    return [
      `${e.id}: DAMAGED, never used`,
      ...(e.claimed
        ? [`  claims     ${e.claimed.target.described}, taken ${e.claimed.createdAt} (untrusted)`]
        : []),
      ...e.copies.map((c) => `  copy       ${c.destination}: ${c.location}`),
      ...e.manifestProblems.map((p) => `  damaged    ${p}`),
    ];
  }
  return [
    `${e.id}`,
    `  target     ${m.target.described} (system ${m.target.systemIdentifier}, PostgreSQL ${m.target.serverVersion})`,
    `  taken      ${m.createdAt} at snapshot ${m.snapshot.id}`,
    `  dump       ${formatBytes(m.dump.bytes)}, ${m.files.length} files, pg_dump ${m.tools.pgDump.version}`,
    `  content    ${m.fingerprints.tables.length} tables, ${m.fingerprints.sequences.length} sequences, ${m.fingerprints.largeObjects.count} large objects`,
    ...needsLines(m.needs),
    ...e.copies.map((c) => `  copy       ${c.destination}: ${c.location}`),
    ...e.manifestProblems.map((p) => `  damaged    ${p}`),
    ...e.verifications.map(
      (v) =>
        `  verified   ${v.at} ${v.ok ? 'ok' : `FAILED: ${v.error ?? `${v.differences.length} difference(s)`}`} (from ${v.restoredFrom || '-'})`,
    ),
  ];
}
