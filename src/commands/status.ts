import type { Argv, CommandModule } from 'yargs';
import { globalOptions, targetFor, type GlobalArgs } from '../cli/context.js';
import { exitCodes } from '../cli/help.js';
import { emit, runCommand } from '../cli/output.js';
import { loadConfig } from '../config.js';
import { withClient } from '../db.js';
import { readJournal } from '../run/journal-view.js';
import { readFreeze, unfreezeDatabase, writableDuringFreeze } from '../run/freeze.js';
import type { RunRow } from '../run/journal.js';
import { describeHolder, type LockHolder } from '../run/lock.js';
import { stepStates, withKnexTruth, type StepState } from '../run/state.js';
import { describeTarget } from '../target.js';

/** Why a knex step's state differs from what lifeboat's journal recorded. */
const OUTSIDE = {
  applied: 'knex lists it as applied: applied outside lifeboat, which never undoes it',
  undone: 'knex no longer lists it: undone outside lifeboat (knex migrate:rollback or :down)',
};

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
      const target = targetFor(argv, config);
      const { view, thawed, frozen } = await withClient(
        writableDuringFreeze(target),
        async (client) => {
          const view = await readJournal(client);
          const freeze = await readFreeze(client, target.database);
          const run = view.runs.find((r) => r.id === freeze?.runId);
          // A freeze whose run has ended (crashed after finishing, or gone) is lifted here. An
          // unfinished run keeps it: it is what lets its rollback restore the backup losslessly.
          const unfinished = run && ['running', 'rolling-back'].includes(run.status);
          const thawed =
            freeze && !view.holder && !unfinished
              ? await unfreezeDatabase(client, target.database)
              : undefined;
          return { view, thawed, frozen: thawed ? undefined : freeze };
        },
      );
      const last = view.runs.at(-1);
      const lines = [`Journal of ${describeTarget(target)}`];
      lines.push(`  lock: ${view.holder ? `held by ${describeHolder(view.holder)}` : 'free'}`);
      if (frozen) {
        lines.push(
          `  frozen by run ${frozen.runId} since ${frozen.since}: other sessions are read-only.`,
          view.holder
            ? '  it is lifted when the run ends.'
            : '  the run stopped unfinished: `lifeboat rollback` undoes it (restoring the backup if it must) and unfreezes; `lifeboat unfreeze` lifts it now, after which a restore would no longer be lossless.',
        );
      }
      if (thawed) {
        lines.push(
          `  unfroze the database: run ${thawed.runId} froze it at ${thawed.since} and is no longer running`,
        );
      }
      let steps: { id: string; state: string; since: string; note: string | null }[] = [];
      if (!last) {
        lines.push('  no run yet');
      } else {
        const states = withKnexTruth(stepStates(view.events, last.runbook), view.knex);
        const touched = view.events.filter((e) => e.runId === last.id);
        const ids = [...new Set(touched.map((e) => e.stepId))];
        const live = runIsLive(last, view.holder);
        steps = ids.map((id) => {
          const s = states.get(id)!;
          return {
            id,
            state: stepState(s, live),
            since: s.last.startedAt,
            note: s.outside ? OUTSIDE[s.outside] : s.last.error,
          };
        });
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
              `    ${s.id}: ${s.state}${s.state === 'running' || s.state === 'being undone' ? ` since ${s.since}, by ${describeHolder(view.holder!)}` : ''}${s.note ? ` — ${s.note}` : ''}`,
          ),
        );
        if (last.status === 'running' && !view.holder) {
          lines.push(
            '  the run is not holding the lock: its process stopped. `lifeboat run` resumes it; `lifeboat rollback` undoes it.',
          );
        }
        if (steps.some((s) => s.state.startsWith('in doubt'))) {
          lines.push(
            '  a step is in doubt: `lifeboat run` decides it by its verify query, or asks you (--resolve STEP=applied|not-applied)',
          );
        }
      }
      emit(
        argv,
        {
          status: {
            target: describeTarget(target),
            lock: view.holder ?? null,
            lastRun: last ?? null,
            steps,
            runs: view.runs.length,
            unfrozen: thawed ?? null,
            frozen: frozen ?? null,
          },
        },
        lines,
      );
    }),
};

/**
 * The run is alive when the lock is held by it (or, for a rollback, which
 * holds the lock without naming a run, by anyone while the run is unfinished):
 * a step it has started is then still running, not in doubt.
 */
export function runIsLive(run: RunRow, holder: LockHolder | undefined): boolean {
  if (!holder || !['running', 'rolling-back'].includes(run.status)) return false;
  return holder.run ? holder.run.id === run.id : true;
}

/** What `status` calls a step: `running` while its run is alive, `in doubt` only once it is not. */
export function stepState(s: StepState, live: boolean): string {
  if (s.effect !== 'in-doubt') return s.effect;
  if (live && s.last.status === 'started')
    return s.last.direction === 'up' ? 'running' : 'being undone';
  return `in doubt (${s.last.direction} ${s.last.status})`;
}
