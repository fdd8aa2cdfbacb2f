import type { Argv, CommandModule } from 'yargs';
import { globalOptions, targetFor, type GlobalArgs } from '../cli/context.js';
import { exitCodes } from '../cli/help.js';
import { emit, runCommand } from '../cli/output.js';
import { loadConfig } from '../config.js';
import { baselineRunbook, type BaselineReport } from '../run/baseline.js';
import { lockWait } from '../cli/run-session.js';

interface BaselineArgs extends GlobalArgs {
  runbook: string;
  to: string;
  dryRun: boolean;
  lockWait: string;
}

export const baselineCommand: CommandModule<object, BaselineArgs> = {
  command: 'baseline <runbook>',
  describe:
    'Record the steps up to one as applied before lifeboat was adopted (nothing runs; lifeboat never undoes them)',
  builder: (y: Argv) =>
    globalOptions(y)
      .positional('runbook', { type: 'string', demandOption: true, describe: 'The runbook (YAML)' })
      .option('to', {
        type: 'string',
        demandOption: true,
        describe: 'The last step already applied by hand (a sql, shell or check step)',
      })
      .option('dry-run', {
        type: 'boolean',
        default: false,
        describe: 'Say what would be recorded; change nothing',
      })
      .option('lock-wait', {
        type: 'string',
        default: '0s',
        describe: 'How long to wait for a run to finish',
      })
      .example(
        '$0 baseline upgrade.yaml --to add-status --dry-run',
        'which steps would be recorded as applied before adoption',
      )
      .example(
        '$0 baseline upgrade.yaml --to add-status',
        'record them; `run` then starts after add-status (knex migrations need no baseline)',
      )
      .epilog(exitCodes(0, 2, 7)) as unknown as Argv<BaselineArgs>,
  handler: (argv) =>
    runCommand(argv, async () => {
      const config = await loadConfig({ config: argv.config });
      const report = await baselineRunbook({
        target: targetFor(argv, config),
        runbookFile: argv.runbook,
        to: argv.to,
        dryRun: argv.dryRun,
        lockWaitMs: lockWait(argv.lockWait),
      });
      emit(argv, { baseline: report }, baselineLines(report));
    }),
};

function baselineLines(r: BaselineReport): string[] {
  const verb = r.dryRun ? 'would record' : 'recorded';
  return [
    r.recorded.length === 0
      ? `Baseline of ${r.runbook} on ${r.target}: nothing to record.`
      : `Baseline of ${r.runbook} on ${r.target}${r.runId ? ` (run ${r.runId})` : ''}: ${verb} ${r.recorded.length} step(s) as applied before adoption; lifeboat never runs or undoes them.`,
    ...r.recorded.map((id) => `  ${id}: ${verb} as applied`),
    ...r.skipped.map((s) => `  ${s.id}: left as it is (${s.reason})`),
  ];
}
