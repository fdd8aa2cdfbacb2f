#!/usr/bin/env node
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { reportError, warnUnreadable } from './cli/output.js';
import { missingValue, usageMessage } from './cli/usage-message.js';
import { backupCommand } from './commands/backup.js';
import { baselineCommand } from './commands/baseline.js';
import { backupsCommand } from './commands/backups.js';
import { doctorCommand } from './commands/doctor.js';
import { gateCommand } from './commands/gate.js';
import { verifyCommand } from './commands/verify.js';
import { demoCommand } from './commands/demo.js';
import { unfreezeCommand } from './commands/unfreeze.js';
import { rehearseCommand } from './commands/rehearse.js';
import { planCommand } from './commands/plan.js';
import { restoreCommand } from './commands/restore.js';
import { rollbackCommand } from './commands/rollback.js';
import { runCommandModule } from './commands/run.js';
import { statusCommand } from './commands/status.js';
import { initCommand } from './commands/init.js';
import { historyCommand } from './commands/history.js';
import { configCommand } from './commands/config.js';
import { drillCommand } from './commands/drill.js';
import { moveCommand } from './commands/move.js';
import { UsageError } from './errors.js';
import { onUnreadableDestination } from './repository/catalog.js';
import { registerEnvironmentSecrets } from './secrets.js';
import { setUserUmask } from './step-env.js';
import { LIFEBOAT_VERSION } from './version.js';

/** Wiring only: each command lives in src/commands, the work in the library. */

/** What yargs' usage object (the third argument of .fail) knows; its types do not say. */
interface KnownWords {
  getDescriptions(): Record<string, unknown>;
  getCommands(): [string, ...unknown[]][];
}
const wantsJson = process.argv.includes('--json');
// Known before anything can fail: every text that leaves the process is redacted of them.
registerEnvironmentSecrets(process.env);
// A backup holds every row: what lifeboat and the tools it runs (pg_dump) create is the user's
// alone, whatever their umask. Steps get the user's own umask back (see runShell).
setUserUmask(process.umask(0o077));
// The library tells what it could not read; the CLI says it.
onUnreadableDestination(warnUnreadable);

const args = hideBin(process.argv);
const cli = yargs(args)
  .scriptName('lifeboat')
  .usage(
    '$0 <command>\n\nA guarded runner for PostgreSQL storage upgrades: no upgrade without a backup proved to restore.',
  )
  .command(initCommand)
  .command(doctorCommand)
  .command(configCommand)
  .command(backupCommand)
  .command(verifyCommand)
  .command(backupsCommand)
  .command(gateCommand)
  .command(planCommand)
  .command(rehearseCommand)
  .command(runCommandModule)
  .command(baselineCommand)
  .command(statusCommand)
  .command(historyCommand)
  .command(rollbackCommand)
  .command(restoreCommand)
  .command(moveCommand)
  .command(drillCommand)
  .command(unfreezeCommand)
  .command(demoCommand)
  .demandCommand(1, 'Name a command; `lifeboat --help` lists them.')
  .strict()
  .version(LIFEBOAT_VERSION)
  .help()
  .completion('completion', 'Print a shell completion script')
  .wrap(Math.min(110, process.stdout.columns || 100))
  // A usage error (an unknown flag, a typo) must stop before anything runs: throwing here
  // keeps yargs from going on to the command's handler, which a returning handler does not.
  .middleware((argv) => {
    const flag = missingValue(args, argv);
    if (flag) throw new UsageError(`${flag} needs a value (see lifeboat --help).`);
  })
  .fail((message, err, usage) => {
    if (err) throw err;
    const known = usage as unknown as KnownWords;
    throw new UsageError(
      usageMessage(message, args, {
        options: Object.keys(known.getDescriptions()),
        commands: known.getCommands().map((c) => c[0].split(' ')[0]!),
      }),
    );
  });

skipHelpRendering(cli);
try {
  await cli.parseAsync();
} catch (err) {
  process.exitCode = reportError({ json: wantsJson }, err);
}

/**
 * yargs renders a command's whole help text as the command starts, in case a
 * later failure prints it (about 20 ms of text layout). Ours never does: the
 * fail handler above says one sentence instead. So unless help was asked
 * for, that rendering is skipped. Reached through yargs' internal methods,
 * and only where they are as expected.
 */
function skipHelpRendering(parser: typeof cli): void {
  if (args.includes('--help') || args.includes('-h')) return;
  const internal = (parser as unknown as { getInternalMethods?: () => InternalMethods })
    .getInternalMethods;
  const usage = internal?.call(parser).getUsageInstance?.();
  if (typeof usage?.cacheHelpMessage === 'function') usage.cacheHelpMessage = () => undefined;
}
interface InternalMethods {
  getUsageInstance?: () => { cacheHelpMessage?: () => void } | undefined;
}
