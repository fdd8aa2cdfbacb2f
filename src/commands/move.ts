import type { Argv, CommandModule } from 'yargs';
import { confirm } from '../cli/confirm.js';
import { commandContext, globalOptions, type GlobalArgs } from '../cli/context.js';
import { showDryRun } from '../cli/dry-run.js';
import { exitCodes } from '../cli/help.js';
import { emit, runCommand } from '../cli/output.js';
import { lockWait } from '../cli/run-session.js';
import { UsageError } from '../errors.js';
import { moveDatabase, type MoveReport } from '../move/move.js';
import type { MovePreview } from '../move/preview.js';
import { previewMove } from '../move/preview.js';
import type { MoveRecord } from '../move/record.js';
import { finishMove } from '../move/way-back.js';
import { describeTarget } from '../target.js';
import { formatDuration } from '../units.js';

interface MoveArgs extends GlobalArgs {
  to?: string;
  as?: string;
  createRoles: boolean;
  cutover?: string;
  backup: 'auto' | 'new' | 'existing';
  finish: boolean;
  jobs?: number;
  lockWait: string;
  dryRun: boolean;
  yes: boolean;
}

export const moveCommand: CommandModule<object, MoveArgs> = {
  command: 'move',
  describe:
    'Move the database to another server or major version: guard, freeze, copy, prove, check, cutover',
  builder: (y: Argv) =>
    globalOptions(y)
      .option('to', {
        type: 'string',
        describe:
          "The destination: a connection URL to a database on the other server to connect to; the moved database takes the source's name (or --as)",
      })
      .option('as', { type: 'string', describe: 'Name of the moved database on the destination' })
      .option('create-roles', {
        type: 'boolean',
        default: false,
        describe:
          'Create the roles the database needs that the destination lacks, as the source has them (no passwords)',
      })
      .option('cutover', {
        type: 'string',
        describe:
          'A shell command that repoints the applications, run once the destination is proved and checked (DATABASE_URL leads to it)',
      })
      .option('backup', {
        choices: ['auto', 'new', 'existing'] as const,
        default: 'auto' as const,
        describe:
          'The guard: auto reuses a fresh verified backup or takes one; new always takes one; existing never does',
      })
      .option('finish', {
        type: 'boolean',
        default: false,
        describe:
          'Retire the source of the open move: it stays read-only, marked as moved (where to, when)',
      })
      .option('jobs', { type: 'number', describe: 'Parallel pg_dump/pg_restore jobs (default 2)' })
      .option('lock-wait', {
        type: 'string',
        default: '0s',
        describe: 'How long to wait for a run or move holding the source',
      })
      .option('dry-run', {
        type: 'boolean',
        default: false,
        describe: 'Say what the move would do and what stands in its way; change nothing',
      })
      .option('yes', {
        type: 'boolean',
        default: false,
        describe: 'Do not ask for confirmation (needed when not on a terminal)',
      })
      .check((a) => {
        if (a.finish && (a.cutover !== undefined || a.createRoles || a.as !== undefined))
          throw new UsageError(
            '--finish retires the source of the open move and takes no --cutover, --create-roles or --as (see lifeboat move --help).',
          );
        if (!a.finish && a.to === undefined)
          throw new UsageError(
            'Name the destination with --to URL, or finish the open move with --finish (see lifeboat move --help).',
          );
        return true;
      })
      .example(
        '$0 move --to postgres://admin@new-host/postgres --create-roles',
        'move to a new server (a newer major allowed), creating the roles it lacks',
      )
      .example(
        '$0 move --to postgres://admin@new-host/postgres --cutover ./repoint-app.sh',
        'and repoint the applications once the destination is proved',
      )
      .example('$0 move --to postgres://admin@new-host/postgres --dry-run', 'what would be done')
      .example('$0 move --finish', 'the applications use the destination: retire the source')
      .example('$0 rollback', 'go back to the source instead (it is unfrozen)')
      .epilog(
        [
          'The source is frozen (read-only for other sessions) before the copy and stays so until',
          'the move is finished or rolled back. A move stopped by a crash is resumed by running the',
          'same command again. Nothing is ever dropped on either server.',
          '',
          exitCodes(0, 2, 3, 4, 5, 6, 7),
        ].join('\n'),
      ) as unknown as Argv<MoveArgs>,
  handler: (argv) =>
    runCommand(
      argv,
      async (signal) => {
        const ctx = await commandContext(argv, { jobs: argv.jobs });
        if (argv.finish) {
          if (!argv.dryRun)
            await confirm(
              `Retire ${describeTarget(ctx.target)} for good (read-only, marked as moved)?`,
              { yes: argv.yes, command: 'move --finish' },
            );
          const record = await finishMove({
            ...ctx,
            source: ctx.target,
            lockWaitMs: lockWait(argv.lockWait),
          });
          return emit(argv, { move: record }, finishLines(record));
        }
        const asked = {
          ...ctx,
          source: ctx.target,
          to: argv.to!,
          ...(argv.as !== undefined ? { as: argv.as } : {}),
          createRoles: argv.createRoles,
          ...(argv.cutover !== undefined ? { cutover: argv.cutover } : {}),
          backup: argv.backup,
        };
        if (argv.dryRun) {
          const preview = await previewMove(asked);
          return showDryRun(argv, { dryRun: preview }, previewLines(preview), {
            wouldExit: preview.wouldExit,
            why: preview.problems,
          });
        }
        if (!argv.yes) {
          // What the question names is read first; with --yes the move reads it itself.
          const preview = await previewMove(asked);
          await confirm(
            preview.resumes
              ? `Resume move ${preview.resumes.moveId} of ${preview.source} to ${preview.destination.server}?`
              : `Move ${preview.source} to ${preview.destination.server} as ${preview.destination.database}, freezing it (read-only for others) until the move is finished or rolled back?`,
            { yes: false, command: 'move' },
          );
        }
        const report = await moveDatabase({
          ...asked,
          lockWaitMs: lockWait(argv.lockWait),
          signal,
        });
        return emit(argv, { move: report }, moveLines(report));
      },
      undefined,
      { kind: 'abort', stopping: 'the move' },
    ),
};

const PHASE_WORDS: Record<MovePreview['phases'][number], string> = {
  guard: 'guard    a fresh verified backup of the source',
  preflight: 'check    the destination: version, roles, extensions, name, disk space',
  freeze: 'freeze   the source: other sessions read-only until finished or rolled back',
  copy: "copy     dump the frozen source, restore it on the destination in the source's locale, prove it by fingerprints",
  checks: 'checks   amcheck on every B-tree index, collation versions, extensions, ANALYZE',
  cutover: 'cutover  run the cutover command',
};

function previewLines(p: MovePreview): string[] {
  return [
    `Dry run: lifeboat move ${p.source} to ${p.destination.server} as ${p.destination.database}`,
    ...(p.resumes ? [`  resumes move ${p.resumes.moveId} from its ${p.resumes.from}`] : []),
    `  guard: ${p.guard}`,
    ...p.phases.map((phase, i) => `  ${i + 1}. ${PHASE_WORDS[phase]}`),
    ...p.notes.map((n) => `  note: ${n}`),
    ...p.problems.map((problem) => `  refused: ${problem}`),
  ];
}

export function moveLines(r: MoveReport): string[] {
  const c = r.checks;
  const took = r.phases.map((p) => `${p.phase} ${formatDuration(p.ms)}`).join(', ');
  return [
    `${r.resumed ? 'Resumed and moved' : 'Moved'} ${r.source} to ${r.destination.server} as ${r.destination.database} (move ${r.moveId})`,
    `  proved: the destination's fingerprints equal the frozen source's (backup ${r.copyBackupId})`,
    ...(c
      ? [
          `  checked: ${c.indexesSkipped ? `indexes NOT checked (${c.indexesSkipped})` : `${c.indexesChecked} B-tree indexes (amcheck)`}, ${c.collationsChecked} collation versions, ${c.sequences} sequences; ANALYZE ${formatDuration(c.analyzeMs)}${c.extensionsUpdated.length > 0 ? `; extensions updated: ${c.extensionsUpdated.join(', ')}` : ''}`,
        ]
      : []),
    ...(r.createdRoles.length > 0
      ? [
          `  created roles: ${r.createdRoles.join(', ')} (without passwords: set them before they log in)`,
        ]
      : []),
    `  phases: ${took}`,
    r.cutover
      ? `  cutover: ran ${r.cutover.command}`
      : '  cutover: none given; repoint the applications yourself',
    `  connect: ${r.destination.connection}`,
    `  the source stays frozen and untouched: when the applications use the destination, lifeboat move --finish; to go back, lifeboat rollback`,
  ];
}

function finishLines(r: MoveRecord): string[] {
  return [
    `Finished move ${r.id}: ${r.source.described} is retired, read-only and marked as moved to ${r.destination.server}/${r.destination.database}.`,
    `  the database now: ${r.destination.connection}`,
    '  nothing was dropped: the old database stays on its server, read-only, until you drop it.',
  ];
}
