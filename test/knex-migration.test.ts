import path from 'node:path';
import { fileURLToPath } from 'node:url';
import knexFactory from 'knex';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  KnexMigrationError,
  withKnexSession,
  type KnexMigrationRef,
} from '../src/run/knex-migration.js';
import { knexBatch, readKnexTables } from '../src/run/knex-table.js';
import { registerSecret } from '../src/secrets.js';
import { clientConfig, resolveTarget, type Target } from '../src/target.js';
import { createTestDatabase, type TestDatabase } from './support/db.js';
import { knexStatus as knexCliStatus, type KnexStatus as Status } from './support/knex.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const EXAMPLES = path.join(ROOT, 'runbooks/examples/knex');
const FIXTURES = path.join(ROOT, 'test/fixtures');

const CREATE = '20240101000000_create_customers.cjs';
const ADD_NAME = '20240102000000_add_customer_name.cjs';
const INDEX = '20240103000000_index_customers_created_at.cjs';
const EXAMPLE_NAMES = [CREATE, ADD_NAME, INDEX];

function ref(directory: string, name: string, extra: Partial<KnexMigrationRef> = {}) {
  return { name, directory, tableName: 'knex_migrations', loadExtensions: ['.cjs'], ...extra };
}
const example = (name: string) => ref(EXAMPLES, name);

/** One migration through a session of its own, as a run with one knex step would. */
const applyKnexMigration = (target: Target, r: KnexMigrationRef) =>
  withKnexSession(target, (s) => s.apply(r));
const undoKnexMigration = (target: Target, r: KnexMigrationRef) =>
  withKnexSession(target, (s) => s.undo(r));

/** Whether knex's table lists the migration, read as lifeboat reads it. */
async function isKnexMigrationApplied(target: Target, r: KnexMigrationRef): Promise<boolean> {
  const client = new pg.Client(clientConfig(target, 'lifeboat-test'));
  await client.connect();
  try {
    return knexBatch(await readKnexTables(client, [r]), r) !== undefined;
  } finally {
    await client.end();
  }
}

let currentUrl = '';

/** `knex migrate:status` as a user runs it: what has to agree with lifeboat. */
function knexStatus(
  _target: Target,
  directory: string,
  migrations: { tableName?: string; schemaName?: string } = {},
): Promise<Status> {
  return knexCliStatus(currentUrl, { directory, loadExtensions: ['.cjs'], ...migrations });
}

async function tableExists(db: TestDatabase, name: string): Promise<boolean> {
  const r = await db.query('SELECT to_regclass($1) IS NOT NULL AS exists', [name]);
  return (r.rows[0] as { exists: boolean }).exists;
}

async function knexRows(
  db: TestDatabase,
  table = 'knex_migrations',
): Promise<{ name: string; batch: number }[]> {
  const r = await db.query(`SELECT name, batch FROM ${table} ORDER BY id`);
  return r.rows as { name: string; batch: number }[];
}

async function lockState(db: TestDatabase): Promise<number[]> {
  const r = await db.query('SELECT is_locked FROM knex_migrations_lock ORDER BY index');
  return r.rows.map((row: { is_locked: number }) => row.is_locked);
}

async function rejection(promise: Promise<unknown>): Promise<KnexMigrationError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(KnexMigrationError);
    return err as KnexMigrationError;
  }
  throw new Error('expected a rejection');
}

describe('knex migrations, one at a time', () => {
  let db: TestDatabase;
  let target: Target;
  beforeEach(async () => {
    db = await createTestDatabase('knexmig');
    target = resolveTarget(db.url);
    currentUrl = db.url;
  });
  afterEach(async () => {
    await db.drop();
  });

  it('applies the examples one by one and undoes them newest first, agreeing with knex migrate:status', async () => {
    expect(await knexStatus(target, EXAMPLES)).toEqual({ completed: [], pending: EXAMPLE_NAMES });

    for (const name of EXAMPLE_NAMES) {
      expect(await isKnexMigrationApplied(target, example(name))).toBe(false);
      await applyKnexMigration(target, example(name));
      expect(await isKnexMigrationApplied(target, example(name))).toBe(true);
    }

    expect(await tableExists(db, 'customers')).toBe(true);
    const columns = await db.query(
      "SELECT column_name FROM information_schema.columns WHERE table_name = 'customers' ORDER BY ordinal_position",
    );
    expect(columns.rows.map((r: { column_name: string }) => r.column_name)).toEqual([
      'id',
      'email',
      'created_at',
      'name',
    ]);
    expect(await tableExists(db, 'customers_created_at_idx')).toBe(true);
    // One batch per migration, as three `knex migrate:up` calls would record.
    expect(await knexRows(db)).toEqual([
      { name: CREATE, batch: 1 },
      { name: ADD_NAME, batch: 2 },
      { name: INDEX, batch: 3 },
    ]);
    expect(await lockState(db)).toEqual([0]);
    expect(await knexStatus(target, EXAMPLES)).toEqual({ completed: EXAMPLE_NAMES, pending: [] });

    for (const name of [...EXAMPLE_NAMES].reverse()) {
      await undoKnexMigration(target, example(name));
      expect(await isKnexMigrationApplied(target, example(name))).toBe(false);
    }

    expect(await tableExists(db, 'customers')).toBe(false);
    expect(await tableExists(db, 'customers_created_at_idx')).toBe(false);
    expect(await knexRows(db)).toEqual([]);
    expect(await lockState(db)).toEqual([0]);
    expect(await knexStatus(target, EXAMPLES)).toEqual({ completed: [], pending: EXAMPLE_NAMES });
  });

  it('runs only the named migration, even when earlier ones are pending', async () => {
    await applyKnexMigration(target, example(CREATE));
    expect(await knexRows(db)).toEqual([{ name: CREATE, batch: 1 }]);
    expect(await knexStatus(target, EXAMPLES)).toEqual({
      completed: [CREATE],
      pending: [ADD_NAME, INDEX],
    });
    const columns = await db.query(
      "SELECT 1 FROM information_schema.columns WHERE table_name = 'customers' AND column_name = 'name'",
    );
    expect(columns.rowCount).toBe(0);

    // Out of knex's order: knex's up({ name }) runs just that one, the earlier one stays pending.
    await applyKnexMigration(target, example(INDEX));
    expect(await knexRows(db)).toEqual([
      { name: CREATE, batch: 1 },
      { name: INDEX, batch: 2 },
    ]);
    expect(await knexStatus(target, EXAMPLES)).toEqual({
      completed: [CREATE, INDEX],
      pending: [ADD_NAME],
    });
    expect(await isKnexMigrationApplied(target, example(ADD_NAME))).toBe(false);
  });

  it('undoes only the named migration, not the newest', async () => {
    for (const name of EXAMPLE_NAMES) await applyKnexMigration(target, example(name));
    await undoKnexMigration(target, example(ADD_NAME));
    expect(await knexRows(db)).toEqual([
      { name: CREATE, batch: 1 },
      { name: INDEX, batch: 3 },
    ]);
    expect(await tableExists(db, 'customers_created_at_idx')).toBe(true);
    expect(await knexStatus(target, EXAMPLES)).toEqual({
      completed: [CREATE, INDEX],
      pending: [ADD_NAME],
    });
  });

  it('reports a migration that is already applied, or not applied, instead of silently doing nothing', async () => {
    await applyKnexMigration(target, example(CREATE));
    const again = await rejection(applyKnexMigration(target, example(CREATE)));
    expect(again.message).toMatch(
      `knex migration ${CREATE} (up) failed: knex already lists it as applied`,
    );
    expect(await knexRows(db)).toEqual([{ name: CREATE, batch: 1 }]);

    const notRun = await rejection(undoKnexMigration(target, example(ADD_NAME)));
    expect(notRun.message).toMatch(
      `knex migration ${ADD_NAME} (down) failed: knex does not list it`,
    );

    const missing = await rejection(applyKnexMigration(target, example('20991231_nope.cjs')));
    expect(missing.message).toMatch(/\(up\) failed: no such migration file in .*knex/);
    expect(await knexRows(db)).toEqual([{ name: CREATE, batch: 1 }]);
  });

  it('deletes the row of a transactional down inside that transaction (plain knex does it after commit)', async () => {
    const directory = path.join(FIXTURES, 'knex-down-atomic');
    const guarded = ref(directory, '20240401000000_create_guarded.cjs');

    // Plain knex first, to show the gap: the down commits, then the row delete fails on its own.
    await applyKnexMigration(target, guarded);
    const knex = knexFactory({
      client: 'pg',
      connection: db.url,
      pool: { min: 0, max: 2 },
      log: { warn: () => undefined },
    });
    try {
      await expect(
        knex.migrate.down({ directory, name: guarded.name, loadExtensions: ['.cjs'] }),
      ).rejects.toThrow(/row deleted outside the down transaction/);
    } finally {
      await knex.destroy();
    }
    expect(await tableExists(db, 'guarded')).toBe(false);
    expect(await isKnexMigrationApplied(target, guarded)).toBe(true); // knex now lies

    // The same through lifeboat: the row goes in the down's own transaction.
    await db.query('DROP TRIGGER refuse_delete_outside_down ON knex_migrations');
    await db.query('DROP FUNCTION refuse_delete_outside_down()');
    await db.query('DELETE FROM knex_migrations');
    await applyKnexMigration(target, guarded);
    await undoKnexMigration(target, guarded);
    expect(await tableExists(db, 'guarded')).toBe(false);
    expect(await isKnexMigrationApplied(target, guarded)).toBe(false);
    expect(await lockState(db)).toEqual([0]);
  });

  it('isKnexMigrationApplied is false when knex has no table yet, and does not create it', async () => {
    expect(await isKnexMigrationApplied(target, example(CREATE))).toBe(false);
    expect(await tableExists(db, 'knex_migrations')).toBe(false);
  });

  it('keeps a custom table and schema, as knex migrate:status sees them', async () => {
    await db.query('CREATE SCHEMA app');
    const custom = { tableName: 'app_migrations', schemaName: 'app' };
    await applyKnexMigration(target, ref(EXAMPLES, CREATE, custom));
    expect(await knexRows(db, 'app.app_migrations')).toEqual([{ name: CREATE, batch: 1 }]);
    expect(await tableExists(db, 'app.app_migrations_lock')).toBe(true);
    expect(await tableExists(db, 'knex_migrations')).toBe(false);
    expect(await isKnexMigrationApplied(target, ref(EXAMPLES, CREATE, custom))).toBe(true);
    expect(await isKnexMigrationApplied(target, example(CREATE))).toBe(false);
    expect(await knexStatus(target, EXAMPLES, custom)).toEqual({
      completed: [CREATE],
      pending: [ADD_NAME, INDEX],
    });

    await undoKnexMigration(target, ref(EXAMPLES, CREATE, custom));
    expect(await knexRows(db, 'app.app_migrations')).toEqual([]);
    expect(await tableExists(db, 'customers')).toBe(false);
    expect(await isKnexMigrationApplied(target, ref(EXAMPLES, CREATE, custom))).toBe(false);
    expect(await knexStatus(target, EXAMPLES, custom)).toEqual({
      completed: [],
      pending: EXAMPLE_NAMES,
    });
  });
});

describe('knex migrations that fail', () => {
  const FAILING = path.join(FIXTURES, 'knex-failing');
  const failing = (name: string) => ref(FAILING, name);
  let db: TestDatabase;
  let target: Target;
  const secret = 'knex-test-secret-4711';
  beforeAll(() => {
    registerSecret(secret);
    process.env.LB_KNEX_TEST_SECRET = secret;
  });
  afterAll(() => {
    delete process.env.LB_KNEX_TEST_SECRET;
  });
  beforeEach(async () => {
    db = await createTestDatabase('knexfail');
    target = resolveTarget(db.url);
    currentUrl = db.url;
  });
  afterEach(async () => {
    await db.drop();
  });

  it('names a failing up, records nothing and rolls its transaction back', async () => {
    await applyKnexMigration(target, failing('20240201000000_create_gadgets.cjs'));
    const name = '20240202000000_half_done_then_throws.cjs';
    const err = await rejection(applyKnexMigration(target, failing(name)));
    expect(err.message).toMatch(
      `knex migration ${name} (up) failed: the data is not what this migration expects`,
    );
    expect(err.migration).toBe(name);
    expect(err.direction).toBe('up');
    // The cause's text passed through redact: a registered secret never reaches the message.
    expect(err.message).not.toContain(secret);
    expect(err.message).toContain('***');

    expect(await tableExists(db, 'half_done')).toBe(false);
    expect(await isKnexMigrationApplied(target, failing(name))).toBe(false);
    expect(await knexRows(db)).toEqual([{ name: '20240201000000_create_gadgets.cjs', batch: 1 }]);
    expect(await lockState(db)).toEqual([0]);
  });

  it('leaves the work of a failing non-transactional migration in place, as knex does, but unrecorded', async () => {
    const name = '20240203000000_fails_without_transaction.cjs';
    const err = await rejection(applyKnexMigration(target, failing(name)));
    expect(err.message).toMatch(`knex migration ${name} (up) failed:`);
    expect(err.message).toMatch(/no_such_table_here/);
    expect(err.sqlState).toBe('42P01');
    expect(await tableExists(db, 'left_behind')).toBe(true);
    expect(await knexRows(db)).toEqual([]);
    expect(await lockState(db)).toEqual([0]);
  });

  it('rolls back a failing down and keeps its row', async () => {
    const name = '20240204000000_down_throws.cjs';
    await applyKnexMigration(target, failing(name));
    const err = await rejection(undoKnexMigration(target, failing(name)));
    expect(err.message).toMatch(`knex migration ${name} (down) failed: refusing to drop sturdy`);
    const label = await db.query(
      "SELECT 1 FROM information_schema.columns WHERE table_name = 'sturdy' AND column_name = 'label'",
    );
    expect(label.rowCount).toBe(1);
    expect(await isKnexMigrationApplied(target, failing(name))).toBe(true);
    expect(await lockState(db)).toEqual([0]);
  });

  it('refuses to undo a migration without a down, keeping its row and its table', async () => {
    const name = '20240301000000_create_widgets.cjs';
    // Applied while it still had a down (knex refuses to apply one without)...
    await applyKnexMigration(target, ref(path.join(FIXTURES, 'knex-no-down-as-applied'), name));
    // ...and the file in the directory has lost it since.
    const noDown = ref(path.join(FIXTURES, 'knex-no-down'), name);
    const err = await rejection(undoKnexMigration(target, noDown));
    expect(err.message).toMatch(
      `knex migration ${name} (down) failed: it does not export a down function`,
    );
    expect(err.direction).toBe('down');
    expect(await isKnexMigrationApplied(target, noDown)).toBe(true);
    expect(await knexRows(db)).toEqual([{ name, batch: 1 }]);
    expect(await tableExists(db, 'widgets')).toBe(true);
    expect(await lockState(db)).toEqual([0]);
  });

  it('refuses to apply a migration without a down, as knex does', async () => {
    const name = '20240301000000_create_widgets.cjs';
    const err = await rejection(
      applyKnexMigration(target, ref(path.join(FIXTURES, 'knex-no-down'), name)),
    );
    expect(err.message).toMatch(`knex migration ${name} (up) failed: it does not export both`);
    expect(await tableExists(db, 'widgets')).toBe(false);
    expect(await knexRows(db)).toEqual([]);
  });

  it('says so when knex lock table is held, and runs nothing', async () => {
    const name = '20240201000000_create_gadgets.cjs';
    await applyKnexMigration(target, failing(name));
    await db.query('UPDATE knex_migrations_lock SET is_locked = 1');
    const err = await rejection(undoKnexMigration(target, failing(name)));
    expect(err.message).toMatch(/knex_migrations_lock says another knex migration is running/);
    expect(err.message).toMatch(/knex migrate:unlock/);
    expect(await tableExists(db, 'gadgets')).toBe(true);
    expect(await isKnexMigrationApplied(target, failing(name))).toBe(true);
  });
});
