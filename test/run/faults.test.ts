import { readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { withRunLockAndSession } from '../../src/run/lock.js';
import { resolveTarget } from '../../src/target.js';
import { startPaused } from '../support/cli.js';
import {
  auditCounts,
  expectState,
  fingerprintOf,
  journalCounts,
  sandbox,
  startPausedAt,
  type Sandbox,
} from './support.js';

/**
 * The run faults of issue 3 on the real CLI process: two runs at once, a lock
 * timeout, a down that fails, bad and edited runbooks, knex migrations whose
 * down is missing or does nothing, a guard with no backup, and a second run of
 * an applied runbook. Each asserts what the user sees (exit code, text, --json)
 * and what the database holds.
 */

const INIT = `
  create table audit (step text not null);
  create table t (id int primary key, label text not null);
  insert into t select g, 'row ' || g from generate_series(1, 100) g;
`;

/** A sql step that leaves one audit row and a table of its own, with a working down. */
function tableStep(id: string, table: string): Record<string, unknown> {
  return {
    id,
    sql: {
      up: `create table ${table} (id int primary key);\ninsert into ${table} values (1), (2);\ninsert into audit values ('${id}')`,
      down: `drop table ${table};\ndelete from audit where step = '${id}'`,
    },
  };
}

function runbook(name: string, steps: Record<string, unknown>[], extra = {}): string {
  return stringify({ name, ...extra, steps });
}

const BOOM = { id: 'boom', sql: { up: 'select 1/0', down: 'select 1' } };

let current: Sandbox | undefined;
afterEach(async () => {
  await current?.cleanup();
  current = undefined;
});
async function prepare(prefix: string, init = INIT): Promise<Sandbox> {
  current = await sandbox(prefix, init);
  return current;
}

async function sessionsNamed(sb: Sandbox, name: string): Promise<number> {
  const res = await sb.db.query(
    `select count(*)::int as n from pg_stat_activity where datname = current_database() and application_name = $1`,
    [name],
  );
  return (res.rows[0] as { n: number }).n;
}

async function lockHolders(sb: Sandbox): Promise<number> {
  const res = await sb.db.query(
    `select count(*)::int as n from pg_locks where locktype = 'advisory' and granted and database = (select oid from pg_database where datname = current_database())`,
  );
  return (res.rows[0] as { n: number }).n;
}

async function backupCount(sb: Sandbox): Promise<number> {
  const names = await readdir(path.join(sb.dir, '.lifeboat/backups')).catch(() => [] as string[]);
  return names.filter((n) => /^\d{8}T/.test(n)).length;
}

interface RunDoc {
  runId: string;
  status: string;
  steps: { id: string; outcome: string; error?: string }[];
  rollback?: {
    complete: boolean;
    remaining: string[];
    blockers: { stepId: string; reason: string }[];
    proof?: { equal: boolean; differences: { kind: string; object: string }[] };
  };
  advice: string[];
}

interface ErrorDoc {
  ok: false;
  exitCode: number;
  error: { kind: string; message: string; details: string[] };
  result?: RunDoc;
}

interface StatusDoc {
  lock: { pid: number; run?: { id: string; host: string; pid: number; startedAt: string } } | null;
  lastRun: { id: string; status: string; error: string | null } | null;
  steps: { id: string; state: string }[];
}

const noStackTrace = /\bat .*\.(js|ts):\d+/;

describe('two runs at once', () => {
  it("a run refused by the lock ends the working session it connected beside the lock's", async () => {
    const sb = await prepare('two_runs_session');
    const locked = { target: resolveTarget(sb.db.url), runId: 'pending', waitMs: 0 };
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const first = withRunLockAndSession(locked, 'lifeboat first', async () => held);
    await expect
      .poll(async () => (await sessionsNamed(sb, 'lifeboat first')) + (await lockHolders(sb)))
      .toBe(2);
    await expect(
      withRunLockAndSession(locked, 'lifeboat second', () => Promise.resolve()),
    ).rejects.toThrow(/Another run holds the lock/);
    expect(await sessionsNamed(sb, 'lifeboat second')).toBe(0);
    release();
    await first;
    expect(await sessionsNamed(sb, 'lifeboat first')).toBe(0);
  });

  it('the second run exits 7 naming the holder (run id, host, pid, since) and changes nothing', async () => {
    const sb = await prepare('two_runs');
    const rb = await sb.write(
      'two.yaml',
      runbook('two', [tableStep('x', 'x_table'), tableStep('y', 'y_table')]),
    );
    const first = await startPaused(['run', rb, '--database-url', sb.db.url], 'step:x:before', {
      cwd: sb.dir,
    });
    try {
      await first.reached();
      const runs = await sb.db.query(`select id, host, pid, started_at from lifeboat_journal.runs`);
      expect(runs.rows).toHaveLength(1);
      const holder = runs.rows[0] as { id: string; host: string; pid: number; started_at: Date };
      expect(holder.pid).toBe(first.child.pid);
      expect(holder.host).toBe(os.hostname());
      const since = holder.started_at.toISOString();

      const second = await sb.cli(['run', rb, '--lock-wait', '300ms']);
      expect(second.code, `${second.stdout}\n${second.stderr}`).toBe(7);
      expect(second.stderr).toContain(`Another run holds the lock on database ${sb.db.name}`);
      expect(second.stderr).toContain(`run ${holder.id} of runbook two`);
      expect(second.stderr).toContain(`host ${os.hostname()}`);
      expect(second.stderr).toContain(`pid ${first.child.pid}`);
      expect(second.stderr).toContain(`since ${since}`);
      expect(second.stderr).not.toMatch(noStackTrace);

      const json = await sb.json(['run', rb]);
      expect(json.code).toBe(7);
      const doc = json.doc as unknown as ErrorDoc & { result: { holder: StatusDoc['lock'] } };
      expect(doc.error.kind).toBe('lock-held');
      expect(doc.result.holder?.run).toMatchObject({
        id: holder.id,
        host: os.hostname(),
        pid: first.child.pid,
        startedAt: since,
      });

      // rollback is refused the same way; status names the holder.
      const undo = await sb.cli(['rollback', '--yes']);
      expect(undo.code, undo.stderr).toBe(7);
      expect(undo.stderr).toContain(`run ${holder.id}`);
      const status = await sb.cli(['status']);
      expect(status.code, status.stderr).toBe(0);
      expect(status.stdout).toContain(`lock: held by run ${holder.id} of runbook two`);

      // The refused runs changed nothing: still one run, no step applied.
      expect(await journalCounts(sb.db)).toEqual({ runs: 1, steps: 0 });
      expect(await auditCounts(sb.db)).toEqual({});
      expect(await backupCount(sb)).toBe(1);

      await first.resume();
      const done = await first.done;
      expect(done.code, `${done.stdout}\n${done.stderr}`).toBe(0);
    } finally {
      if (first.child.exitCode === null) await first.kill9();
    }
    expect(await auditCounts(sb.db)).toEqual({ x: 1, y: 1 });
    const after = await sb.cli(['run', rb]);
    expect(after.code, after.stderr).toBe(0);
    expect(await auditCounts(sb.db)).toEqual({ x: 1, y: 1 });
  });
});

describe('a step that hits lock_timeout because another session holds a lock', () => {
  it('fails fast, is rolled back with the steps before it (exit 5), and the error says lock timeout', async () => {
    const sb = await prepare('lock_timeout');
    const rb = await sb.write(
      'locked.yaml',
      runbook(
        'locked',
        [
          tableStep('notes', 'notes'),
          {
            id: 'alter-t',
            sql: {
              up: `alter table t add column flag boolean;\ninsert into audit values ('alter-t')`,
              down: `alter table t drop column flag;\ndelete from audit where step = 'alter-t'`,
            },
          },
        ],
        { defaults: { lockTimeout: '200ms' } },
      ),
    );
    const preRun = await sb.fingerprint();
    const run = await startPausedAt(
      ['run', rb, '--database-url', sb.db.url],
      ['step:alter-t:before', 'undo:notes:before'],
      sb.dir,
    );
    const other = new pg.Client({ connectionString: sb.db.url, application_name: 'other-app' });
    other.on('error', () => {});
    await other.connect();
    try {
      // The backup and the pre-run fingerprints are taken; now another session locks t.
      await run.reached('step:alter-t:before');
      await other.query('begin');
      await other.query('lock table t in access exclusive mode');
      await run.resume('step:alter-t:before');
      // The step gave up waiting and the rollback began; the other session still holds its lock.
      await run.reached('undo:notes:before');
      const held = await sb.db.query(
        `select count(*)::int as n from pg_locks l join pg_stat_activity a on a.pid = l.pid
          where a.application_name = 'other-app' and l.relation = 't'::regclass
            and l.mode = 'AccessExclusiveLock' and l.granted`,
      );
      expect((held.rows[0] as { n: number }).n, 'lifeboat must not break the other lock').toBe(1);
      await other.query('commit');
      await run.resume('undo:notes:before');
      const r = await run.done;
      expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(5);
      expect(r.stdout).toMatch(/alter-t\s+✖ failed .*— canceling statement due to lock timeout/);
      expect(r.stdout).toMatch(/notes\s+↩ undone/);
      expect(r.stderr).toContain(
        'Step alter-t failed: canceling statement due to lock timeout. The run was rolled back',
      );
    } finally {
      await run.kill();
      await other.end().catch(() => undefined);
    }
    expect(await auditCounts(sb.db)).toEqual({});
    expectState(await sb.fingerprint(), preRun, 'pre-run');
  });
});

describe('a down that itself fails', () => {
  it('stops (exit 6), says which down failed and what is still applied; status shows needs-operator', async () => {
    const sb = await prepare('down_fails');
    const rb = await sb.write(
      'downfail.yaml',
      runbook('downfail', [
        tableStep('s1', 'first_table'),
        {
          id: 's2',
          sql: {
            up: `create table second_table (id int);\ninsert into audit values ('s2')`,
            down: `drop table second_tabel;\ndelete from audit where step = 's2'`,
          },
        },
        tableStep('s3', 'third_table'),
        BOOM,
      ]),
    );
    const r = await sb.cli(['run', rb]);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(6);
    expect(r.stdout).toMatch(/s3\s+↩ undone/);
    expect(r.stdout).toMatch(/s2\s+✖ undo failed/);
    expect(r.stdout).toContain('status: needs-operator');
    expect(r.stderr).toContain('Step boom failed: division by zero.');
    expect(r.stderr).toContain('Rollback is incomplete: operator action is needed.');
    expect(r.stderr).toContain('Still applied (newest first): s2, s1.');
    expect(r.stderr).toContain(
      'Step s2 cannot be undone: its down failed: table "second_tabel" does not exist',
    );
    expect(r.stderr).not.toMatch(noStackTrace);

    // Nothing more was changed after the failing down: s1 was not undone.
    expect(await auditCounts(sb.db)).toEqual({ s1: 1, s2: 1 });
    const tables = await sb.db.query(
      `select string_agg(tablename, ',' order by tablename) as names from pg_tables where schemaname = 'public'`,
    );
    expect((tables.rows[0] as { names: string }).names).toBe('audit,first_table,second_table,t');

    const status = await sb.json(['status']);
    const doc = status.doc.status as StatusDoc;
    expect(doc.lastRun?.status).toBe('needs-operator');
    expect(doc.lastRun?.error).toContain('the down of s2 failed');
    expect(Object.fromEntries(doc.steps.map((s) => [s.id, s.state]))).toMatchObject({
      s1: 'applied',
      s2: 'applied',
      s3: 'not-applied',
      boom: 'not-applied',
    });
    const text = await sb.cli(['status']);
    expect(text.stdout).toContain('needs-operator');
  });
});

describe('a malformed runbook', () => {
  const BAD = `name: Bad Name
defaults:
  lockTimeout: 30
steps:
  - id: one
    sql:
      up: create table a (id int)
      dwon: drop table a
  - id: one
    sql:
      upFile: ../outside.sql
  - id: idx
    sql:
      up: create index concurrently a_idx on a (id)
      transaction: true
  - sql:
      up: select 1
  - id: chk
    check:
      query: select true; select false
`;
  const problems: [number, RegExp][] = [
    [1, /name: use a-z/],
    [3, /lockTimeout: write a duration with its unit/],
    [8, /unknown key "dwon".*did you mean "down"/],
    [9, /duplicate step id "one"/],
    [11, /upFile: \.\.\/outside\.sql leaves the runbook's directory/],
    [14, /CREATE INDEX CONCURRENTLY cannot run inside a transaction block/],
    [16, /missing required key "id"/],
    [20, /found 2 statements/],
  ];

  it('exits 2 listing every problem with file:line, and changes nothing', async () => {
    const sb = await prepare('malformed');
    const rb = await sb.write('bad.yaml', BAD);
    const before = await fingerprintOf(sb.db.url, []);

    const r = await sb.cli(['run', rb]);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(2);
    expect(r.stderr).toContain(`Runbook bad.yaml has ${problems.length} problems.`);
    for (const [line, text] of problems) {
      const hit = r.stderr.split('\n').find((l) => l.includes(`bad.yaml:${line}:`));
      expect(hit, `a problem reported at bad.yaml:${line}`).toBeDefined();
      expect(hit).toMatch(text);
    }
    expect(r.stderr).not.toMatch(noStackTrace);

    const json = await sb.json(['run', rb]);
    expect(json.code).toBe(2);
    const doc = json.doc as unknown as ErrorDoc;
    expect(doc.error.kind).toBe('runbook');
    expect(doc.error.details).toHaveLength(problems.length);

    // Not a byte changed: no journal, no backup, every fingerprint the same.
    expectState(await fingerprintOf(sb.db.url, []), before, 'untouched');
    const schemas = await sb.db.query(
      `select count(*)::int as n from pg_namespace where nspname = 'lifeboat_journal'`,
    );
    expect((schemas.rows[0] as { n: number }).n).toBe(0);
    expect(await backupCount(sb)).toBe(0);
  });
});

describe('a runbook edited after it was applied', () => {
  it('is refused (exit 2) naming the changed step; the database is untouched', async () => {
    const sb = await prepare('edited');
    const steps = [tableStep('s1', 'one'), tableStep('s2', 'two'), tableStep('s3', 'three')];
    const rb = await sb.write('edit.yaml', runbook('edit', steps));
    const first = await sb.cli(['run', rb]);
    expect(first.code, first.stderr).toBe(0);
    const postRun = await sb.fingerprint();
    const journal = await journalCounts(sb.db);
    const backups = await backupCount(sb);

    const edited = structuredClone(steps);
    (edited[1]!.sql as { up: string }).up =
      `create table two (id bigint primary key);\ninsert into two values (1), (2);\ninsert into audit values ('s2')`;
    edited.push(tableStep('s4', 'four'));
    await sb.write('edit.yaml', runbook('edit', edited));

    const r = await sb.cli(['run', rb]);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(2);
    expect(r.stderr).toContain('cannot run against this database');
    expect(r.stderr).toContain('step "s2" changed since it was applied');
    expect(r.stderr).not.toContain('"s1"');
    expect(r.stderr).not.toContain('"s3"');
    expect(r.stderr).not.toMatch(noStackTrace);

    expectState(await sb.fingerprint(), postRun, 'post-run (untouched)');
    expect(await auditCounts(sb.db)).toEqual({ s1: 1, s2: 1, s3: 1 });
    expect(await journalCounts(sb.db)).toEqual(journal);
    expect(await backupCount(sb)).toBe(backups);
  });
});

describe('knex migrations', () => {
  async function knexSandbox(prefix: string, fixture: string, init = INIT): Promise<Sandbox> {
    const sb = await prepare(prefix, init);
    await sb.fixture(fixture, 'migrations');
    await sb.write(
      'knex.yaml',
      runbook('app', [
        { id: 'app', knex: { directory: 'migrations', loadExtensions: ['.cjs'] } },
        BOOM,
      ]),
    );
    return sb;
  }

  it('a migration without a down: plan shows undo none; a failure after it stops with exit 6 and undoes nothing', async () => {
    const sb = await knexSandbox('knex_nodown', 'run-knex-no-down');
    const CREATE = 'app/20240501000000_create_gizmos.cjs';
    const NO_DOWN = 'app/20240502000000_add_gizmo_colour.cjs';

    const plan = await sb.json(['plan', 'knex.yaml']);
    expect(plan.code, plan.stderr).toBe(0);
    const steps = (
      plan.doc.plan as { steps: { id: string; undo: string; risks: { code: string }[] }[] }
    ).steps;
    expect(steps.map((s) => [s.id, s.undo])).toEqual([
      [CREATE, 'down'],
      [NO_DOWN, 'none'],
      ['boom', 'down'],
    ]);
    expect(steps[1]!.risks.map((r) => r.code)).toContain('no-down');
    const planText = await sb.cli(['plan', 'knex.yaml']);
    expect(planText.stdout).toMatch(/20240502000000_add_gizmo_colour\.cjs.*none/);

    const r = await sb.json(['run', 'knex.yaml']);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(6);
    const doc = r.doc as unknown as ErrorDoc;
    expect(doc.error.kind).toBe('rollback-incomplete');
    expect(doc.result?.rollback?.blockers).toEqual([{ stepId: NO_DOWN, reason: 'it has no down' }]);
    expect(r.stderr).toContain(`Step ${NO_DOWN} cannot be undone: it has no down.`);
    expect(r.stderr).not.toMatch(/as before the run/);
    // The ladder stops before undoing anything: both migrations stay, and knex says so.
    const cols = await sb.db.query(
      `select string_agg(column_name, ',' order by ordinal_position) as c from information_schema.columns where table_name = 'gizmos'`,
    );
    expect((cols.rows[0] as { c: string }).c).toBe('id,name,colour');
    const knex = await sb.db.query(`select name from knex_migrations order by id`);
    expect((knex.rows as { name: string }[]).map((row) => row.name)).toEqual([
      '20240501000000_create_gizmos.cjs',
      '20240502000000_add_gizmo_colour.cjs',
    ]);
  });

  it('a migration with no down export at all (knex refuses to run it): never left half-migrated', async () => {
    // knex will not run a migration that lacks a down function, so nothing of it ran.
    // lifeboat must either refuse the runbook before anything runs (exit 2) or undo
    // the migration before it (exit 5); exit 6 with the database half-migrated is wrong.
    const sb = await knexSandbox('knex_absent', 'run-knex-down-absent');
    const preRun = await sb.fingerprint();
    const r = await sb.cli(['run', 'knex.yaml']);
    expect([2, 5], `exit ${r.code}\n${r.stdout}\n${r.stderr}`).toContain(r.code);
    expect(r.stderr).toContain('20240502000000_add_gizmo_colour.cjs');
    expect(r.stderr).not.toMatch(noStackTrace);
    expect(await sb.db.query(`select to_regclass('public.gizmos') as t`)).toMatchObject({
      rows: [{ t: null }],
    });
    if (r.code === 5) expectState(await sb.fingerprint(), preRun, 'pre-run');
  });

  it('a down that runs but undoes nothing: no clean rollback is claimed (exit 6, the difference named)', async () => {
    const sb = await knexSandbox('knex_noop', 'run-knex-noop-down');
    const plan = await sb.json(['plan', 'knex.yaml']);
    const steps = (plan.doc.plan as { steps: { id: string; undo: string }[] }).steps;
    expect(steps[0]).toMatchObject({ id: 'app/20240601000000_create_sprockets.cjs', undo: 'down' });

    const r = await sb.json(['run', 'knex.yaml']);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(6);
    const doc = r.doc as unknown as ErrorDoc;
    expect(doc.error.kind).toBe('rollback-incomplete');
    expect(doc.result?.rollback?.complete).toBe(false);
    expect(doc.result?.rollback?.proof?.equal).toBe(false);
    expect(doc.result?.rollback?.proof?.differences).toContainEqual(
      expect.objectContaining({ kind: 'table', object: 'public.sprockets' }),
    );
    expect(r.stderr).toContain('differs from its pre-run state');
    expect(r.stderr).toMatch(/table public\.sprockets: expected absent, found 3 rows/);
    expect(r.stderr).not.toMatch(/rolled back and the database is as before/);

    const status = (await sb.json(['status'])).doc.status as StatusDoc;
    expect(status.lastRun?.status).toBe('needs-operator');
    const left = await sb.db.query(`select count(*)::int as n from sprockets`);
    expect((left.rows[0] as { n: number }).n).toBe(3);
  });

  it('migrations whose downs work, then a failing step: rolled back (exit 5) to the pre-run state', async () => {
    // The control for the case above: knex's own bookkeeping tables, created by the
    // run's first migration, must not make an honest rollback look incomplete.
    const sb = await knexSandbox('knex_downs', 'run-knex-downs');
    const preRun = await sb.fingerprint();
    const r = await sb.cli(['run', 'knex.yaml']);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(5);
    expect(r.stdout).toContain('proof: every table');
    expectState(await sb.fingerprint(), preRun, 'pre-run');
  });

  it("migrations whose downs work, knex's tables already there: rolled back (exit 5) to the pre-run state", async () => {
    const sb = await knexSandbox(
      'knex_downs_tables',
      'run-knex-downs',
      `${INIT}
       create table knex_migrations (id serial primary key, name varchar(255), batch integer, migration_time timestamptz);
       create table knex_migrations_lock (index serial primary key, is_locked integer);
       insert into knex_migrations_lock (is_locked) values (0);`,
    );
    const preRun = await sb.fingerprint();
    const r = await sb.cli(['run', 'knex.yaml']);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(5);
    expectState(await sb.fingerprint(), preRun, 'pre-run');
    const rows = await sb.db.query(`select count(*)::int as n from knex_migrations`);
    expect((rows.rows[0] as { n: number }).n).toBe(0);
  });
});

describe('--backup existing with no backup', () => {
  it('exits 3 and changes nothing in the database: no journal, no step effects', async () => {
    const sb = await prepare('no_backup');
    const rb = await sb.write('guarded.yaml', runbook('guarded', [tableStep('s1', 'one')]));
    const before = await fingerprintOf(sb.db.url, []);

    const r = await sb.json(['run', rb, '--backup', 'existing']);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(3);
    expect((r.doc as unknown as ErrorDoc).error.kind).toBe('guard-refused');
    expect(r.stderr).toMatch(/No fresh, verified backup of .*lb_no_backup_/);
    expect(r.stderr).toContain('run `lifeboat backup`');
    expect(r.stderr).not.toMatch(noStackTrace);

    expect(await auditCounts(sb.db)).toEqual({});
    expect(await backupCount(sb)).toBe(0);
    // Promise 1: nothing at all changed in the target, lifeboat's own schema included.
    const journal = await sb.db.query(`select to_regnamespace('lifeboat_journal') as ns`);
    expect((journal.rows[0] as { ns: string | null }).ns).toBeNull();
    expectState(await fingerprintOf(sb.db.url, []), before, 'untouched');
  });
});

describe('a step whose journal says done', () => {
  it('is never applied twice: the second run says already applied and changes nothing', async () => {
    const sb = await prepare('twice');
    const rb = await sb.write(
      'twice.yaml',
      runbook('twice', [
        tableStep('s1', 'one'),
        {
          id: 's2',
          sql: {
            // Not idempotent on purpose: a second application would double the rows.
            up: `insert into t select g, 'more ' || g from generate_series(101, 150) g;\ninsert into audit values ('s2')`,
            down: `delete from t where id > 100;\ndelete from audit where step = 's2'`,
          },
        },
        { id: 'chk', check: { query: 'select count(*) = 150 from t' } },
      ]),
    );
    const first = await sb.cli(['run', rb]);
    expect(first.code, first.stderr).toBe(0);
    const postRun = await sb.fingerprint();

    const again = await sb.json(['run', rb]);
    expect(again.code, `${again.stdout}\n${again.stderr}`).toBe(0);
    const doc = again.doc.run as RunDoc;
    expect(doc.steps.map((s) => [s.id, s.outcome])).toEqual([
      ['s1', 'already-applied'],
      ['s2', 'already-applied'],
      ['chk', 'already-applied'],
    ]);
    const text = await sb.cli(['run', rb]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/s1\s+· already applied/);
    expect(text.stdout).toMatch(/s2\s+· already applied/);

    expect(await auditCounts(sb.db)).toEqual({ s1: 1, s2: 1 });
    expectState(await sb.fingerprint(), postRun, 'post-run');
  });
});

describe('a transactional step sent with its checkpoint in one query', () => {
  it('whose commit fails (a deferred constraint): neither its work nor its checkpoint stays, it is recorded failed, and the run rolls back (exit 5)', async () => {
    const sb = await prepare('commit_fails');
    const rb = await sb.write(
      'deferred.yaml',
      runbook('deferred', [
        tableStep('s1', 'one'),
        {
          id: 'late',
          sql: {
            up: `create table parent (id int primary key, up int references parent (id) deferrable initially deferred);\ninsert into parent values (1, 2);\ninsert into audit values ('late')`,
            down: `drop table parent;\ndelete from audit where step = 'late'`,
          },
        },
      ]),
    );
    const preRun = await sb.fingerprint();
    const r = await sb.cli(['run', rb]);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(5);
    expect(r.stdout).toMatch(/late\s+✖ failed .*violates foreign key constraint/);
    expect(r.stdout).toMatch(/s1\s+↩ undone/);
    const late = await sb.db.query(
      `select direction, status from lifeboat_journal.steps where step_id = 'late' order by seq`,
    );
    expect(late.rows).toEqual([{ direction: 'up', status: 'failed' }]);
    expect(await auditCounts(sb.db)).toEqual({});
    expectState(await sb.fingerprint(), preRun, 'pre-run');
  });

  it('whose script ends in a line comment: the checkpoint after it is still written', async () => {
    const sb = await prepare('trailing_comment');
    const rb = await sb.write(
      'comment.yaml',
      runbook('comment', [
        {
          id: 'c1',
          sql: {
            up: `insert into audit values ('c1') -- no newline after this comment`,
            down: `delete from audit where step = 'c1'`,
          },
        },
      ]),
    );
    const r = await sb.cli(['run', rb]);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    const c1 = await sb.db.query(
      `select direction, status, transactional from lifeboat_journal.steps where step_id = 'c1'`,
    );
    expect(c1.rows).toEqual([{ direction: 'up', status: 'done', transactional: true }]);
    expect(await auditCounts(sb.db)).toEqual({ c1: 1 });
  });
});
