import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli, runJson, startPaused, workspace } from './support/cli.js';
import { smallDatabase } from './support/backups.js';
import type { TestDatabase } from './support/db.js';

const failing = `name: failing
steps:
  - id: add-note
    sql:
      up: ALTER TABLE items ADD COLUMN note text
      down: ALTER TABLE items DROP COLUMN note
  - id: boom
    sql:
      up: SELECT 1/0
`;

const passing = `name: passing
steps:
  - id: add-note
    sql:
      up: ALTER TABLE items ADD COLUMN note text
      down: ALTER TABLE items DROP COLUMN note
  - id: index-qty
    sql:
      up: CREATE INDEX items_qty_idx ON items (qty)
      down: DROP INDEX items_qty_idx
`;

describe('frozen runs and rehearsals', () => {
  let db: TestDatabase;
  let ws: Awaited<ReturnType<typeof workspace>>;
  beforeEach(async () => {
    db = await smallDatabase('freeze');
    ws = await workspace();
    await writeFile(path.join(ws.dir, 'failing.yaml'), failing);
    await writeFile(path.join(ws.dir, 'passing.yaml'), passing);
  });
  afterEach(async () => {
    await db.drop();
    await ws.cleanup();
  });

  /** One write from a new session, as an application would make it. */
  async function write(): Promise<string> {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await client.query(`insert into items (name, qty) values ('from the app', 1)`);
      return 'written';
    } catch (err) {
      return (err as Error).message;
    } finally {
      await client.end();
    }
  }

  it('a writer during a frozen run gets an error and nothing half-written; afterwards it writes again', async () => {
    const run = await startPaused(
      ['run', 'failing.yaml', '--freeze', '--database-url', db.url],
      'step:boom:before',
      {
        cwd: ws.dir,
      },
    );
    await run.reached();
    expect(await write()).toMatch(/read-only transaction/);
    await run.resume();
    const r = await run.done;
    expect(r.code, r.stderr).toBe(5);
    expect(await write()).toBe('written');
    // Freezing and unfreezing are both in the journal.
    const status = await runCli(['status', '--database-url', db.url], { cwd: ws.dir });
    expect(status.stdout).toMatch(/frozen from \S+ to \S+/);
    const rows = await db.query(`select count(*)::int as n from items where name = 'from the app'`);
    expect(rows.rows[0]).toEqual({ n: 1 });
  });

  it('a frozen run killed with SIGKILL stays frozen (status says why); rollback finishes it and unfreezes', async () => {
    const run = await startPaused(
      ['run', 'failing.yaml', '--freeze', '--database-url', db.url],
      'step:boom:before',
      {
        cwd: ws.dir,
      },
    );
    await run.reached();
    await run.kill9();
    expect(await write()).toMatch(/read-only transaction/);
    const status = await runJson(['status', '--database-url', db.url], { cwd: ws.dir });
    expect(status.code).toBe(0);
    expect((status.doc.status as { frozen: { runId: string } | null }).frozen?.runId).toMatch(
      /^run-/,
    );
    expect(await write()).toMatch(/read-only transaction/);
    const rollback = await runCli(['rollback', '--yes', '--database-url', db.url], { cwd: ws.dir });
    expect(rollback.code, rollback.stderr).toBe(0);
    expect(await write()).toBe('written');
    // Once the run has ended, status has nothing left to lift.
    const after = await runJson(['status', '--database-url', db.url], { cwd: ws.dir });
    expect((after.doc.status as { frozen: unknown }).frozen).toBeNull();
  });

  it('a rollback after others wrote does not claim the pre-run state: exit 6 names the difference', async () => {
    const run = await startPaused(
      ['run', 'failing.yaml', '--database-url', db.url],
      'step:boom:before',
      {
        cwd: ws.dir,
      },
    );
    await run.reached();
    await run.kill9();
    expect(await write()).toBe('written');
    const rollback = await runCli(['rollback', '--yes', '--database-url', db.url], { cwd: ws.dir });
    expect(rollback.code).toBe(6);
    expect(rollback.stderr).toMatch(/table public\.items: expected 500 rows, found 501 rows/);
    // Every down ran all the same, and the application's row is kept.
    const cols = await db.query(
      `select count(*)::int as n from information_schema.columns where table_name = 'items' and column_name = 'note'`,
    );
    expect(cols.rows[0]).toEqual({ n: 0 });
    expect((await db.query(`select count(*)::int as n from items`)).rows[0]).toEqual({ n: 501 });
  });

  it('lifeboat unfreeze lifts a freeze, and refuses while the freezing run is alive', async () => {
    const run = await startPaused(
      ['run', 'failing.yaml', '--freeze', '--database-url', db.url],
      'step:boom:before',
      {
        cwd: ws.dir,
      },
    );
    await run.reached();
    const refused = await runCli(['unfreeze', '--database-url', db.url], { cwd: ws.dir });
    expect(refused.code).toBe(7);
    expect(refused.stderr).toMatch(/is still running/);
    await run.kill9();
    const r = await runCli(['unfreeze', '--database-url', db.url], { cwd: ws.dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Unfroze .*other sessions may write again/);
    expect(await write()).toBe('written');
  });

  it('a failing rehearsal refuses the run (exit 3) and the target is untouched', async () => {
    const r = await runCli(['run', 'failing.yaml', '--rehearse', '--database-url', db.url], {
      cwd: ws.dir,
    });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(
      /rehearsal of failing .* failed: step boom failed on the rehearsal copy: division by zero; the rollback undid add-note and brought the copy back to the backup's state/,
    );
    const cols = await db.query(
      `select count(*)::int as n from information_schema.columns where table_name = 'items' and column_name = 'note'`,
    );
    expect(cols.rows[0]).toEqual({ n: 0 });
    expect((await db.query(`select to_regnamespace('lifeboat_journal') as j`)).rows[0]).toEqual({
      j: null,
    });
  });

  it('a passing rehearsal forecasts durations and locks, and gate --rehearsed accepts it for that runbook only', async () => {
    const gateBefore = await runCli(
      ['gate', '--runbook', 'passing.yaml', '--rehearsed', '--database-url', db.url],
      { cwd: ws.dir },
    );
    expect(gateBefore.code).toBe(3);
    const r = await runJson(['rehearse', 'passing.yaml', '--database-url', db.url], {
      cwd: ws.dir,
    });
    expect(r.code, r.stderr).toBe(0);
    const rehearsal = r.doc.rehearsal as {
      passed: boolean;
      steps: { id: string; locks?: string[]; durationMs: number }[];
    };
    expect(rehearsal.passed).toBe(true);
    expect(rehearsal.steps[0]!.locks).toContain('AccessExclusiveLock on public.items');
    expect(rehearsal.steps[1]!.locks).toContain('ShareLock on public.items');
    const gate = await runCli(
      ['gate', '--runbook', 'passing.yaml', '--rehearsed', '--database-url', db.url],
      { cwd: ws.dir },
    );
    expect(gate.code, gate.stderr).toBe(0);
    // An edited runbook is a different runbook: its rehearsal is missing.
    await writeFile(path.join(ws.dir, 'passing.yaml'), passing.replace('(qty)', '(qty, name)'));
    const edited = await runCli(
      ['gate', '--runbook', 'passing.yaml', '--rehearsed', '--database-url', db.url],
      { cwd: ws.dir },
    );
    expect(edited.code).toBe(3);
    expect(edited.stderr).toMatch(/has no rehearsal of this runbook/);
    // The rehearsal left the target as it was.
    expect((await db.query(`select to_regclass('items_qty_idx') as i`)).rows[0]).toEqual({
      i: null,
    });
  });

  it('a rehearsal reports the table locks each knex migration held, not knex’s own bookkeeping', async () => {
    await mkdir(path.join(ws.dir, 'migrations'));
    await writeFile(
      path.join(ws.dir, 'migrations/001_note.js'),
      `exports.up = (knex) => knex.schema.alterTable('items', (t) => { t.text('note'); });
exports.down = (knex) => knex.schema.alterTable('items', (t) => { t.dropColumn('note'); });
`,
    );
    await writeFile(
      path.join(ws.dir, 'knexy.yaml'),
      'name: knexy\nsteps:\n  - id: app\n    knex: { directory: migrations }\n',
    );
    const r = await runJson(['rehearse', 'knexy.yaml', '--database-url', db.url], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(0);
    const rehearsal = r.doc.rehearsal as { passed: boolean; steps: { locks?: string[] }[] };
    expect(rehearsal.passed).toBe(true);
    expect(rehearsal.steps[0]!.locks).toContain('AccessExclusiveLock on public.items');
    expect(rehearsal.steps[0]!.locks!.join()).not.toContain('knex_migrations');
  });

  it('a rehearsal that passes on the copy while the real run hits a lock timeout still rolls back', async () => {
    await writeFile(
      path.join(ws.dir, 'locky.yaml'),
      passing
        .replace('name: passing', 'name: locky')
        .replace('steps:', 'defaults:\n  lockTimeout: 300ms\nsteps:'),
    );
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      // Another session holds a lock the second step needs; the copy has no such session.
      await holder.query('begin');
      await holder.query('lock table items in share mode');
      const r = await runJson(['run', 'locky.yaml', '--rehearse', '--database-url', db.url], {
        cwd: ws.dir,
      });
      expect(r.code, r.stderr).toBe(5);
      const run = r.doc.result as {
        rehearsal: { passed: boolean };
        steps: { id: string; outcome: string; error?: string }[];
      };
      expect(run.rehearsal.passed).toBe(true);
      expect(run.steps.find((s) => s.id === 'add-note')?.outcome).toBe('failed');
      expect(run.steps.find((s) => s.id === 'add-note')?.error).toMatch(/lock timeout/);
    } finally {
      await holder.query('rollback');
      await holder.end();
    }
    const cols = await db.query(
      `select count(*)::int as n from information_schema.columns where table_name = 'items' and column_name = 'note'`,
    );
    expect(cols.rows[0]).toEqual({ n: 0 });
  });

  it('a rehearsal of a grown runbook skips the steps the backup already has, and passes', async () => {
    const first = passing.slice(0, passing.indexOf('  - id: index-qty'));
    await writeFile(path.join(ws.dir, 'grown.yaml'), first.replace('name: passing', 'name: grown'));
    expect(
      (await runCli(['run', 'grown.yaml', '--database-url', db.url], { cwd: ws.dir })).code,
    ).toBe(0);
    await writeFile(
      path.join(ws.dir, 'grown.yaml'),
      passing.replace('name: passing', 'name: grown'),
    );
    // A new backup holds the applied step and its journal; the rehearsal starts from there.
    const r = await runJson(
      ['rehearse', 'grown.yaml', '--backup', 'new', '--database-url', db.url],
      { cwd: ws.dir },
    );
    expect(r.code, r.stderr).toBe(0);
    const steps = (r.doc.rehearsal as { steps: { id: string; outcome: string }[] }).steps;
    expect(steps.map((s) => `${s.id}:${s.outcome}`)).toEqual([
      'add-note:already-applied',
      'index-qty:applied',
    ]);
  });
});
