import type { Argv } from 'yargs';
import { loadConfig, type Config, type ConfigOverrides } from '../config.js';
import type { Progress } from '../progress.js';
import { resolveTarget, type Target } from '../target.js';
import { terminalProgress } from './progress.js';

/** Options every command takes. */
export interface GlobalArgs {
  databaseUrl?: string;
  config?: string;
  json: boolean;
  quiet: boolean;
}

export function globalOptions<T>(y: Argv<T>): Argv<T & GlobalArgs> {
  return y
    .option('database-url', {
      type: 'string',
      describe: 'Target database (else DATABASE_URL, the config, or the PG* variables)',
    })
    .option('config', {
      type: 'string',
      describe: 'Config file (default: lifeboat.config.* upward)',
    })
    .option('json', {
      type: 'boolean',
      default: false,
      describe: 'Print one JSON document on stdout',
    })
    .option('quiet', { type: 'boolean', default: false, describe: 'Only the result, no progress' });
}

export interface CommandContext {
  config: Config;
  target: Target;
  progress: Progress;
}

/** Config, target and progress, resolved once at the edge. */
export async function commandContext(
  argv: GlobalArgs,
  overrides: ConfigOverrides = {},
): Promise<CommandContext> {
  const config = await loadConfig({
    config: argv.config,
    databaseUrl: argv.databaseUrl,
    ...overrides,
  });
  return {
    config,
    target: targetFor(argv, config),
    progress: terminalProgress({ json: argv.json, quiet: argv.quiet }),
  };
}

/** --database-url, then DATABASE_URL, then the config file, then the PG* variables. */
export function targetFor(argv: GlobalArgs, config: Config | undefined): Target {
  return resolveTarget(argv.databaseUrl ?? process.env.DATABASE_URL ?? config?.databaseUrl);
}
