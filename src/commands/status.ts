import type { Argv, CommandModule } from 'yargs';
import { globalOptions, targetFor, type GlobalArgs } from '../cli/context.js';
import { exitCodes } from '../cli/help.js';
import { emit, runCommand } from '../cli/output.js';
import { loadConfig } from '../config.js';
import { withClient } from '../db.js';
import { readJournal } from '../run/journal-view.js';
import { unfreezeDatabase, writableDuringFreeze } from '../run/freeze.js';
import { describeHolder } from '../run/lock.js';
import { stepStates } from '../run/state.js';
import { describeTarget } from '../target.js';

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
      const { view, thawed } = await withClient(writableDuringFreeze(target), async (client) => {
        const view = await readJournal(client);
        // A freeze whose run is gone (no one holds the lock) is lifted here: a crash never leaves users read-only.
        const thawed = view.holder ? undefined : await unfreezeDatabase(client, target.database);
        return { view, thawed };
      });
      const last = view.runs.at(-1);
      const lines = [`Journal of ${describeTarget(target)}`];
      lines.push(`  lock: ${view.holder ? `held by ${describeHolder(view.holder)}` : 'free'}`);
      if (thawed) {
        lines.push(
          `  unfroze the database: run ${thawed.runId} froze it at ${thawed.since} and is no longer running`,
        );
      }
      let steps: { id: string; state: string; since: string; note: string | null }[] = [];
      if (!last) {
        lines.push('  no run yet');
      } else {
        const states = stepStates(view.events, last.runbook);
        const touched = view.events.filter((e) => e.runId === last.id);
        const ids = [...new Set(touched.map((e) => e.stepId))];
        steps = ids.map((id) => {
          const s = states.get(id)!;
          return {
            id,
            state:
              s.effect === 'in-doubt'
                ? `in doubt (${s.last.direction} ${s.last.status})`
                : s.effect,
            since: s.last.startedAt,
            note: s.last.error,
          };
        });
        lines.push(
          `  last run: ${last.id} of ${last.runbook} (${last.runbookFile}), ${last.status}`,
          `    started ${last.startedAt} on ${last.host} pid ${last.pid}${last.finishedAt ? `, finished ${last.finishedAt}` : ''}`,
          `    guarded by backup ${last.backupId ?? '(none)'}`,
          ...(last.error ? [`    ${last.error}`] : []),
          ...steps.map((s) => `    ${s.id}: ${s.state}${s.note ? ` — ${s.note}` : ''}`),
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
          },
        },
        lines,
      );
    }),
};
