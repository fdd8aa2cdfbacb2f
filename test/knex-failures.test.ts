import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { knexCli, knexStatus } from './support/knex.js';
import { expectState, sandbox, type Sandbox } from './run/support.js';

/**
 * A knex migration that fails is rolled back like a SQL step: nothing of it
 * stays, the run's earlier steps are undone, the database is proved equal to
 * its pre-run fingerprints, exit 5. knex's bookkeeping stays as knex would
 * write it: `knex migrate:status` agrees, its lock is free.
 */
const INIT = `
  create table customers (id serial primary key, email text not null);
  insert into customers (email) select 'c' || g || '@example.com' from generate_series(1, 1000) g;
`;

const WIDGETS = `exports.up = async (knex) => {
  await knex.schema.createTable('widgets', (t) => { t.increments('id'); t.text('label'); });
  await knex('widgets').insert([{ label: 'a' }, { label: 'b' }]);
};
exports.down = (knex) => knex.schema.dropTable('widgets');
`;
const WEIGHT = `exports.up = (knex) => knex.schema.alterTable('widgets', (t) => { t.integer('weight'); });
exports.down = (knex) => knex.schema.alterTable('widgets', (t) => { t.dropColumn('weight'); });
`;

const FAILING = {
  'an error in up': `exports.up = async (knex) => {
  await knex.schema.createTable('half_done', (t) => { t.increments('id'); });
  throw new Error('the data is not what this migration expects');
};
exports.down = (knex) => knex.schema.dropTable('half_done');
`,
  'a lockTimeout firing inside the migration': `exports.up = (knex) => knex.raw('alter table customers add column tier text');
exports.down = (knex) => knex.raw('alter table customers drop column tier');
`,
  'a statementTimeout firing inside the migration': `exports.up = (knex) => knex.raw('select pg_sleep(5)');
exports.down = async () => {};
`,
  'an exception while the file is loaded': `if (!process.env.LB_TEST_SHOP_REGION) throw new Error('LB_TEST_SHOP_REGION is not set');
exports.up = (knex) => knex.schema.createTable('regions', (t) => { t.text('name'); });
exports.down = (knex) => knex.schema.dropTable('regions');
`,
} as const;

const EXPECTED: Record<keyof typeof FAILING, RegExp> = {
  'an error in up': /the data is not what this migration expects/,
  'a lockTimeout firing inside the migration': /lock timeout/,
  'a statementTimeout firing inside the migration': /statement timeout/,
  'an exception while the file is loaded': /cannot be loaded \(LB_TEST_SHOP_REGION is not set\)/,
};

const NAMES = ['001_widgets.js', '002_weight.js', '003_third.js'];

let current: Sandbox | undefined;
afterEach(async () => {
  await current?.cleanup();
  current = undefined;
});

async function project(third: string, runbookExtra = ''): Promise<Sandbox> {
  const sb = await sandbox('knex_fail', INIT);
  current = sb;
  await mkdir(path.join(sb.dir, 'migrations'));
  await sb.write('migrations/001_widgets.js', WIDGETS);
  await sb.write('migrations/002_weight.js', WEIGHT);
  await sb.write('migrations/003_third.js', third);
  await sb.write(
    'rb.yaml',
    `name: shop\ndefaults: { lockTimeout: 300ms, statementTimeout: 2s }\nsteps:\n  - id: app\n    knex: { directory: migrations, loadExtensions: [.js]${runbookExtra} }\n`,
  );
  return sb;
}

const migrationsOf = (sb: Sandbox) => ({
  directory: path.join(sb.dir, 'migrations'),
  loadExtensions: ['.js'],
});

async function knexLockFree(sb: Sandbox): Promise<void> {
  const lock = await sb.db.query(`select to_regclass('knex_migrations_lock') is not null as there`);
  if ((lock.rows[0] as { there: boolean }).there) {
    expect((await sb.db.query('select is_locked from knex_migrations_lock')).rows).toEqual([
      { is_locked: 0 },
    ]);
  }
}

describe.each(Object.keys(FAILING) as (keyof typeof FAILING)[])(
  'a knex migration that fails with %s',
  (what) => {
    it('is rolled back with the steps before it: exit 5, the pre-run state, knex agrees', async () => {
      const sb = await project(FAILING[what]);
      const preRun = await sb.fingerprint();
      const other = new pg.Client({ connectionString: sb.db.url, application_name: 'other-app' });
      await other.connect();
      try {
        // Another session reads customers in an open transaction: ALTER TABLE must wait for it.
        await other.query('begin; select count(*) from customers');
        const run = await sb.cli(['run', 'rb.yaml']);
        expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(5);
        expect(run.stderr).toMatch(EXPECTED[what]);
        expect(run.stderr).toContain('the database is as before the run (proved by fingerprints)');
        expect(run.stdout).toMatch(/app\/003_third\.js\s+✖ failed/);
        expect(run.stdout).toMatch(/rollback: app\/002_weight\.js → app\/001_widgets\.js/);
      } finally {
        await other.query('rollback').catch(() => undefined);
        await other.end();
      }
      expectState(await sb.fingerprint(), preRun, 'pre-run');
      await knexLockFree(sb);

      const status = await sb.json(['status']);
      const steps = (status.doc.status as { steps: { id: string; state: string }[] }).steps;
      expect(steps.map((s) => [s.id, s.state])).toEqual([
        ['app/001_widgets.js', 'not-applied'],
        ['app/002_weight.js', 'not-applied'],
        ['app/003_third.js', 'not-applied'],
      ]);
      expect(await knexStatus(sb.db.url, migrationsOf(sb))).toEqual({
        completed: [],
        pending: NAMES,
      });
    }, 180_000);
  },
);

describe('a knex migration that could not be loaded, then fixed', () => {
  it('runs on the next try (not refused as an edited step); the run is one knex batch that knex migrate:rollback undoes whole', async () => {
    const sb = await project(FAILING['an exception while the file is loaded']);
    const preRun = await sb.fingerprint();
    const failed = await sb.cli(['run', 'rb.yaml']);
    expect(failed.code, failed.stderr).toBe(5);

    const fixed = await sb.cli(['run', 'rb.yaml'], { LB_TEST_SHOP_REGION: 'eu' });
    expect(fixed.code, `${fixed.stdout}\n${fixed.stderr}`).toBe(0);
    const batches = await sb.db.query('select name, batch from knex_migrations order by id');
    const rows = batches.rows as { name: string; batch: number }[];
    expect(rows.map((r) => r.name)).toEqual(NAMES);
    expect(new Set(rows.map((r) => r.batch)).size).toBe(1);
    expect(await knexStatus(sb.db.url, migrationsOf(sb))).toEqual({
      completed: NAMES,
      pending: [],
    });
    await knexLockFree(sb);

    // knex's own rollback of the last batch undoes the whole lifeboat run, as after migrate:latest.
    await knexCli(sb.db.url, migrationsOf(sb), ['migrate:rollback'], {
      LB_TEST_SHOP_REGION: 'eu',
    });
    expect(await knexStatus(sb.db.url, migrationsOf(sb))).toEqual({
      completed: [],
      pending: NAMES,
    });
    const status = await sb.json(['status']);
    const steps = (status.doc.status as { steps: { id: string; state: string; note: string }[] })
      .steps;
    expect(steps.map((s) => s.state)).toEqual(['not-applied', 'not-applied', 'not-applied']);
    expect(steps[0]!.note).toContain('undone outside lifeboat');
    // lifeboat rollback has nothing left to undo, and undoes nothing twice.
    const undo = await sb.cli(['rollback', '--yes']);
    expect(undo.code, `${undo.stdout}\n${undo.stderr}`).toBe(0);
    expect(undo.stdout).not.toContain('↩ undone');
    // ... and proves the database is as before the run (knex's emptied tables, which the run created, go too).
    expectState(await sb.fingerprint(), preRun, 'pre-run');
  }, 180_000);
});

describe('a knex migration outside a transaction that fails part-way', () => {
  it('is cleaned up by its own down (knex never listed it), then the rest: exit 5, the pre-run state', async () => {
    const sb = await project(`exports.config = { transaction: false };
exports.up = async (knex) => {
  await knex.raw('create index concurrently widgets_label_idx on widgets (label)');
  throw new Error('gave up after the index');
};
exports.down = (knex) => knex.raw('drop index concurrently if exists widgets_label_idx');
`);
    const preRun = await sb.fingerprint();
    const run = await sb.cli(['run', 'rb.yaml']);
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(5);
    expect(run.stderr).toContain('gave up after the index');
    expect(run.stdout).toMatch(
      /rollback: app\/003_third\.js → app\/002_weight\.js → app\/001_widgets\.js/,
    );
    expectState(await sb.fingerprint(), preRun, 'pre-run');
    await knexLockFree(sb);
    expect(await knexStatus(sb.db.url, migrationsOf(sb))).toEqual({
      completed: [],
      pending: NAMES,
    });
  }, 180_000);
});
