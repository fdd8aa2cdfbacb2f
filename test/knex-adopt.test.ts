import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli, workspace } from './support/cli.js';
import { createTestDatabase, type TestDatabase } from './support/db.js';
import { KNEX_CLI, knexStatus } from './support/knex.js';
import { expectState, fingerprintOf } from './run/support.js';

const exec = promisify(execFile);

/**
 * A knex project that has lived without lifeboat: its migrations applied by
 * `knex migrate:latest`, its tables full of rows. lifeboat arrives with
 * `init`, `backup` and `run`, and must take knex's table as the truth.
 */
const CUSTOMERS = `exports.up = (knex) => knex.schema.createTable('customers', (t) => {
  t.increments('id');
  t.text('email').notNullable();
});
exports.down = (knex) => knex.schema.dropTable('customers');
`;
const ORDERS = `exports.up = (knex) => knex.schema.createTable('orders', (t) => {
  t.increments('id');
  t.integer('customer_id').references('customers.id');
});
exports.down = (knex) => knex.schema.dropTable('orders');
`;
// A data fix whose down does nothing: knex applied it long ago; it is not lifeboat's to undo.
const BACKFILL = `exports.up = (knex) => knex('customers').where('email', 'like', '% %').del();
exports.down = async () => {};
`;
const NOTES = `exports.up = (knex) => knex.schema.alterTable('customers', (t) => { t.text('notes'); });
exports.down = (knex) => knex.schema.alterTable('customers', (t) => { t.dropColumn('notes'); });
`;
const KNEXFILE = `module.exports = {
  client: 'pg',
  connection: process.env.DATABASE_URL,
  migrations: { directory: './migrations' },
};
`;

describe('a knex project whose migrations knex already applied adopts lifeboat', () => {
  let db: TestDatabase;
  let ws: Awaited<ReturnType<typeof workspace>>;
  beforeEach(async () => {
    db = await createTestDatabase('knex_adopt');
    ws = await workspace();
    await mkdir(path.join(ws.dir, 'migrations'));
    await writeFile(path.join(ws.dir, 'migrations/001_create_customers.js'), CUSTOMERS);
    await writeFile(path.join(ws.dir, 'migrations/002_create_orders.js'), ORDERS);
    await writeFile(path.join(ws.dir, 'migrations/003_drop_bad_emails.js'), BACKFILL);
    await writeFile(path.join(ws.dir, 'knexfile.js'), KNEXFILE);
  });
  afterEach(async () => {
    await db.drop();
    await ws.cleanup();
  });

  const lifeboat = (...args: string[]) =>
    runCli([...args, '--database-url', db.url], { cwd: ws.dir });

  async function knexLatest(): Promise<void> {
    await exec(process.execPath, [KNEX_CLI, 'migrate:latest', '--knexfile', 'knexfile.js'], {
      cwd: ws.dir,
      env: {
        ...process.env,
        DATABASE_URL: db.url,
        KNEX_PATH: path.dirname(path.dirname(KNEX_CLI)),
      },
    });
  }

  it('init, backup, run: nothing is run again, nothing is undone, the 1000 customers stay', async () => {
    await knexLatest();
    await db.query(
      `insert into customers (email) select 'c' || g || '@example.com' from generate_series(1, 1000) g`,
    );
    const before = await fingerprintOf(db.url);

    const init = await runCli(['init'], { cwd: ws.dir });
    expect(init.code, init.stderr).toBe(0);
    const backup = await lifeboat('backup');
    expect(backup.code, backup.stderr).toBe(0);

    const plan = await lifeboat('plan', 'lifeboat.upgrade.yaml');
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toMatch(
      /migrations\/001_create_customers\.js\s+knex-migration\s+done by knex/,
    );
    expect(plan.stdout).toMatch(
      /migrations\/002_create_orders\.js\s+knex-migration\s+done by knex/,
    );
    expect(plan.stdout).toContain('3 steps: 3 done;');
    // Nothing pending, so nothing that cannot be undone: the CI gate passes.
    const gate = await lifeboat('gate', '--runbook', 'lifeboat.upgrade.yaml');
    expect(gate.code, `${gate.stdout}\n${gate.stderr}`).toBe(0);

    const run = await lifeboat('run', 'lifeboat.upgrade.yaml');
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toContain('every step is already applied; nothing to do');

    expect((await db.query('select count(*)::int as n from customers')).rows).toEqual([
      { n: 1000 },
    ]);
    expectState(await fingerprintOf(db.url), before, 'pre-run');
    expect(await knexStatus(db.url, { directory: path.join(ws.dir, 'migrations') })).toEqual({
      completed: ['001_create_customers.js', '002_create_orders.js', '003_drop_bad_emails.js'],
      pending: [],
    });
  });

  it('a migration knex lists whose file is gone is refused before anything runs (knex would refuse too)', async () => {
    await knexLatest();
    await rm(path.join(ws.dir, 'migrations/002_create_orders.js'));
    await writeFile(path.join(ws.dir, 'migrations/004_add_notes.js'), NOTES);
    const init = await runCli(['init'], { cwd: ws.dir });
    expect(init.code, init.stderr).toBe(0);
    const plan = await lifeboat('plan', 'lifeboat.upgrade.yaml');
    expect(plan.stdout).toContain(
      'Refused: knex lists migration "migrations/002_create_orders.js" as applied, but its file is not in the directory',
    );
    const before = await fingerprintOf(db.url);
    const run = await lifeboat('run', 'lifeboat.upgrade.yaml');
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(2);
    expect(run.stderr).toContain('knex refuses to run any migration until it is back');
    expectState(await fingerprintOf(db.url), before, 'untouched');
  });
});
