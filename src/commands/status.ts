import type { Argv, CommandModule } from 'yargs';
import { globalOptions, targetFor, type GlobalArgs } from '../cli/context.js';
import { exitCodes } from '../cli/help.js';
import { emit, runCommand } from '../cli/output.js';
import { loadConfig } from '../config.js';
import { describeHolder } from '../run/lock.js';
import { isMoveId } from '../run/runner-id.js';
import { readStatus, type TargetStatus } from '../status.js';

export const statusCommand: CommandModule<object, GlobalArgs> = {
  command: 'status',
  describe: 'The current or last run: steps done, steps in doubt, who holds the lock',
  builder: (y: Argv) =>
    globalOptions(y)
      .example('$0 status', 'what the journal says about the last run')
      .epilog(exitCodes(0, 2)),
  handler: (argv) =>
    runCommand(argv, async () => {
      const config = await loadConfig({ config: argv.config });
      const status = await readStatus(targetFor(argv, config));
      emit(argv, { status }, statusLines(status));
    }),
};

export function statusLines(status: TargetStatus): string[] {
  const { lock: holder, frozen, unfrozen: thawed, lastRun: last, steps } = status;
  const lines = [`Journal of ${status.target}`];
  lines.push(`  lock: ${holder ? `held by ${describeHolder(holder)}` : 'free'}`);
  if (frozen && isMoveId(frozen.runId)) {
    lines.push(
      `  frozen by move ${frozen.runId} since ${frozen.since}: other sessions are read-only until it is finished (lifeboat move --finish) or rolled back (lifeboat rollback).`,
    );
  } else if (frozen) {
    lines.push(
      `  frozen by run ${frozen.runId} since ${frozen.since}: other sessions are read-only.`,
      holder
        ? '  it is lifted when the run ends.'
        : '  the run stopped unfinished: `lifeboat rollback` undoes it (restoring the backup if it must) and unfreezes; `lifeboat unfreeze` lifts it now, after which a restore would no longer be lossless.',
    );
  }
  if (thawed) {
    lines.push(
      `  unfroze the database: run ${thawed.runId} froze it at ${thawed.since} and is no longer running`,
    );
  }
  if (!last) {
    lines.push('  no run yet');
    return lines;
  }
  lines.push(
    `  last run: ${last.id} of ${last.runbook} (${last.runbookFile}), ${last.status}`,
    `    started ${last.startedAt} on ${last.host} pid ${last.pid}${last.finishedAt ? `, finished ${last.finishedAt}` : ''}`,
    `    guarded by backup ${last.backupId ?? '(none)'}`,
    ...(last.frozenAt
      ? [
          `    frozen from ${last.frozenAt}${last.unfrozenAt ? ` to ${last.unfrozenAt}` : ', not lifted yet'}`,
        ]
      : []),
    ...(last.error ? [`    ${last.error}`] : []),
    ...steps.map(
      (s) =>
        `    ${s.id}: ${s.state}${s.state === 'running' || s.state === 'being undone' ? ` since ${s.since}, by ${describeHolder(holder!)}` : ''}${s.note ? ` — ${s.note}` : ''}`,
    ),
  );
  if (last.status === 'running' && !holder) {
    lines.push(
      '  the run is not holding the lock: its process stopped. `lifeboat run` resumes it; `lifeboat rollback` undoes it.',
    );
  }
  if (steps.some((s) => s.state.startsWith('in doubt'))) {
    lines.push(
      '  a step is in doubt: `lifeboat run` decides it by its verify query, or asks you (--resolve STEP=applied|not-applied)',
    );
  }
  return lines;
}
