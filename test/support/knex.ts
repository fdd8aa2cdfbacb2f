import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { clientConfig, resolveTarget } from '../../src/target.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const KNEX_CLI = path.join(ROOT, 'node_modules/knex/bin/cli.js');

export interface KnexStatus {
  completed: string[];
  pending: string[];
}

export interface KnexCliMigrations {
  directory: string;
  tableName?: string;
  schemaName?: string;
  loadExtensions?: string[];
}

/**
 * The real knex CLI, as a user runs it (`knex migrate:latest`, `migrate:status`,
 * `migrate:rollback` ...), with a knexfile of its own pointing at `url`.
 * KNEX_PATH tells the CLI where its knex is when the knexfile lives elsewhere.
 */
export async function knexCli(
  url: string,
  migrations: KnexCliMigrations,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ stdout: string; stderr: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lifeboat-knexfile-'));
  try {
    const knexfile = path.join(dir, 'knexfile.cjs');
    const config = {
      client: 'pg',
      connection: clientConfig(resolveTarget(url), 'knex-cli'),
      migrations: { loadExtensions: ['.cjs', '.js'], ...migrations },
    };
    await writeFile(knexfile, `module.exports = ${JSON.stringify(config, null, 2)};\n`);
    return await run(process.execPath, [KNEX_CLI, ...args, '--knexfile', knexfile], {
      cwd: ROOT,
      env: {
        ...process.env,
        KNEX_PATH: path.join(ROOT, 'node_modules/knex'),
        NO_COLOR: '1',
        ...env,
      },
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** `knex migrate:status`, parsed: what has to agree with lifeboat. */
export async function knexStatus(url: string, migrations: KnexCliMigrations): Promise<KnexStatus> {
  const { stdout } = await knexCli(url, migrations, ['migrate:status']);
  return parseKnexStatus(stdout);
}

export function parseKnexStatus(stdout: string): KnexStatus {
  // eslint-disable-next-line no-control-regex
  const lines = stdout.replace(/\x1b\[[0-9;]*m/g, '').split('\n');
  const status: KnexStatus = { completed: [], pending: [] };
  let section: string[] | undefined;
  let sawPendingHeader = false;
  for (const raw of lines) {
    const line = raw.trim();
    // The CLI's preamble (it chdirs to the knexfile's directory and says so).
    if (
      line === '' ||
      /^(Working directory changed to|Using environment|Requiring external module) /.test(line)
    )
      continue;
    if (
      /^Found \d+ Completed Migration/.test(line) ||
      line === 'No Completed Migration files Found.'
    ) {
      section = line.startsWith('Found') ? status.completed : undefined;
    } else if (
      /^Found \d+ Pending Migration/.test(line) ||
      line === 'No Pending Migration files Found.'
    ) {
      section = line.startsWith('Found') ? status.pending : undefined;
      sawPendingHeader = true;
    } else if (section) {
      section.push(line);
    } else {
      throw new Error(`unexpected line in knex migrate:status output: ${line}\n${stdout}`);
    }
  }
  if (!sawPendingHeader) throw new Error(`knex migrate:status printed no status:\n${stdout}`);
  return status;
}
