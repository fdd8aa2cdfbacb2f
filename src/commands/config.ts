import type { Argv, CommandModule } from 'yargs';
import { globalOptions, type GlobalArgs } from '../cli/context.js';
import { exitCodes } from '../cli/help.js';
import { emit, runCommand } from '../cli/output.js';
import { loadConfig, type Config } from '../config.js';
import { describeDestination } from '../repository/storage/destination.js';
import { formatDuration } from '../units.js';

interface ConfigArgs extends GlobalArgs {
  action: 'check';
}

export const configCommand: CommandModule<object, ConfigArgs> = {
  command: 'config <action>',
  describe: 'check: validate the configuration offline (no database, no store is contacted)',
  builder: (y: Argv) =>
    globalOptions(y)
      .positional('action', { choices: ['check'] as const, demandOption: true })
      .example(
        '$0 config check',
        'the lifeboat.config.* found from here: every problem, with its line',
      )
      .example('$0 config check --config ci/lifeboat.config.yaml --json', 'a given file, as JSON')
      .epilog(exitCodes(0, 2)),
  handler: (argv) =>
    runCommand(argv, async () => {
      const config = await loadConfig({ config: argv.config });
      emit(argv, { config: configSummary(config) }, configLines(config));
    }),
};

function configSummary(c: Config) {
  return {
    file: c.file ?? null,
    destinations: c.destinations.map((d) => ({
      name: d.name,
      kind: d.kind,
      where: describeDestination(d),
      encrypted: Boolean(d.encrypt),
      keep: d.keep ?? c.keep,
    })),
    policy: { maxAgeMs: c.maxAgeMs, copies: c.copies, requireOffsite: c.requireOffsite },
    jobs: c.jobs,
    compression: c.compression ?? null,
    scratchServer: c.scratchUrl ? 'configured' : 'the target’s server',
  };
}

function configLines(c: Config): string[] {
  return [
    c.file
      ? `${c.file} is valid:`
      : 'No lifeboat.config.* found here or above; the built-in defaults apply:',
    ...c.destinations.map(
      (d) =>
        `  destination ${d.name}: ${describeDestination(d)}${d.encrypt ? ', encrypted with age' : ''}, keeps ${d.keep ?? c.keep}`,
    ),
    `  policy: a verified backup at most ${formatDuration(c.maxAgeMs)} old, intact in ${c.copies} destination(s)${c.requireOffsite ? ', one of them off-site' : ''}`,
    `  jobs: ${c.jobs} parallel pg_dump/pg_restore jobs; dump compression ${c.compression ?? 'pg_dump’s default'}; scratch databases on ${c.scratchUrl ? 'the configured scratch server' : 'the target’s server'}`,
  ];
}
