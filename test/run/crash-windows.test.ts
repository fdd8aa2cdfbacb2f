import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { Config } from '../../src/config.js';
import { databaseLedger, databaseToken, type LedgerEntry } from '../../src/database-ledger.js';
import { withMarkedDatabase } from '../../src/marked-database.js';
import type { Fingerprints } from '../../src/fingerprint.js';
import { connect } from '../../src/db.js';
import { silentProgress } from '../../src/progress.js';
import {
  runApplicationName,
  sessionStart,
  settleStaleSessions,
} from '../../src/run/stale-sessions.js';
import { resolveTarget } from '../../src/target.js';
import { auditCounts, expectState, sandbox, type Sandbox } from './support.js';
import {
  ALL_ONCE,
  INIT,
  backendAlive,
  databasesNamed,
  killDuringIndexBuild,
  startRecovery,
  expectPreOrPost,
  expectStatusMatchesDatabase,
  killAt,
  postRunState,
  statusOf,
  windowRunbook,
  type RunDoc,
  type WindowRunbookOptions,
} from './windows.js';

/**
 * Promise 3 at each named window where a kill used to leave lifeboat unsure
 * of where things stand: the real process is killed there, every time, and
 * each recovery path (status, run again, rollback) must end in the pre-run or
 * the post-run state, with no step applied twice.
 */

let postRun: Fingerprints;
beforeAll(async () => {
  postRun = await postRunState('cw_ref');
});

let current: Sandbox | undefined;
afterEach(async () => {
  await current?.cleanup();
  current = undefined;
});

async function prepare(
  prefix: string,
  opts: WindowRunbookOptions = {},
): Promise<{ sb: Sandbox; rb: string; states: { preRun: Fingerprints; postRun: Fingerprints } }> {
  const sb = await sandbox(prefix, INIT);
  current = sb;
  const rb = await sb.write('windows.yaml', windowRunbook(opts));
  return { sb, rb, states: { preRun: await sb.fingerprint(), postRun } };
}

describe('window: the run is recorded, its pre-run fingerprints are not', () => {
  const point = 'run:recorded';

  it('status shows the stopped run with nothing applied; rollback closes it as "nothing applied" (exit 0)', async () => {
    const { sb, rb, states } = await prepare('cw_rec_rb');
    await killAt(sb, ['run', rb], point);

    const status = await statusOf(sb);
    expect(status.lastRun!.status).toBe('running');
    expect(status.steps).toEqual([]);

    const undo = await sb.json(['rollback', '--yes']);
    expect(undo.code, `${undo.stdout}\n${undo.stderr}`).toBe(0);
    const report = undo.doc.rollback as RunDoc;
    expect(report.status).toBe('rolled-back');
    expect(report.rollback).toMatchObject({ complete: true, nothingApplied: true });
    const text = await sb.cli(['status']);
    expect(text.stdout).toContain('nothing applied');
    expect((await statusOf(sb)).lastRun!.status).toBe('rolled-back');
    await expectPreOrPost(sb, states, 'pre-run');

    // Closed for good: a second rollback finds nothing to undo, a new run applies each step once.
    const again = await sb.cli(['rollback', '--yes']);
    expect(again.code, again.stderr).toBe(2);
    const fresh = await sb.cli(['run', rb]);
    expect(fresh.code, `${fresh.stdout}\n${fresh.stderr}`).toBe(0);
    await expectPreOrPost(sb, states, 'post-run');
  });

  it('run again resumes it, taking its proof before the first step: a failing step then rolls back (exit 5)', async () => {
    const { sb, rb, states } = await prepare('cw_rec_fail', { fail: 'last' });
    await killAt(sb, ['run', rb], point);
    const runId = (await statusOf(sb)).lastRun!.id;

    const again = await sb.json(['run', rb]);
    expect(again.code, `${again.stdout}\n${again.stderr}`).toBe(5);
    const report = again.doc.result as RunDoc;
    expect(report.runId).toBe(runId);
    expect(report.resumed).toBe(true);
    expect(report.rollback).toMatchObject({ complete: true, proof: { equal: true } });
    await expectPreOrPost(sb, states, 'pre-run');
  });

  it('run again resumes it to the post-run state, each step applied once', async () => {
    const { sb, rb, states } = await prepare('cw_rec_fwd');
    await killAt(sb, ['run', rb], point);
    const again = await sb.json(['run', rb]);
    expect(again.code, `${again.stdout}\n${again.stderr}`).toBe(0);
    expect((again.doc.run as RunDoc).resumed).toBe(true);
    await expectPreOrPost(sb, states, 'post-run');
    expect(await auditCounts(sb.db)).toEqual(ALL_ONCE);
  });
});

describe('window: a database is created, not yet marked', () => {
  const point = 'database:created';

  /** The one entry in the sandbox's ledger: the database the killed command was creating. */
  async function ledgerEntries(sb: Sandbox): Promise<LedgerEntry[]> {
    return databaseLedger({
      destinations: [
        { kind: 'local', name: 'local', path: path.join(sb.dir, '.lifeboat/backups') },
      ],
    } as unknown as Config).list();
  }

  async function commentOf(sb: Sandbox, name: string): Promise<string | null | undefined> {
    const res = await sb.db.query(
      `select shobj_description(oid, 'pg_database') as c from pg_database where datname = $1`,
      [name],
    );
    return (res.rows[0] as { c: string | null } | undefined)?.c;
  }

  it('verify: the unmarked scratch database is in the ledger; the next verify drops exactly it, never a look-alike', async () => {
    const { sb } = await prepare('cw_db_verify');
    const backup = await sb.cli(['backup', '--no-verify']);
    expect(backup.code, backup.stderr).toBe(0);
    await killAt(sb, ['verify', 'latest'], point);

    const [entry, ...more] = await ledgerEntries(sb);
    expect(more).toEqual([]);
    expect(entry!.name).toMatch(new RegExp(`^lifeboat_verify_\\d{14}_${entry!.token}$`));
    expect(await commentOf(sb, entry!.name)).toBeNull();
    // A user's database with a name of the same shape, never recorded by this repository.
    const lookAlike = `lifeboat_verify_20000101000000_${randomBytes(4).toString('hex')}`;
    await sb.db.query(`create database ${lookAlike}`);
    try {
      const again = await sb.cli(['verify', 'latest']);
      expect(again.code, again.stderr).toBe(0);
      expect(await commentOf(sb, entry!.name)).toBeUndefined();
      expect(await commentOf(sb, lookAlike)).toBeNull();
      expect(await ledgerEntries(sb)).toEqual([]);
    } finally {
      await sb.db.query(`drop database if exists ${lookAlike}`);
    }
  });

  it('restore: the next restore drops the unmarked half-created one and says so; a restore --as is created under a token and renamed', async () => {
    const { sb } = await prepare('cw_db_restore');
    const backup = await sb.cli(['backup']);
    expect(backup.code, backup.stderr).toBe(0);
    await killAt(sb, ['restore', 'latest', '--yes'], point);
    const [first] = await ledgerEntries(sb);
    expect(first!.name).toMatch(new RegExp(`^${sb.db.name}__restored_\\d{14}_${first!.token}$`));
    expect(await commentOf(sb, first!.name)).toBeNull();

    const as = `${sb.db.name}_copy`;
    await killAt(sb, ['restore', 'latest', '--as', as, '--yes'], point);
    // The second restore dropped the first one's leftover before it began.
    expect(await commentOf(sb, first!.name)).toBeUndefined();
    const [second, ...others] = await ledgerEntries(sb);
    expect(others).toEqual([]);
    expect(second!.name).toBe(`${as}__restoring_${second!.token}`);
    expect(await commentOf(sb, second!.name)).toBeNull();
    expect(await commentOf(sb, as)).toBeUndefined();

    try {
      const again = await sb.json(['restore', 'latest', '--as', as, '--yes']);
      expect(again.code, again.stderr).toBe(0);
      const result = again.doc.restore as { database: string; cleaned: string[] };
      expect(result.database).toBe(as);
      expect(result.cleaned).toEqual([second!.name]);
      expect(await commentOf(sb, second!.name)).toBeUndefined();
      expect(await commentOf(sb, as)).toMatch(/^lifeboat restored backup /);
      expect(await ledgerEntries(sb)).toEqual([]);
    } finally {
      await sb.db.query(`drop database if exists ${as} with (force)`);
    }
  });

  it('run: killed while its guard creates the scratch database; rollback finds no run, the next run drops it and goes on', async () => {
    const { sb, rb, states } = await prepare('cw_db_run');
    await killAt(sb, ['run', rb], point);
    const [entry, ...more] = await ledgerEntries(sb);
    expect(more).toEqual([]);
    expect(await commentOf(sb, entry!.name)).toBeNull();

    const undo = await sb.cli(['rollback', '--yes']);
    expect(undo.code, undo.stderr).toBe(2);
    expect(undo.stderr).toContain('There is no run to roll back');
    await expectPreOrPost(sb, states, 'pre-run');

    const again = await sb.cli(['run', rb]);
    expect(again.code, `${again.stdout}\n${again.stderr}`).toBe(0);
    await expectPreOrPost(sb, states, 'post-run');
    expect(await commentOf(sb, entry!.name)).toBeUndefined();
    expect(await ledgerEntries(sb)).toEqual([]);
  });

  it('a CREATE DATABASE the server refuses leaves no ledger entry', async () => {
    const { sb } = await prepare('cw_db_refused');
    const ledger = databaseLedger({
      destinations: [{ kind: 'local', name: 'local', path: sb.dir }],
    } as unknown as Config);
    const token = databaseToken();
    const admin = new pg.Client({ connectionString: sb.db.url });
    await admin.connect();
    try {
      const refused = withMarkedDatabase(
        admin,
        {
          kind: 'lifeboat-scratch',
          name: `lifeboat_verify_20000101000000_${token}`,
          token,
          maintenanceDb: sb.db.name,
          server: 'test',
          ledger,
          about: {},
        },
        (db) =>
          db.create(async (name) => {
            expect((await ledger.list()).map((e) => e.name)).toEqual([name]);
            await admin.query(`create database ${name} template lb_no_such_template_${token}`);
          }),
      );
      await expect(refused).rejects.toThrow(/does not exist/);
      expect(await ledger.list()).toEqual([]);
    } finally {
      await admin.end();
    }
  });
});

describe('window: the restore rung swapped the backup in, nothing after it ran', () => {
  /** A step with no down, then a failure: with --freeze, the run rolls back by restoring its backup. */
  const noWayBack = `name: no-way-back
steps:
  - id: add-archive
    sql: { up: "CREATE TABLE archive (id int)", down: "DROP TABLE archive" }
  - id: drop-balance
    sql: { up: "ALTER TABLE accounts DROP COLUMN balance" }
  - id: boom
    sql: { up: "SELECT 1/0" }
`;

  it('status and history find the run, rolled back; the database is the pre-run state and writable again', async () => {
    const { sb, states } = await prepare('cw_swap');
    const rb = await sb.write('no-way-back.yaml', noWayBack);
    await killAt(sb, ['run', rb, '--freeze'], 'restore:swapped');
    try {
      const status = await statusOf(sb);
      expect(status.lastRun!.status).toBe('rolled-back');
      expect(status.lastRun!.error).toMatch(
        /rolled back by restoring backup .* kept as .*__replaced_/,
      );
      const text = await sb.cli(['status']);
      expect(text.stdout).not.toContain('frozen by run');
      const history = await sb.json(['history']);
      expect(history.code, history.stderr).toBe(0);
      const runs = (history.doc.history as { runs: { id: string; status: string }[] }).runs;
      expect(runs.map((r) => [r.id, r.status])).toEqual([[status.lastRun!.id, 'rolled-back']]);
      await expectPreOrPost(sb, states, 'pre-run');
      const writable = await sb.db.query(`show default_transaction_read_only`);
      expect(writable.rows[0]).toEqual({ default_transaction_read_only: 'off' });
    } finally {
      const replaced = await databasesNamed(sb, `${sb.db.name}__replaced_`);
      for (const name of replaced) await sb.db.query(`drop database ${name} with (force)`);
    }
  });
});

describe('window: the server still executes a step after its client died (CREATE INDEX CONCURRENTLY)', () => {
  const WAITING = "Waiting for the stopped run's work still running on the server";

  it('run again waits for the build to end, then finds the step applied: the post-run state, each step once', async () => {
    const { sb, rb, states } = await prepare('cw_srv_run');
    const build = await killDuringIndexBuild(sb, ['run', rb]);
    const recovery = startRecovery(sb, ['run', rb, '--lock-wait', '30s']);
    await recovery.said(WAITING);
    expect(await backendAlive(sb, build.buildPid)).toBe(true);
    await build.release();
    const r = await recovery.done;
    expect(r.code, r.stderr).toBe(0);
    const run = (JSON.parse(r.stdout) as { run: RunDoc }).run;
    expect(run.resumed).toBe(true);
    expect(run.steps.find((s) => s.id === 'nontx')?.outcome).toBe('already-applied');
    await expectPreOrPost(sb, states, 'post-run');
  });

  it("a session this process opened before its lock's is its own: never taken for the stopped run's", async () => {
    // A run connects its steps' session and its lock's side by side; either may start first.
    const sb = await sandbox('cw_srv_own');
    current = sb;
    const target = resolveTarget(sb.db.url);
    const steps = await connect(target, runApplicationName('run-own', 'steps'));
    await sleep(50);
    const lock = await connect(target, runApplicationName('run-own', ''));
    try {
      const startedAt = await sessionStart(lock, steps);
      const stepsPid = (await steps.query<{ pid: number }>('select pg_backend_pid() as pid'))
        .rows[0]!.pid;
      const same = await sb.db.query(
        `select backend_start = $1::timestamptz as same from pg_stat_activity where pid = $2`,
        [startedAt, stepsPid],
      );
      expect(same.rows).toEqual([{ same: true }]);
      await settleStaleSessions(lock, ['run-own'], {
        terminate: true,
        startedAt,
        progress: silentProgress,
      });
      expect((await steps.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await steps.end().catch(() => undefined);
      await lock.end();
    }
  });

  it('Ctrl-C while run waits: exit 130, nothing decided; the next run waits again and goes on', async () => {
    const { sb, rb, states } = await prepare('cw_srv_int');
    const build = await killDuringIndexBuild(sb, ['run', rb]);
    const waiting = startRecovery(sb, ['run', rb, '--lock-wait', '30s']);
    await waiting.said(WAITING);
    waiting.interrupt();
    const stopped = await waiting.done;
    expect(stopped.code, stopped.stderr).toBe(130);
    expect(stopped.stderr).toContain('Interrupted while waiting for the stopped run');
    expect(await backendAlive(sb, build.buildPid)).toBe(true);
    const decided = await sb.db.query(
      `select count(*)::int as n from lifeboat_journal.steps where error like 'resolved%'`,
    );
    expect(decided.rows[0]).toEqual({ n: 0 });

    const again = startRecovery(sb, ['run', rb, '--lock-wait', '30s']);
    await again.said(WAITING);
    await build.release();
    const r = await again.done;
    expect(r.code, r.stderr).toBe(0);
    await expectPreOrPost(sb, states, 'post-run');
  });

  it('rollback waits for the build to end, then undoes it with its down: the pre-run state', async () => {
    const { sb, rb, states } = await prepare('cw_srv_rb');
    const build = await killDuringIndexBuild(sb, ['run', rb]);
    const recovery = startRecovery(sb, ['rollback', '--yes', '--lock-wait', '30s']);
    await recovery.said(WAITING);
    await build.release();
    const r = await recovery.done;
    expect(r.code, r.stderr).toBe(0);
    const report = (JSON.parse(r.stdout) as { rollback: RunDoc }).rollback;
    expect(report.rollback).toMatchObject({ complete: true, proof: { equal: true } });
    await expectPreOrPost(sb, states, 'pre-run');
  });

  for (const path of ['run', 'rollback'] as const) {
    it(`${path} --terminate-stale ends the build; the invalid index it leaves is cleared by the down before anything else`, async () => {
      const { sb, rb, states } = await prepare(`cw_srv_term_${path}`);
      const build = await killDuringIndexBuild(sb, ['run', rb]);
      const args =
        path === 'run'
          ? ['run', rb, '--terminate-stale', '--lock-wait', '30s']
          : ['rollback', '--yes', '--terminate-stale', '--lock-wait', '30s'];
      const recovery = startRecovery(sb, args);
      for (let i = 0; i < 2400 && (await backendAlive(sb, build.buildPid)); i++) await sleep(25);
      expect(await backendAlive(sb, build.buildPid)).toBe(false);
      // The down (DROP INDEX CONCURRENTLY) waits for the test's transaction too.
      await build.release();
      const r = await recovery.done;
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).not.toContain(WAITING);
      await expectPreOrPost(sb, states, path === 'run' ? 'post-run' : 'pre-run');
      const notes = await sb.db.query(
        `select error from lifeboat_journal.steps where step_id = 'nontx' and error like 'resolved%'`,
      );
      expect(notes.rows).toEqual([
        {
          error:
            'resolved not applied: by its verify query; its down cleared what it had half done',
        },
      ]);
    });
  }
});

/**
 * Each step kind started and not finished, and a rollback's downs likewise:
 * killed there, `status` must tell what the database shows, `run` again must
 * end in the post-run state (or, for a run that was failing, the pre-run
 * state), and `rollback` after the same kill in the pre-run state. One backup
 * serves both kills.
 */
const stepWindows: { point: string; fail?: 'last' }[] = [
  { point: 'step:tx:before' },
  { point: 'step:tx:inside' },
  { point: 'step:nontx:before' },
  { point: 'step:nontx:before-checkpoint' },
  { point: 'step:shell:before' },
  { point: 'step:shell:before-checkpoint' },
  { point: 'step:check:before' },
  { point: 'step:last:inside' },
  { point: 'undo:shell:before-checkpoint', fail: 'last' },
  { point: 'undo:nontx:before', fail: 'last' },
  { point: 'undo:nontx:before-checkpoint', fail: 'last' },
];

describe.each(stepWindows)('window: $point', ({ point, fail }) => {
  it('status tells what the database shows; run again and rollback each end in the pre-run or post-run state, each step once', async () => {
    const { sb, rb, states } = await prepare(
      `cw_${point.replace(/\W+/g, '_')}`,
      fail ? { fail } : {},
    );
    const backup = await sb.cli(['backup']);
    expect(backup.code, backup.stderr).toBe(0);
    const run = ['run', rb, '--backup', 'existing'];

    await killAt(sb, run, point);
    const status = await expectStatusMatchesDatabase(sb);
    expect(status.lock).toBeNull();
    expect(status.lastRun!.status).toBe(fail ? 'rolling-back' : 'running');
    const again = await sb.cli(run);
    expect(again.code, `${again.stdout}\n${again.stderr}`).toBe(fail ? 5 : 0);
    await expectPreOrPost(sb, states, fail ? 'pre-run' : 'post-run');
    if (!fail) {
      const back = await sb.cli(['rollback', '--yes']);
      expect(back.code, back.stderr).toBe(0);
    }

    await killAt(sb, run, point);
    const undo = await sb.cli(['rollback', '--yes']);
    expect(undo.code, `${undo.stdout}\n${undo.stderr}`).toBe(0);
    await expectPreOrPost(sb, states, 'pre-run');
  });
});

describe("window: knex's own tables created, before the run recorded them", () => {
  it('rollback removes them again (they were recorded before knex created them): the pre-run state', async () => {
    const { sb } = await prepare('cw_knex_tables');
    await sb.fixture('run-knex-downs', 'migrations');
    const rb = await sb.write(
      'knex.yaml',
      stringify({
        name: 'knex-tables',
        steps: [{ id: 'app', knex: { directory: 'migrations', loadExtensions: ['.cjs'] } }],
      }),
    );
    const preRun = await sb.fingerprint();
    await killAt(sb, ['run', rb], 'run:knex-tables');
    const tables = await sb.db.query(`select to_regclass('knex_migrations')::text as t`);
    expect(tables.rows[0]).toEqual({ t: 'knex_migrations' });

    const undo = await sb.json(['rollback', '--yes']);
    expect(undo.code, `${undo.stdout}\n${undo.stderr}`).toBe(0);
    expect((undo.doc.rollback as RunDoc).rollback).toMatchObject({ complete: true });
    expectState(await sb.fingerprint(), preRun, 'pre-run');
  });
});
