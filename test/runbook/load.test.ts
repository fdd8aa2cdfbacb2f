import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { BadInputError } from '../../src/errors.js';
import { RunbookError } from '../../src/runbook/errors.js';
import { loadRunbook } from '../../src/runbook/load.js';
import type { KnexMigrationStep, SqlStep } from '../../src/runbook/types.js';

let tmp: string;

beforeEach(async () => {
  tmp = await realpath(await mkdtemp(path.join(os.tmpdir(), 'lifeboat-runbook-')));
});
afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function write(relative: string, text: string): Promise<string> {
  const file = path.join(tmp, relative);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, text);
  return file;
}

async function loadError(file: string): Promise<RunbookError> {
  const error: unknown = await loadRunbook(file).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(RunbookError);
  return error as RunbookError;
}

const sqlStep = (id: string, sql: string): string => `  - id: ${id}\n    sql: { ${sql} }\n`;

describe('the example runbooks', () => {
  test('add-order-status reads its SQL files and decides their transaction mode', async () => {
    const runbook = await loadRunbook('runbooks/examples/add-order-status.yaml');
    const index = runbook.steps.find((s) => s.id === 'index-status') as SqlStep;
    expect(index.up.text).toContain('CREATE INDEX CONCURRENTLY');
    expect(index.up.transaction).toBe(false);
    expect(index.down?.transaction).toBe(false);
    expect(index.up.origin.file).toBe(path.join('runbooks/examples/sql/index-status.up.sql'));
    expect(runbook.directory).toBe(path.resolve('runbooks/examples'));
    expect(runbook.policy).toEqual({ maxAgeMs: 86_400_000, copies: 1 });
    const backfill = runbook.steps.find((s) => s.id === 'backfill-status');
    expect(backfill?.timeouts).toEqual({ lockTimeoutMs: 5000, statementTimeoutMs: 3_600_000 });
  });

  test('with-knex expands one step per migration, in knex order', async () => {
    const runbook = await loadRunbook('runbooks/examples/with-knex.yaml');
    const migrations = runbook.steps.filter((s) => s.kind === 'knex-migration');
    expect(migrations.map((s) => s.id)).toEqual([
      'app/20240101000000_create_customers.cjs',
      'app/20240102000000_add_customer_name.cjs',
      'app/20240103000000_index_customers_created_at.cjs',
    ]);
    expect(migrations.map((s) => [s.hasDown, s.transaction])).toEqual([
      [true, true],
      [true, true],
      [true, false],
    ]);
    expect(migrations[0]).toMatchObject({
      group: 'app',
      name: '20240101000000_create_customers.cjs',
      file: path.resolve('runbooks/examples/knex/20240101000000_create_customers.cjs'),
      tableName: 'knex_migrations',
      loadExtensions: ['.cjs'],
    });
  });
});

describe('file references', () => {
  test('a symlink that resolves outside the runbook directory is refused', async () => {
    await write('outside/secret.sql', 'DROP TABLE orders');
    const runbook = await write(
      'rb/runbook.yaml',
      `name: demo\nsteps:\n${sqlStep('a', 'upFile: link.sql')}`,
    );
    await symlink(path.join(tmp, 'outside/secret.sql'), path.join(tmp, 'rb/link.sql'));
    const error = await loadError(runbook);
    expect(error.details).toEqual([
      `${runbook}:4:20: link.sql resolves to ${path.join(tmp, 'outside/secret.sql')}, outside the runbook's directory`,
    ]);
  });

  test('a symlinked knex directory outside is refused too', async () => {
    await write('outside/migrations/001.cjs', 'exports.up = () => {}');
    const runbook = await write(
      'rb/runbook.yaml',
      'name: demo\nsteps:\n  - id: app\n    knex: { directory: m }\n',
    );
    await symlink(path.join(tmp, 'outside/migrations'), path.join(tmp, 'rb/m'));
    const error = await loadError(runbook);
    expect(error.details[0]).toMatch(/:4:24: m resolves to .*outside the runbook's directory$/);
  });

  test('a missing file is a problem at the line that names it', async () => {
    const runbook = await write(
      'rb.yaml',
      `name: demo\nsteps:\n${sqlStep('a', 'up: SELECT 1, downFile: gone.sql')}`,
    );
    const error = await loadError(runbook);
    expect(error.details).toEqual([`${runbook}:4:36: cannot find gone.sql (ENOENT)`]);
  });

  test('SQL from a file is checked like inline SQL, at the file’s own line', async () => {
    await write('sql/index.sql', '-- builds the index\n\nCREATE INDEX CONCURRENTLY i ON t (a);\n');
    const runbook = await write(
      'rb.yaml',
      `name: demo\nsteps:\n${sqlStep('a', 'upFile: sql/index.sql, transaction: true')}`,
    );
    const error = await loadError(runbook);
    expect(error.problems).toEqual([
      {
        file: path.join(tmp, 'sql/index.sql'),
        line: 3,
        column: 1,
        message:
          'up: CREATE INDEX CONCURRENTLY cannot run inside a transaction block; remove "transaction: true" to run this step outside a transaction',
      },
    ]);
  });
});

describe('knex directories', () => {
  test('migration files in knex order, other files and directories left out', async () => {
    await write(
      'm/2_b.cjs',
      'exports.up = (k) => k.raw("select 1");\nexports.down = (k) => k.raw("select 2");',
    );
    // An empty down is a down that undoes nothing: the plan says "no down".
    await write(
      'm/10_a.cjs',
      'exports.up = (k) => k.raw("select 1");\nexports.down = async () => {};',
    );
    await write('m/notes.md', '# not a migration');
    await mkdir(path.join(tmp, 'm/dir.cjs'));
    const runbook = await write(
      'rb.yaml',
      'name: demo\nsteps:\n  - id: app\n    knex: { directory: m, tableName: app_migrations, loadExtensions: [.cjs] }\n',
    );
    const steps = (await loadRunbook(runbook)).steps as KnexMigrationStep[];
    expect(steps.map((s) => [s.id, s.hasDown, s.tableName])).toEqual([
      ['app/10_a.cjs', false, 'app_migrations'],
      ['app/2_b.cjs', true, 'app_migrations'],
    ]);
  });

  test('a migration with no down export is a problem: knex would refuse to run it', async () => {
    await write('m/1_a.cjs', 'exports.up = (k) => k.raw("select 1");');
    const runbook = await write(
      'rb.yaml',
      'name: demo\nsteps:\n  - id: app\n    knex: { directory: m, loadExtensions: [.cjs] }\n',
    );
    const error = await loadError(runbook);
    expect(error.details[0]).toMatch(
      /m\/1_a\.cjs:1:1: exports no down, and knex refuses to run a migration without one/,
    );
  });

  test('a directory without migrations is a problem', async () => {
    await write('m/readme.md', 'nothing here');
    const runbook = await write(
      'rb.yaml',
      'name: demo\nsteps:\n  - id: app\n    knex: { directory: m }\n',
    );
    const error = await loadError(runbook);
    expect(error.details[0]).toMatch(/:4:24: no migration files \(.*\.cjs.*\) in m$/);
  });
});

describe('checksums', () => {
  async function checksums(upSql: string): Promise<string[]> {
    await write('up.sql', upSql);
    const runbook = await write(
      'rb.yaml',
      `name: demo\nsteps:\n${sqlStep('a', 'upFile: up.sql, down: SELECT 2')}${sqlStep('b', 'up: SELECT 3')}`,
    );
    return (await loadRunbook(runbook)).steps.map((s) => s.checksum);
  }

  test('change when the step’s SQL changes, and only for that step', async () => {
    const before = await checksums('UPDATE t SET a = 1 WHERE id = 1;\n');
    const same = await checksums('UPDATE t SET a = 1 WHERE id = 1;\n');
    const edited = await checksums('UPDATE t SET a = 2 WHERE id = 1;\n');
    expect(same).toEqual(before);
    expect(edited[0]).not.toBe(before[0]);
    expect(edited[1]).toBe(before[1]);
    expect(before[0]).toMatch(/^[0-9a-f]{64}$/);
  });

  test('ignore a change of line endings', async () => {
    const lf = await checksums('SELECT 1;\nSELECT 2;\n');
    const crlf = await checksums('SELECT 1;\r\nSELECT 2;\r\n');
    expect(crlf).toEqual(lf);
  });
});

describe('RunbookError', () => {
  test('is bad input (exit 2), lists every problem as file:line:col: message', async () => {
    const runbook = await write(
      'rb.yaml',
      'name: demo\nsteps:\n  - id: a\n  - id: a\n    sql: { up: SELECT 1 }\n',
    );
    const error = await loadError(runbook);
    expect(error).toBeInstanceOf(BadInputError);
    expect(error.exitCode).toBe(2);
    expect(error.kind).toBe('runbook');
    expect(error.message).toBe(`Runbook ${runbook} has 2 problems.`);
    expect(error.details).toEqual([
      `${runbook}:3:5: a step needs one kind: sql, check, knex, shell`,
      `${runbook}:4:9: duplicate step id "a" (steps[0] has it too); ids must be unique`,
    ]);
  });

  test('names a runbook that cannot be read', async () => {
    const missing = path.join(tmp, 'nope.yaml');
    const error = await loadError(missing);
    expect(error.message).toBe(`Runbook ${missing} has 1 problem.`);
    expect(error.details).toEqual([`${missing}:1:1: cannot read the runbook (ENOENT)`]);
  });
});

describe('knex steps', () => {
  test('two knex steps over the same directory and table are refused', async () => {
    await write(
      'm/1_a.cjs',
      'exports.up = (k) => k.raw("select 1");\nexports.down = (k) => k.raw("select 2");',
    );
    const runbook = await write(
      'rb.yaml',
      'name: demo\nsteps:\n  - id: app\n    knex: { directory: m, loadExtensions: [.cjs] }\n  - id: again\n    knex: { directory: ./m, loadExtensions: [.cjs] }\n',
    );
    const error = await loadError(runbook);
    expect(error.details).toEqual([
      expect.stringMatching(
        /:6:\d+: step app already runs the migrations in \.\/m; each would run twice$/,
      ),
    ]);
  });
});
