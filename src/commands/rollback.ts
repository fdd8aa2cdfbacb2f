import type { Argv, CommandModule } from 'yargs';
import { commandContext, globalOptions, type GlobalArgs } from '../cli/context.js';
import { exitCodes } from '../cli/help.js';
import { emit, runCommand } from '../cli/output.js';
import type { ReportSpec } from '../cli/reports.js';
import { withClient } from '../db.js';
import { requirePrivileges } from '../privileges.js';
import { confirm } from '../cli/confirm.js';
import { showDryRun } from '../cli/dry-run.js';
import { BadInputError } from '../errors.js';
import { describeHolder } from '../run/lock.js';
import { isMoveId } from '../run/runner-id.js';
import { previewRollback, type RollbackPreview } from '../run/preview.js';
import { describeTarget, type Target } from '../target.js';
import { runReportLines } from '../cli/run-report.js';
import { undoRun } from '../run/undo-run.js';
import {
  lockWait,
  parseResolutions,
  printingReport,
  runSessionOptions,
  type RunSessionArgs,
} from '../cli/run-session.js';
import type { InterruptPolicy } from '../cli/interrupt.js';
import type { MoveRecord } from '../move/record.js';
import { openMove, rollbackMove } from '../move/way-back.js';

interface RollbackArgs extends GlobalArgs, RunSessionArgs {
  run?: string;
  to?: string;
  force: boolean;
  dryRun: boolean;
  yes: boolean;
}

export const rollbackCommand: CommandModule<object, RollbackArgs> = {
  command: 'rollback [run]',
  describe: 'Undo a partial or finished run, newest step first, proved by fingerprints',
  builder: (y: Argv) =>
    runSessionOptions(globalOptions(y))
      .positional('run', {
        type: 'string',
        describe: 'Run id (default: the latest run not rolled back)',
      })
      .option('dry-run', {
        type: 'boolean',
        default: false,
        describe: 'Say what would be undone, in order, and how; change nothing',
      })
      .option('yes', {
        type: 'boolean',
        default: false,
        describe: 'Do not ask for confirmation (needed when not on a terminal)',
      })
      .option('to', {
        type: 'string',
        describe:
          "With an open move: the destination's URL, to count the writes it took (default: the move's recorded connection)",
      })
      .option('force', {
        type: 'boolean',
        default: false,
        describe:
          'With an open move: go back even though the destination took writes, or cannot be read (they stay there)',
      })
      .example('$0 rollback', 'undo the latest run, or the open move (asks first on a terminal)')
      .example('$0 rollback --dry-run', 'what would be undone, newest first, and how')
      .example('$0 rollback --yes', 'in a script: no question asked')
      .example(
        '$0 rollback run-20261121T101500Z-3f2a --json',
        'undo one run; print its record as JSON',
      )
      .epilog(exitCodes(0, 2, 6, 7)) as unknown as Argv<RollbackArgs>,
  handler: (argv) => {
    const spec: ReportSpec = { command: 'rollback' };
    return runCommand(
      argv,
      async () => {
        const ctx = await commandContext(argv);
        const move =
          argv.run === undefined || isMoveId(argv.run)
            ? await openMove(ctx.config, ctx.target)
            : undefined;
        if (move && (argv.run === undefined || argv.run === move.id)) {
          if (argv.dryRun) {
            return showDryRun(argv, { dryRun: { moveId: move.id } }, moveRollbackLines(move), {
              wouldExit: 0,
              why: [],
            });
          }
          await confirm(
            `Go back to ${move.source.described}: unfreeze it and leave move ${move.id} (the destination's ${move.destination.database} is kept)?`,
            { yes: argv.yes, command: 'rollback' },
          );
          const back = await rollbackMove({
            ...ctx,
            source: ctx.target,
            record: move,
            lockWaitMs: lockWait(argv.lockWait),
            force: argv.force,
            ...(argv.to !== undefined ? { to: argv.to } : {}),
          });
          return emit(argv, { moveRollback: back }, [
            `Rolled back move ${back.moveId}: ${back.source} ${back.unfrozen ? 'is unfrozen; applications may write to it again' : 'was not frozen by the move'}.`,
            ...(back.destinationWrites !== undefined
              ? [
                  `  the destination took ${back.destinationWrites} row write(s) since the move was checked`,
                ]
              : []),
            `  kept on the destination, never dropped: ${back.kept}`,
          ]);
        }
        if (isMoveId(argv.run)) {
          throw new BadInputError(
            `Move ${argv.run} is not open on ${describeTarget(ctx.target)}; only an open move can be rolled back.`,
          );
        }
        const preview = await previewRollback({ target: ctx.target, runId: argv.run });
        if (argv.dryRun) {
          if (!preview) throw noRunToRollBack(argv.run, ctx.target);
          return showDryRun(argv, { dryRun: preview }, rollbackPreviewLines(preview), {
            wouldExit: preview.wouldExit,
            why: rollbackRefusal(preview),
          });
        }
        if (preview) {
          await confirm(
            `Roll back run ${preview.runId} of ${preview.runbook} on ${preview.target}: ${
              preview.actions
                .filter((a) => a.action === 'undo')
                .map((a) => `undo ${a.stepId}`)
                .join(', ') || 'nothing to undo'
            }?`,
            { yes: argv.yes, command: 'rollback' },
          );
        }
        Object.assign(spec, { config: ctx.config, target: describeTarget(ctx.target) });
        // The journal and the fingerprints that prove a rollback: refused before anything runs.
        await withClient(ctx.target, (c) =>
          requirePrivileges(c, ['read', 'journal'], 'A rollback'),
        );
        const report = await printingReport(argv, spec, () =>
          undoRun({
            ...ctx,
            runId: argv.run,
            lockWaitMs: lockWait(argv.lockWait),
            resolutions: parseResolutions(argv.resolve),
            terminateStale: argv.terminateStale,
          }),
        );
        return emit(argv, { rollback: report }, runReportLines(report));
      },
      spec,
      ROLLBACK_INTERRUPTS,
    );
  },
};

/** What going back from an open move would do. */
function moveRollbackLines(m: MoveRecord): string[] {
  return [
    `Dry run: lifeboat rollback of move ${m.id} (${m.state}) of ${m.source.described}`,
    `  1. count the row writes ${m.destination.server}/${m.destination.database} took since the move was checked; any stops the rollback (--force goes on)`,
    `  2. unfreeze ${m.source.database}: applications may write to it again`,
    `  the destination's ${m.destination.database} is kept, never dropped`,
  ];
}

/** A rollback is not stopped half-way: that would leave the database in neither state. */
const ROLLBACK_INTERRUPTS: InterruptPolicy = {
  kind: 'safe-point',
  first:
    'interrupt: the rollback goes on to its end, each step checkpointed: stopping half-way would leave the database in neither state. It ends by itself; `lifeboat status` shows where it is.',
  later: 'interrupt: the rollback is still finishing; it ends by itself.',
};

/** A dry run of `rollback`: each step newest first, and how it would be undone. */
function rollbackPreviewLines(p: RollbackPreview): string[] {
  return [
    `Dry run: lifeboat rollback of run ${p.runId} (${p.runbook}) on ${p.target}`,
    `  lock: ${p.lock ? `held by ${describeHolder(p.lock)}: the rollback would exit 7` : 'free'}`,
    ...p.actions.map((a) => `  ${a.action === 'undo' ? 'undo' : 'skip'}  ${a.stepId}: ${a.how}`),
    ...p.blockers.map((b) => `  STOP  ${b.stepId}: ${b.reason}`),
    p.blockers.length === 0
      ? '  then prove the database equal to its state before the run, by fingerprints'
      : p.restoresBackup
        ? `  the run held the database frozen: restore its verified backup ${p.restoresBackup} beside it and swap it in`
        : '  nothing is undone while a step cannot be: the rollback would stop (exit 6)',
  ];
}

function rollbackRefusal(p: RollbackPreview): string[] {
  if (p.lock) return [`another run holds the lock: ${describeHolder(p.lock)}`];
  return p.blockers.map((b) => `step ${b.stepId} cannot be undone: ${b.reason}`);
}

function noRunToRollBack(runId: string | undefined, target: Target): BadInputError {
  return new BadInputError(
    runId
      ? `There is no run ${runId} to roll back in ${describeTarget(target)}; see \`lifeboat status\`.`
      : `There is no run to roll back in ${describeTarget(target)}.`,
  );
}
