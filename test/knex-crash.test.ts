import { cp, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Fingerprints } from '../src/fingerprint.js';
import { runCli, runJson, startCli, startPaused, workspace } from './support/cli.js';
import { createTestDatabase } from './support/db.js';
import { knexStatus } from './support/knex.js';
import { auditCounts, expectState, sandbox, type Sandbox } from './run/support.js';

describe('a knex migration run outside a transaction, killed before its checkpoint', () => {
  it("is decided by knex's table on the next run, knex's stale lock is freed, and nothing runs twice", async () => {
    const db = await createTestDatabase('knex_crash');
    const ws = await workspace();
    try {
      const dir = path.join(ws.dir, 'migrations');
      await mkdir(dir);
      await cp(new URL('./fixtures/run-knex-downs/', import.meta.url), dir, { recursive: true });
      // The second migration runs outside a transaction, as CONCURRENTLY index builds must.
      await writeFile(
        path.join(dir, '20240703000000_index_widgets.cjs'),
        `exports.config = { transaction: false };
exports.up = (knex) => knex.raw('CREATE INDEX CONCURRENTLY widgets_label_idx ON widgets (label)');
exports.down = (knex) => knex.raw('DROP INDEX CONCURRENTLY IF EXISTS widgets_label_idx');
`,
      );
      await writeFile(
        path.join(ws.dir, 'rb.yaml'),
        'name: knexy\nsteps:\n  - id: app\n    knex: { directory: migrations, loadExtensions: [.cjs] }\n',
      );
      const id = 'app/20240703000000_index_widgets.cjs';
      const run = await startPaused(
        ['run', 'rb.yaml', '--database-url', db.url],
        `step:${id}:before-checkpoint`,
        {
          cwd: ws.dir,
        },
      );
      await run.reached().catch(async (err: Error) => {
        throw new Error(`${err.message}\n${(await run.done).stderr}`);
      });
      await run.kill9();
      // A process killed inside knex leaves knex's own lock taken; lifeboat must not be stuck on it.
      await db.query('update knex_migrations_lock set is_locked = 1');

      const status = await runJson(['status', '--database-url', db.url], { cwd: ws.dir });
      const steps = (status.doc.status as { steps: { id: string; state: string }[] }).steps;
      expect(steps.find((s) => s.id === id)?.state).toBe('in doubt (up started)');

      const again = await runCli(['run', 'rb.yaml', '--database-url', db.url], { cwd: ws.dir });
      expect(again.code, again.stderr).toBe(0);
      const names = await db.query('select name from knex_migrations order by id');
      expect(names.rows.map((r: { name: string }) => r.name)).toEqual([
        '20240701000000_create_widgets.cjs',
        '20240702000000_add_widget_weight.cjs',
        '20240703000000_index_widgets.cjs',
      ]);
      expect((await db.query('select is_locked from knex_migrations_lock')).rows).toEqual([
        { is_locked: 0 },
      ]);
    } finally {
      await db.drop();
      await ws.cleanup();
    }
  });
});

/**
 * Promise 3 for knex steps, on the real process: SIGKILL inside knex's
 * transaction, inside a migration that runs outside one, and inside the
 * rollback of a transactional migration. Every migration writes one row into
 * `audit` in its up (and removes it in its down): each must be there exactly
 * once, or not at all. Fingerprints prove the pre-run or post-run state, and
 * `knex migrate:status` agrees.
 */
const INIT = `
  create table audit (step text not null);
  create table accounts (id serial primary key, name text not null);
  insert into accounts (name) select 'account ' || g from generate_series(1, 200) g;
`;

const MIGRATIONS: Record<string, string> = {
  '001_widgets.js': `exports.up = async (knex) => {
  await knex.schema.createTable('widgets', (t) => { t.increments('id'); t.text('label'); });
  await knex('widgets').insert([{ label: 'a' }, { label: 'b' }, { label: 'c' }]);
  await knex('audit').insert({ step: 'm1' });
};
exports.down = async (knex) => {
  await knex.schema.dropTable('widgets');
  await knex('audit').where({ step: 'm1' }).del();
};
`,
  '002_weight.js': `exports.up = async (knex) => {
  await knex.schema.alterTable('widgets', (t) => { t.integer('weight'); });
  await knex('audit').insert({ step: 'm2' });
};
exports.down = async (knex) => {
  await knex.schema.alterTable('widgets', (t) => { t.dropColumn('weight'); });
  await knex('audit').where({ step: 'm2' }).del();
};
`,
  // Outside a transaction; it waits half-way when the test asks (LB_TEST_MIGRATION_PAUSE).
  '003_index.js': `const fs = require('node:fs');
exports.config = { transaction: false };
exports.up = async (knex) => {
  await knex.raw('create index concurrently widgets_label_idx on widgets (label)');
  await knex('audit').insert({ step: 'm3' });
  const pause = process.env.LB_TEST_MIGRATION_PAUSE;
  if (pause) {
    fs.writeFileSync(pause, '');
    while (fs.existsSync(pause)) await new Promise((r) => setTimeout(r, 25));
  }
};
exports.down = async (knex) => {
  await knex.raw('drop index concurrently if exists widgets_label_idx');
  await knex('audit').where({ step: 'm3' }).del();
};
`,
  '004_fill.js': `exports.up = async (knex) => {
  await knex('widgets').update({ weight: 1 }).where('id', '>', 0);
  await knex('audit').insert({ step: 'm4' });
  if (process.env.LB_TEST_FAIL_FILL) throw new Error('fill refused');
};
exports.down = async (knex) => {
  await knex('widgets').update({ weight: null }).where('id', '>', 0);
  await knex('audit').where({ step: 'm4' }).del();
};
`,
};
const NAMES = Object.keys(MIGRATIONS);
const ALL_ONCE = { m1: 1, m2: 1, m3: 1, m4: 1 };
const VERIFY_INDEX = `SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'widgets_label_idx' AND i.indisvalid)`;
const RUNBOOK = `name: knexy
defaults: { lockTimeout: 5s }
steps:
  - id: app
    knex:
      directory: migrations
      loadExtensions: [.js]
      verify:
        003_index.js: "${VERIFY_INDEX}"
`;

async function prepare(prefix: string): Promise<{ sb: Sandbox; preRun: Fingerprints }> {
  const sb = await sandbox(prefix, INIT);
  current = sb;
  await mkdir(path.join(sb.dir, 'migrations'));
  for (const [name, text] of Object.entries(MIGRATIONS)) await sb.write(`migrations/${name}`, text);
  await sb.write('rb.yaml', RUNBOOK);
  return { sb, preRun: await sb.fingerprint() };
}

let current: Sandbox | undefined;
afterEach(async () => {
  await current?.cleanup();
  current = undefined;
});

let postRun: Fingerprints;
beforeAll(async () => {
  const { sb } = await prepare('knex_crash_ref');
  try {
    const r = await sb.cli(['run', 'rb.yaml']);
    expect(r.code, r.stderr).toBe(0);
    expect(await auditCounts(sb.db)).toEqual(ALL_ONCE);
    postRun = await sb.fingerprint();
  } finally {
    await sb.cleanup();
    current = undefined;
  }
});

/** knex's rows carry the time each migration ran: compared by expectKnexDone, not by content. */
function withoutKnexTimes(f: Fingerprints): Fingerprints {
  return { ...f, tables: f.tables.filter((t) => t.name !== 'knex_migrations') };
}

const migrations = (sb: Sandbox) => ({
  directory: path.join(sb.dir, 'migrations'),
  loadExtensions: ['.js'],
});

async function stepStates(sb: Sandbox): Promise<Record<string, string>> {
  const status = await sb.json(['status']);
  const steps = (status.doc.status as { steps: { id: string; state: string }[] }).steps;
  return Object.fromEntries(steps.map((s) => [s.id, s.state]));
}

async function expectKnexDone(sb: Sandbox): Promise<void> {
  expect(await knexStatus(sb.db.url, migrations(sb))).toEqual({ completed: NAMES, pending: [] });
  const batches = await sb.db.query('select distinct batch from knex_migrations');
  expect(batches.rows, 'one knex batch for the run').toEqual([{ batch: 1 }]);
  expect((await sb.db.query('select is_locked from knex_migrations_lock')).rows).toEqual([
    { is_locked: 0 },
  ]);
}

describe('SIGKILL inside knex steps', () => {
  it("inside a transactional migration, after knex's row, before commit: nothing of it stays; run resumes, each migration once", async () => {
    const { sb } = await prepare('knex_crash_tx');
    const run = await startPaused(
      ['run', 'rb.yaml', '--database-url', sb.db.url],
      'step:app/002_weight.js:inside',
      { cwd: sb.dir },
    );
    await run.reached();
    await run.kill9();
    await sb.sessionsGone();

    expect(await stepStates(sb)).toEqual({ 'app/001_widgets.js': 'applied' });
    expect(await auditCounts(sb.db)).toEqual({ m1: 1 });
    expect(await knexStatus(sb.db.url, migrations(sb))).toEqual({
      completed: ['001_widgets.js'],
      pending: NAMES.slice(1),
    });

    const again = await sb.cli(['run', 'rb.yaml']);
    expect(again.code, `${again.stdout}\n${again.stderr}`).toBe(0);
    expect(await auditCounts(sb.db)).toEqual(ALL_ONCE);
    expectState(withoutKnexTimes(await sb.fingerprint()), withoutKnexTimes(postRun), 'post-run');
    await expectKnexDone(sb);
  });

  it('half-way through a migration outside a transaction: in doubt; its verify query decides it, knex gets the row it would have written, nothing runs twice', async () => {
    const { sb } = await prepare('knex_crash_notx');
    const pauseDir = await mkdtemp(path.join(os.tmpdir(), 'lifeboat-knex-pause-'));
    const marker = path.join(pauseDir, 'm3');
    try {
      const run = startCli(['run', 'rb.yaml', '--database-url', sb.db.url], {
        cwd: sb.dir,
        env: { LB_TEST_MIGRATION_PAUSE: marker },
      });
      for (let i = 0; !(await stat(marker).catch(() => undefined)); i++) {
        if (i > 2400) throw new Error(`never reached the pause: ${(await run.done).stderr}`);
        await sleep(25);
      }
      run.child.kill('SIGKILL');
      await run.done;
    } finally {
      await rm(pauseDir, { recursive: true, force: true });
    }
    await sb.sessionsGone();
    expect(await stepStates(sb)).toEqual({
      'app/001_widgets.js': 'applied',
      'app/002_weight.js': 'applied',
      'app/003_index.js': 'in doubt (up started)',
    });
    // knex writes its row after the migration ends: it does not list it yet.
    expect((await knexStatus(sb.db.url, migrations(sb))).pending).toEqual(NAMES.slice(2));

    const again = await sb.cli(['run', 'rb.yaml']);
    expect(again.code, `${again.stdout}\n${again.stderr}`).toBe(0);
    expect(await auditCounts(sb.db)).toEqual(ALL_ONCE);
    expectState(withoutKnexTimes(await sb.fingerprint()), withoutKnexTimes(postRun), 'post-run');
    await expectKnexDone(sb);
  });

  it("inside a transactional migration's down, during the rollback of a failed run: rollback finishes it, the pre-run state, knex's lock free", async () => {
    const { sb, preRun } = await prepare('knex_crash_down');
    const run = await startPaused(
      ['run', 'rb.yaml', '--database-url', sb.db.url],
      'undo:app/002_weight.js:inside',
      { cwd: sb.dir, env: { LB_TEST_FAIL_FILL: '1' } },
    );
    await run.reached();
    await run.kill9();
    await sb.sessionsGone();
    expect(await stepStates(sb)).toEqual({
      'app/001_widgets.js': 'applied',
      'app/002_weight.js': 'applied',
      'app/003_index.js': 'not-applied',
      'app/004_fill.js': 'not-applied',
    });
    // knex took its own lock before the down's transaction; the kill left it taken.
    expect((await sb.db.query('select is_locked from knex_migrations_lock')).rows).toEqual([
      { is_locked: 1 },
    ]);

    const undo = await sb.cli(['rollback', '--yes']);
    expect(undo.code, `${undo.stdout}\n${undo.stderr}`).toBe(0);
    expect(await auditCounts(sb.db)).toEqual({});
    expectState(await sb.fingerprint(), preRun, 'pre-run');
  });
});
