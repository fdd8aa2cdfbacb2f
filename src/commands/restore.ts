import type { Argv, CommandModule } from 'yargs';
import { resolveBackupId } from '../repository/catalog.js';
import { UsageError } from '../errors.js';
import { ontoRequest, previewOnto, type OntoPreview } from '../restore/onto-server.js';
import { confirm } from '../cli/confirm.js';
import { showDryRun } from '../cli/dry-run.js';
import { previewRestore, type RestorePreview } from '../restore/preview.js';
import { commandContext, globalOptions, type GlobalArgs } from '../cli/context.js';
import { exitCodes } from '../cli/help.js';
import { emit, runCommand } from '../cli/output.js';
import { suffixedName, timestamp } from '../restore/databases.js';
import { restoreBackup, type RestoreResult } from '../restore/restore-backup.js';
import { describeSession, swapStatements } from '../restore/swap.js';
import { quoteIdent } from '../db.js';
import { formatDuration } from '../units.js';

interface RestoreArgs extends GlobalArgs {
  id: string;
  as?: string;
  swap: boolean;
  terminate: boolean;
  owner: boolean;
  jobs?: number;
  maintenanceDb?: string;
  to?: string;
  createRoles: boolean;
  dryRun: boolean;
  yes: boolean;
}

export const restoreCommand: CommandModule<object, RestoreArgs> = {
  command: 'restore <id>',
  describe:
    'Restore a backup into a new database beside the target, prove it, optionally swap it in',
  builder: (y: Argv) =>
    globalOptions(y)
      .positional('id', {
        type: 'string',
        demandOption: true,
        describe: 'Backup id, or latest (the newest backup of the target)',
      })
      .option('as', {
        type: 'string',
        describe: 'Name of the new database (default <target>__restored_<yyyymmddhhmmss>)',
      })
      .option('swap', {
        type: 'boolean',
        default: false,
        describe:
          "After the proof, take the target's name; the target is kept as <target>__replaced_<time>",
      })
      .option('terminate', {
        type: 'boolean',
        default: false,
        describe: 'With --swap: end the sessions connected to the target instead of refusing',
      })
      .option('owner', {
        type: 'boolean',
        default: true,
        describe:
          'Restore owners and privileges; --no-owner skips them (for a role that may not set owners)',
      })
      .option('jobs', { type: 'number', describe: 'Parallel pg_restore jobs (default 2)' })
      .option('maintenance-db', {
        type: 'string',
        describe:
          'Database to connect to for creating and renaming (default postgres, else template1)',
      })
      .option('to', {
        type: 'string',
        describe:
          "Restore onto another server (a connection URL to a database there to connect to), under the backup's database name or --as; it is checked first for the roles and extensions the backup needs",
      })
      .option('create-roles', {
        type: 'boolean',
        default: false,
        describe:
          'With --to: create the roles the backup needs that the server lacks, as the source had them (no passwords)',
      })
      .option('dry-run', {
        type: 'boolean',
        default: false,
        describe:
          'Say which backup and copy would be restored, under which name, and what stands in the way; change nothing',
      })
      .option('yes', {
        type: 'boolean',
        default: false,
        describe: 'With --swap: do not ask for confirmation (needed when not on a terminal)',
      })
      .implies('terminate', 'swap')
      .check((a) => {
        // Not .conflicts() or .implies(): they count a boolean's default as given.
        if (a.createRoles && a.to === undefined)
          throw new UsageError(
            '--create-roles is for a restore onto another server: give --to URL (see lifeboat --help).',
          );
        if (a.to !== undefined && a.swap)
          throw new UsageError(
            '--to cannot be combined with --swap: a restore onto another server creates a new database there and swaps nothing (see lifeboat --help).',
          );
        return true;
      })
      .example('$0 restore 20261121T101500123Z-app-1f2e3d', 'restore beside the target, prove it')
      .example('$0 restore latest', "the target's newest backup, beside it")
      .example(
        '$0 restore 20261121T101500123Z-app-1f2e3d --as app_yesterday',
        'under a name of your choice',
      )
      .example(
        '$0 restore 20261121T101500123Z-app-1f2e3d --swap --terminate',
        'put the backup in place of the target, ending its sessions; the target is kept (asks first)',
      )
      .example(
        '$0 restore 20261121T101500123Z-app-1f2e3d --to postgres://admin@dr-host/postgres --create-roles',
        'onto another server (a newer major allowed), creating the roles it lacks',
      )
      .example(
        '$0 restore latest --swap --dry-run',
        'what a swap would do, and what stands in its way',
      )
      .epilog(
        [
          'The new database is never created over an existing one, and lifeboat never drops a',
          'database that holds user data: after --swap, the replaced target stays as',
          '<target>__replaced_<time> until you drop it.',
          '',
          exitCodes(0, 2, 4),
        ].join('\n'),
      ) as unknown as Argv<RestoreArgs>,
  handler: (argv) =>
    runCommand(
      argv,
      async (signal) => {
        const ctx = await commandContext(argv, { jobs: argv.jobs });
        if (argv.to !== undefined) {
          const onto = await ontoRequest({
            backupId: argv.id,
            to: argv.to,
            as: argv.as,
            maintenanceDb: argv.maintenanceDb,
            config: ctx.config,
            source: ctx.target,
            warn: (message) => ctx.progress.warn(message),
          });
          if (argv.dryRun) {
            const preview = await previewOnto({ ...onto, createRoles: argv.createRoles });
            return showDryRun(argv, { dryRun: preview }, ontoPreviewLines(preview), {
              wouldExit: preview.wouldExit,
              why: preview.problems,
            });
          }
          const result = await restoreBackup({
            ...ctx,
            ...onto,
            backupId: onto.manifest.id,
            as: onto.target.database,
            keepOwners: argv.owner,
            onto: { createRoles: argv.createRoles },
            signal,
          });
          return emit(argv, { restore: result }, restoreLines(result, ctx.target.database));
        }
        const backupId = await resolveBackupId(argv.id, {
          destinations: ctx.config.destinations,
          key: ctx.config.signingKey,
          target: ctx.target,
        });
        // The same choices for the preview, the question and the restore itself.
        const asked = {
          ...ctx,
          backupId,
          as: argv.as,
          swap: argv.swap,
          terminate: argv.terminate,
          keepOwners: argv.owner,
          maintenanceDb: argv.maintenanceDb,
        };
        if (argv.dryRun || argv.swap) {
          const preview = await previewRestore(asked);
          if (argv.dryRun) {
            return showDryRun(argv, { dryRun: preview }, restorePreviewLines(preview), {
              wouldExit: preview.wouldExit,
              why: [
                ...preview.problems,
                ...preview.privileges
                  .filter((g) => g.need !== 'owners')
                  .map((g) => `${g.missing}: ${g.fix}`),
              ],
            });
          }
          await confirm(
            `Restore backup ${backupId} as ${preview.restoreAs}, prove it, then put it in place of ${ctx.target.database} (kept as ${preview.swap!.replacedAs})${argv.terminate ? `, ending ${preview.swap!.sessions.length} session(s)` : ''}?`,
            { yes: argv.yes, command: 'restore --swap' },
          );
        }
        const result = await restoreBackup({ ...asked, signal });
        emit(argv, { restore: result }, restoreLines(result, ctx.target.database));
      },
      undefined,
      { kind: 'abort', stopping: 'the restore' },
    ),
};

function ontoPreviewLines(p: OntoPreview): string[] {
  return [
    `Dry run: lifeboat restore ${p.backupId} onto ${p.server} as ${p.restoreAs}`,
    `  1. check ${p.server} for the roles and extensions the backup needs${p.createsRoles.length > 0 ? `; create roles ${p.createsRoles.join(', ')}` : ''}`,
    `  2. restore the first intact copy (held in ${p.copies.join(', ')}) into a new database ${p.restoreAs}, in the source's encoding and locale`,
    '  3. fingerprint it and compare with the backup; a difference keeps it for inspection and stops',
    "  4. give it the source's owner and database settings",
    ...p.problems.map((problem) => `  refused: ${problem}`),
  ];
}

export function restoreLines(r: RestoreResult, target: string): string[] {
  const c = r.compared;
  if (r.onto) {
    const t = r.onto.phases;
    return [
      ...r.cleaned.map((name) => `Dropped ${name}, left half-restored by a crashed restore.`),
      `Restored backup ${r.backupId} onto ${r.onto.server} as ${r.restoredAs} (copy from ${r.restoredFrom}, ${formatDuration(r.durationMs)})`,
      `  proved: ${c.tables} tables, ${c.sequences} sequences, ${c.largeObjects} large objects and the schema match the backup`,
      ...(r.onto.createdRoles.length > 0
        ? [
            `  created roles: ${r.onto.createdRoles.join(', ')} (without passwords: set them before they log in)`,
          ]
        : []),
      ...(r.properties.length > 0
        ? [`  from the backup's record: ${r.properties.join(', ')}`]
        : []),
      `  phases: preflight ${formatDuration(t.preflightMs)}, restore ${formatDuration(t.restoreMs)}, proof ${formatDuration(t.proveMs)}, settings ${formatDuration(t.finishMs)}`,
      `  connect: ${r.connection}`,
    ];
  }
  const lines = [
    ...r.cleaned.map((name) => `Dropped ${name}, left half-restored by a crashed restore.`),
    `Restored backup ${r.backupId} into ${r.restoredAs} (copy from ${r.restoredFrom}, ${formatDuration(r.restoreMs)})`,
    `  proved: ${c.tables} tables, ${c.sequences} sequences, ${c.largeObjects} large objects and the schema match the backup`,
  ];
  if (r.properties.length > 0) lines.push(`  copied from ${target}: ${r.properties.join(', ')}`);
  if (r.swapped) {
    lines.push(
      `  swapped: ${target} now holds the backup's data; the database it replaced is kept as ${r.swapped.replacedAs}`,
      ...r.swapped.terminated.map((s) => `  terminated ${describeSession(s)}`),
      `  connect: ${r.connection}`,
      `  when you no longer need it: DROP DATABASE ${quoteIdent(r.swapped.replacedAs)};`,
    );
    return lines;
  }
  const replacedAs = suffixedName(target, `__replaced_${timestamp(new Date())}`);
  lines.push(
    `  connect: ${r.connection}`,
    `  to put it in place of ${target}, either restore again with --swap:`,
    `    lifeboat restore ${r.backupId} --swap`,
    '  or swap the names yourself, in one transaction, connected to another database:',
    `    ${swapStatements(target, r.restoredAs, replacedAs)}`,
  );
  return lines;
}

function restorePreviewLines(p: RestorePreview): string[] {
  return [
    `Dry run: lifeboat restore ${p.backupId} beside ${p.target}`,
    `  1. restore the first intact copy (held in ${p.copies.join(', ')}) into a new database ${p.restoreAs}`,
    '  2. fingerprint it and compare with the backup; a difference keeps it for inspection and stops',
    ...(p.swap
      ? [
          `  3. swap names in one transaction: ${p.restoreAs} becomes the target; the target is kept as ${p.swap.replacedAs}`,
          ...p.swap.sessions.map(
            (s) => `     ${p.swap!.terminate ? 'would end' : 'in the way'}: ${s}`,
          ),
        ]
      : []),
    ...p.problems.map((problem) => `  refused: ${problem}`),
    ...p.privileges.map(
      (g) => `  ${g.need === 'owners' ? 'note' : 'refused'}: ${g.missing}: ${g.fix}`,
    ),
  ];
}
