import type { Argv, CommandModule } from 'yargs';
import { globalOptions, targetFor, type GlobalArgs } from '../cli/context.js';
import { exitCodes } from '../cli/help.js';
import { emit, runCommand } from '../cli/output.js';
import { loadConfig } from '../config.js';
import { withClient } from '../db.js';
import { ConnectionError } from '../errors.js';
import { appliedStepsIn } from '../run/journal-view.js';
import { loadRunbook } from '../runbook/load.js';
import { planRunbook } from '../runbook/plan.js';
import { renderPlan } from '../runbook/render-plan.js';

interface PlanArgs extends GlobalArgs {
  runbook: string;
  offline: boolean;
}

export const planCommand: CommandModule<object, PlanArgs> = {
  command: 'plan <runbook>',
  describe: 'Pending steps, how each would be undone, and their risks',
  builder: (y: Argv) =>
    globalOptions(y)
      .positional('runbook', { type: 'string', demandOption: true })
      .option('offline', {
        type: 'boolean',
        default: false,
        describe: 'Do not read the journal: every step shows as pending',
      })
      .example('$0 plan runbooks/add-status.yaml', 'what run would do, against this database')
      .example('$0 plan upgrade.yaml --offline --json', 'review a runbook in CI without a database')
      .epilog(exitCodes(0, 2)),
  handler: (argv) =>
    runCommand(argv, async () => {
      const runbook = await loadRunbook(argv.runbook);
      let applied: Awaited<ReturnType<typeof appliedStepsIn>> = [];
      let journal = 'offline: every step shown as pending';
      if (!argv.offline) {
        const config = await loadConfig({ config: argv.config });
        try {
          applied = await withClient(targetFor(argv, config), (client) =>
            appliedStepsIn(client, runbook),
          );
          journal = 'read from the database';
        } catch (err) {
          if (!(err instanceof ConnectionError)) throw err;
          throw new ConnectionError(`${err.message} (use --offline to plan without the database)`, {
            cause: err,
          });
        }
      }
      const plan = planRunbook(runbook, applied);
      emit(argv, { plan: { ...plan, journal } }, [...renderPlan(plan), `(journal ${journal})`]);
    }),
};
