import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { statfs } from 'node:fs/promises';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from '../src/cluster.js';
import { loadConfig } from '../src/config.js';
import type { MoveRecord } from '../src/move/record.js';
import { rollbackMove } from '../src/move/way-back.js';
import { silentProgress } from '../src/progress.js';
import { resolveTarget } from '../src/target.js';
import { richDatabase } from './support/backups.js';
import { runCli, runJson, startPaused, workspace } from './support/cli.js';
import { adminUrl, type TestDatabase, rowsAt } from './support/db.js';
import { startNewerServer } from './support/newer-servers.js';

/**
 * `lifeboat move --to URL`: the suite's PostgreSQL 15 database moved onto a
 * real PostgreSQL 17 server (npm build), frozen, copied, proved, checked,
 * cut over; finished or rolled back; and every phase killed with SIGKILL.
 */
const exec = promisify(execFile);
let server: Cluster;
const tag = `lb_mv_${Date.now().toString(16)}`;
/** Each source's tables are partly owned by a role of its own, which the destination lacks at first. */
const owners: string[] = [];

const query = rowsAt;

function onServer(database: string): string {
  const url = new URL(server.url);
  url.pathname = `/${encodeURIComponent(database)}`;
  return url.toString();
}

async function exists(database: string): Promise<boolean> {
  const rows = await query(server.url, 'select 1 from pg_database where datname = $1', [database]);
  return rows.length > 0;
}

/** What users see of the data: counts and sums of every table that matters, and the sequences. */
async function content(url: string): Promise<Record<string, unknown>> {
  const [row] = await query<Record<string, unknown>>(
    url,
    `select (select count(*)::int from public.customers) as customers,
            (select sum(total)::text from sales.orders) as order_total,
            (select count(*)::int from sales.events) as events,
            (select count(*)::int from "Weird Schema"."Order Items") as items,
            (select count(*)::int from pg_largeobject_metadata) as large_objects,
            (select string_agg(last_value::text, ',' order by sequencename) from pg_sequences
              where schemaname <> 'lifeboat_journal') as sequences`,
  );
  return row!;
}

/** An application's write: refused while the source is frozen. */
async function appWrite(url: string): Promise<string> {
  try {
    await query(
      url,
      `insert into sales.order_audit (order_id, old_status, new_status) values (1, 'new', 'paid')`,
    );
    return 'written';
  } catch (err) {
    return (err as Error).message;
  }
}

async function moveRecords(dir: string): Promise<{ id: string; state: string }[]> {
  const moves = path.join(dir, '.lifeboat', 'backups', 'moves');
  const names = (await readdir(moves).catch(() => [] as string[])).filter((n) =>
    n.endsWith('.json'),
  );
  return Promise.all(
    names.map(
      async (n) =>
        JSON.parse(await readFile(path.join(moves, n), 'utf8')) as { id: string; state: string },
    ),
  );
}

beforeAll(async () => {
  server = await startNewerServer(17);
});
afterAll(async () => {
  await server?.stop();
  for (const owner of owners)
    await query(adminUrl(), `drop role if exists ${pg.escapeIdentifier(owner)}`);
});

/** A rich database owned in part by a role the destination lacks, and a workspace with a verified backup. */
async function movable(prefix: string): Promise<{
  source: TestDatabase;
  owner: string;
  ws: Awaited<ReturnType<typeof workspace>>;
  args: (...more: string[]) => string[];
  cleanup(): Promise<void>;
}> {
  const owner = `${tag}_${prefix}`;
  owners.push(owner);
  await query(adminUrl(), `create role ${pg.escapeIdentifier(owner)} nologin`);
  const source = await richDatabase(prefix);
  await source.query(
    `alter table sales.orders owner to ${pg.escapeIdentifier(owner)};
     alter database ${pg.escapeIdentifier(source.name)} set work_mem = '12MB'`,
  );
  const ws = await workspace();
  const backup = await runCli(['backup', '--database-url', source.url], { cwd: ws.dir });
  expect(backup.code, backup.stderr).toBe(0);
  return {
    source,
    owner,
    ws,
    args: (...more) => [
      'move',
      '--to',
      server.url,
      '--create-roles',
      '--yes',
      '--database-url',
      source.url,
      ...more,
    ],
    async cleanup() {
      await query(
        server.url,
        `drop database if exists ${pg.escapeIdentifier(source.name)} with (force)`,
      );
      await source.drop();
      await ws.cleanup();
    },
  };
}

describe('a move from PostgreSQL 15 to 17', () => {
  let m: Awaited<ReturnType<typeof movable>>;
  let before: Record<string, unknown>;
  beforeAll(async () => {
    m = await movable('move');
    before = await content(m.source.url);
  });
  afterAll(() => m?.cleanup());

  it('freezes the source, copies, proves, checks and cuts over; the source refuses writes', async () => {
    const marker = path.join(m.ws.dir, 'cutover.txt');
    const r = await runJson(
      m.args('--cutover', `printf '%s %s' "$DATABASE_URL" "$LIFEBOAT_MOVE_FROM" > ${marker}`),
      { cwd: m.ws.dir },
    );
    expect(r.code, r.stderr).toBe(0);
    const move = r.doc.move as {
      moveId: string;
      state: string;
      createdRoles: string[];
      checks: { indexesChecked: number; collationsChecked: number; sequences: number };
      phases: { phase: string }[];
      destination: { connection: string };
    };
    expect(move.state).toBe('moved');
    expect(move.phases.map((p) => p.phase)).toEqual([
      'guard',
      'preflight',
      'freeze',
      'copy',
      'checks',
      'cutover',
    ]);
    expect(move.createdRoles).toEqual([m.owner]);
    expect(move.checks.indexesChecked).toBeGreaterThan(5);
    expect(move.checks.sequences).toBeGreaterThan(0);

    const dest = onServer(m.source.name);
    expect(await content(dest)).toEqual(before);
    const [facts] = await query<Record<string, unknown>>(
      dest,
      `select current_setting('server_version_num')::int / 10000 as major,
              (select tableowner::text from pg_tables where schemaname = 'sales' and tablename = 'orders') as orders_owner,
              current_setting('work_mem') as work_mem,
              current_setting('default_transaction_read_only') as read_only,
              (select count(*)::int from pg_stats where schemaname = 'sales') > 0 as analyzed,
              (select count(*)::int from pg_namespace where nspname = 'lifeboat_amcheck') as amcheck_left`,
    );
    expect(facts).toEqual({
      major: 17,
      orders_owner: m.owner,
      work_mem: '12MB',
      read_only: 'off',
      analyzed: true,
      amcheck_left: 0,
    });
    // The destination takes writes; the frozen source does not.
    expect(await appWrite(dest)).toBe('written');
    expect(await appWrite(m.source.url)).toContain('read-only transaction');

    const cutover = await readFile(marker, 'utf8');
    expect(cutover.startsWith(`${move.destination.connection} postgresql://`)).toBe(true);
    expect(cutover.endsWith(`/${m.source.name}`)).toBe(true);
    const password = decodeURIComponent(new URL(server.url).password);
    expect(`${r.stdout}${r.stderr}${cutover}`).not.toContain(password);
    expect(JSON.stringify(await moveRecords(m.ws.dir))).not.toContain(password);
  });

  it('status shows the move and never lifts its freeze', async () => {
    const status = await runCli(['status', '--database-url', m.source.url], { cwd: m.ws.dir });
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(
      /frozen by move move-\S+ since \S+: other sessions are read-only until it is finished/,
    );
    expect(await appWrite(m.source.url)).toContain('read-only transaction');
    // Nor does unfreeze, unless forced: the move is finished or rolled back instead.
    const unfreeze = await runCli(['unfreeze', '--database-url', m.source.url], { cwd: m.ws.dir });
    expect(unfreeze.code).toBe(2);
    expect(unfreeze.stderr).toMatch(
      /is frozen by move-\S+ since \S+: go back to it with lifeboat rollback, or finish the move/,
    );
    expect(await appWrite(m.source.url)).toContain('read-only transaction');
  });

  it('a second move of the same source is refused while the first is open; a run too', async () => {
    const again = await runCli(m.args('--as', 'elsewhere'), { cwd: m.ws.dir });
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/Move move-\S+ of .* is still open; resume it with that --to/);
    expect(await exists('elsewhere')).toBe(false);
    // A run's steps would reach the old copy only: refused before its guard.
    const runbook = path.join(m.ws.dir, 'late.yaml');
    await writeFile(
      runbook,
      'name: late\nsteps:\n  - id: add\n    sql:\n      up: alter table public.legacy add column late int\n      down: alter table public.legacy drop column late\n',
    );
    const run = await runCli(['run', runbook, '--database-url', m.source.url], { cwd: m.ws.dir });
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(
      /is being moved \(move-\S+\); finish the move and run the runbook against the destination/,
    );
    const [late] = await query(
      m.source.url,
      `select count(*)::int as n from information_schema.columns where column_name = 'late'`,
    );
    expect(late).toEqual({ n: 0 });
  });

  it('--finish retires the source: read-only, marked as moved, and unfreeze will not lift it', async () => {
    const finished = await runJson(['move', '--finish', '--yes', '--database-url', m.source.url], {
      cwd: m.ws.dir,
    });
    expect(finished.code, finished.stderr).toBe(0);
    expect((finished.doc.move as { state: string }).state).toBe('finished');
    expect(await appWrite(m.source.url)).toContain('read-only transaction');
    const unfreeze = await runCli(['unfreeze', '--database-url', m.source.url], { cwd: m.ws.dir });
    expect(unfreeze.code).toBe(2);
    expect(unfreeze.stderr).toContain(`${m.source.name} was moved to `);
    expect(await appWrite(m.source.url)).toContain('read-only transaction');
    const record = finished.doc.move as MoveRecord;
    const back = await runCli(['rollback', record.id, '--yes', '--database-url', m.source.url], {
      cwd: m.ws.dir,
    });
    expect(back.code).toBe(2);
    expect(back.stderr).toContain(`Move ${record.id} is not open on `);
    // A rollback that read the move before the finish, and got the lock after it, changes nothing.
    await expect(
      rollbackMove({
        config: await loadConfig({}, m.ws.dir),
        source: resolveTarget(m.source.url),
        record: { ...record, state: 'moved' },
        lockWaitMs: 0,
        progress: silentProgress,
        force: true,
        to: server.url,
      }),
    ).rejects.toThrow(`Move ${record.id} was finished meanwhile; nothing was changed.`);
    expect(await appWrite(m.source.url)).toContain('read-only transaction');
    // A run on the old copy would miss the destination.
    const run = await runCli(
      ['run', path.join(m.ws.dir, 'late.yaml'), '--database-url', m.source.url],
      { cwd: m.ws.dir },
    );
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toContain(`${m.source.name} was moved to `);
    expect(await content(m.source.url)).toEqual(before);
  });
});

describe('a move from PostgreSQL 15 to 18', () => {
  let newest: Cluster;
  let m: Awaited<ReturnType<typeof movable>>;
  beforeAll(async () => {
    newest = await startNewerServer(18);
    m = await movable('move_18');
  });
  afterAll(async () => {
    await m?.cleanup();
    await newest?.stop();
  });

  it('moves the rich schema and proves it there', async () => {
    const before = await content(m.source.url);
    const r = await runJson(
      ['move', '--to', newest.url, '--create-roles', '--yes', '--database-url', m.source.url],
      { cwd: m.ws.dir },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.doc.move).toMatchObject({
      state: 'moved',
      destination: { serverVersion: expect.stringMatching(/^18\./) as unknown },
    });
    const url = new URL(newest.url);
    url.pathname = `/${m.source.name}`;
    expect(await content(url.toString())).toEqual(before);
  });
});

describe('going back', () => {
  let m: Awaited<ReturnType<typeof movable>>;
  beforeAll(async () => {
    m = await movable('move_back');
  });
  afterAll(() => m?.cleanup());

  it('rollback refuses while the destination holds writes the source lacks, and --force goes back', async () => {
    const moved = await runCli(m.args(), { cwd: m.ws.dir });
    expect(moved.code, moved.stderr).toBe(0);
    const before = await content(m.source.url);
    const dest = onServer(m.source.name);
    expect(await appWrite(dest)).toBe('written');
    // Statistics reach the server when the writing session ends; give them a moment.
    await new Promise((r) => setTimeout(r, 1200));

    // The move's record keeps no password: without --to the destination cannot be read.
    const blind = await runCli(['rollback', '--yes', '--database-url', m.source.url], {
      cwd: m.ws.dir,
    });
    expect(blind.code, blind.stderr).toBe(6);
    expect(blind.stderr).toContain(
      'cannot be read, or its statistics were reset since the move was checked, so lifeboat cannot tell whether it took writes',
    );
    const refused = await runCli(
      ['rollback', '--yes', '--to', server.url, '--database-url', m.source.url],
      { cwd: m.ws.dir },
    );
    expect(refused.code, refused.stderr).toBe(6);
    expect(refused.stderr).toContain(
      'The destination took 1 row write(s) since the move was checked',
    );
    expect(await appWrite(m.source.url)).toContain('read-only transaction');

    // Statistics reset on the destination since the checks: the count tells nothing any more.
    await query(dest, 'select pg_stat_reset()');
    const reset = await runCli(
      ['rollback', '--yes', '--to', server.url, '--database-url', m.source.url],
      { cwd: m.ws.dir },
    );
    expect(reset.code, reset.stderr).toBe(6);
    expect(reset.stderr).toContain('or its statistics were reset since the move was checked');
    expect(await appWrite(m.source.url)).toContain('read-only transaction');

    const forced = await runJson(
      ['rollback', '--yes', '--force', '--to', server.url, '--database-url', m.source.url],
      {
        cwd: m.ws.dir,
      },
    );
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.doc.moveRollback).toMatchObject({ unfrozen: true });
    expect(await content(m.source.url)).toEqual(before);
    expect(await appWrite(m.source.url)).toBe('written');
    expect(await exists(m.source.name)).toBe(true);
    expect((await moveRecords(m.ws.dir)).map((r) => r.state)).toEqual(['rolled-back']);
  });
});

describe('refusals before anything changes', () => {
  let m: Awaited<ReturnType<typeof movable>>;
  beforeAll(async () => {
    m = await movable('move_refuse');
  });
  afterAll(() => m?.cleanup());

  it('names a role the destination lacks without --create-roles; the source stays writable', async () => {
    const r = await runCli(['move', '--to', server.url, '--yes', '--database-url', m.source.url], {
      cwd: m.ws.dir,
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('The destination server is not ready for');
    expect(r.stderr).toContain(`role ${m.owner} is missing`);
    expect(await appWrite(m.source.url)).toBe('written');
    expect(await exists(m.source.name)).toBe(false);
    expect(await moveRecords(m.ws.dir)).toEqual([]);
  });

  it('--dry-run lists the phases and changes nothing', async () => {
    const r = await runCli(m.args('--dry-run'), { cwd: m.ws.dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`Dry run: lifeboat move `);
    expect(r.stdout).toMatch(/guard: reuse verified backup \S+/);
    expect(r.stdout).toContain('4. copy ');
    expect(r.stdout).toContain('Nothing was changed (dry run).');
    expect(await exists(m.source.name)).toBe(false);
    expect(await appWrite(m.source.url)).toBe('written');
  });

  it('a role that is not a superuser is refused before anything, since the freeze needs one', async () => {
    const role = `${tag}_plain`;
    owners.push(role);
    await query(adminUrl(), `create role ${pg.escapeIdentifier(role)} login password 'plain-pw'`);
    const url = new URL(m.source.url);
    url.username = role;
    url.password = 'plain-pw';
    const r = await runCli(
      ['move', '--to', server.url, '--create-roles', '--yes', '--database-url', url.toString()],
      { cwd: m.ws.dir },
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `A move freezes the source (it marks the database and ends other roles' sessions), which needs a superuser; role ${role} is not one.`,
    );
    expect(await appWrite(m.source.url)).toBe('written');
    expect(await moveRecords(m.ws.dir)).toEqual([]);
  });

  it('names an extension the destination does not offer (adminpack, gone from 17)', async () => {
    await m.source.query('create extension adminpack');
    try {
      const r = await runCli(m.args(), { cwd: m.ws.dir });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('extension adminpack (');
      expect(r.stderr).toContain('is not installed on the destination server');
      expect(await appWrite(m.source.url)).toBe('written');
      expect(await exists(m.source.name)).toBe(false);
    } finally {
      await m.source.query('drop extension adminpack');
    }
  });

  it('a source left frozen by a run is refused before anything, naming the run', async () => {
    const db = pg.escapeIdentifier(m.source.name);
    await query(
      adminUrl(),
      `alter database ${db} set lifeboat.frozen_by = 'run-20261129T080000Z-abcd 2026-11-29T08:00:00.000Z'`,
    );
    try {
      const r = await runCli(m.args(), { cwd: m.ws.dir });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(
        `${m.source.name} is frozen by run-20261129T080000Z-abcd since 2026-11-29T08:00:00.000Z; lift that freeze first`,
      );
      expect(await exists(m.source.name)).toBe(false);
      expect(await moveRecords(m.ws.dir)).toEqual([]);
    } finally {
      await query(adminUrl(), `alter database ${db} reset lifeboat.frozen_by`);
    }
  });

  it('asks first: without a terminal and without --yes it refuses and changes nothing', async () => {
    const r = await runCli(
      ['move', '--to', server.url, '--create-roles', '--database-url', m.source.url],
      { cwd: m.ws.dir },
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('No terminal to ask on: confirm with --yes');
    expect(await appWrite(m.source.url)).toBe('written');
    expect(await exists(m.source.name)).toBe(false);
  });

  it('refuses a destination database that exists, and a usage error stops before anything', async () => {
    await query(server.url, `create database ${pg.escapeIdentifier(`${m.source.name}_taken`)}`);
    try {
      const r = await runCli(m.args('--as', `${m.source.name}_taken`), { cwd: m.ws.dir });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(
        `a database "${m.source.name}_taken" already exists on the destination`,
      );
    } finally {
      await query(server.url, `drop database ${pg.escapeIdentifier(`${m.source.name}_taken`)}`);
    }
    const usage = await runCli(['move', '--database-url', m.source.url], { cwd: m.ws.dir });
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('Name the destination with --to URL');
    expect(await appWrite(m.source.url)).toBe('written');
  });
});

describe('kill -9 at every phase: the same command resumes, or rollback goes back', () => {
  let m: Awaited<ReturnType<typeof movable>>;
  let before: Record<string, unknown>;
  beforeAll(async () => {
    m = await movable('move_kill');
    before = await content(m.source.url);
  });
  afterAll(() => m?.cleanup());

  const points = [
    'move:freeze',
    'backup:snapshot-held',
    'move:dumped',
    'restore:restored',
    'move:restored',
    'move:copy',
    'move:checks',
    'move:cutover',
  ];
  it('killed at each phase in turn, each time resumed by the same command: moved and proved, then rolled back', async () => {
    const as = `${m.source.name}_killed`;
    const [first, ...later] = points;
    // The first run stops at the first point; each resumption goes on to the next one and is killed there.
    for (const point of [first!, ...later]) {
      const paused = await startPaused(m.args('--as', as, '--cutover', 'true'), point, {
        cwd: m.ws.dir,
      });
      await paused.reached();
      const killed = await paused.kill9();
      expect(killed.signal, point).toBe('SIGKILL');
      expect(await appWrite(m.source.url), point).toContain('read-only transaction');
      const records = await moveRecords(m.ws.dir);
      // One move, resumed: never a second one beside it.
      expect(records.filter((r) => r.state === 'moving').length, point).toBeLessThanOrEqual(1);
    }
    const resumed = await runJson(m.args('--as', as, '--cutover', 'true'), { cwd: m.ws.dir });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.doc.move).toMatchObject({
      state: 'moved',
      resumed: true,
      cutover: { ran: true },
    });
    expect(await content(onServer(as))).toEqual(before);
    // The half-restored database of the copy killed during pg_restore is never left beside it.
    const strays = await query(
      server.url,
      `select datname from pg_database where datname like $1`,
      [`${as}%`],
    );
    expect(strays).toEqual([{ datname: as }]);

    const back = await runCli(
      ['rollback', '--yes', '--force', '--to', server.url, '--database-url', m.source.url],
      { cwd: m.ws.dir },
    );
    expect(back.code, back.stderr).toBe(0);
    expect(await content(m.source.url)).toEqual(before);
  });

  it('killed during the copy, then rolled back: the source is as before and writable', async () => {
    const as = `${m.source.name}_back`;
    const paused = await startPaused(m.args('--as', as), 'restore:restored', { cwd: m.ws.dir });
    await paused.reached();
    await paused.kill9();
    expect(await appWrite(m.source.url)).toContain('read-only transaction');
    const back = await runJson(['rollback', '--yes', '--database-url', m.source.url], {
      cwd: m.ws.dir,
    });
    expect(back.code, back.stderr).toBe(0);
    expect(back.doc.moveRollback).toMatchObject({ unfrozen: true });
    expect(await content(m.source.url)).toEqual(before);
    expect(await appWrite(m.source.url)).toBe('written');
    await m.source.query(
      `delete from sales.order_audit where order_id = 1 and new_status = 'paid'`,
    );
  });

  it('Ctrl-C during the copy stops the move: exit 130, the source unfrozen and as before', async () => {
    const as = `${m.source.name}_ctrl_c`;
    const was = await content(m.source.url);
    const paused = await startPaused(m.args('--as', as), 'move:dumped', { cwd: m.ws.dir });
    await paused.reached();
    paused.child.kill('SIGINT');
    await paused.resume();
    const r = await paused.done;
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toContain('Interrupted: the move stopped at its copy');
    expect(r.stderr).toContain('was unfrozen and is as before the move');
    expect(await content(m.source.url)).toEqual(was);
    expect(await appWrite(m.source.url)).toBe('written');
    await m.source.query(
      `delete from sales.order_audit where order_id = 1 and new_status = 'paid'`,
    );
    // No half-restored database is left behind.
    expect(await exists(as)).toBe(false);
  });

  it('a second move while one runs is refused with exit 7, naming the move', async () => {
    const as = `${m.source.name}_lock`;
    const paused = await startPaused(m.args('--as', as), 'move:freeze', { cwd: m.ws.dir });
    await paused.reached();
    try {
      const second = await runCli(m.args('--as', as), { cwd: m.ws.dir });
      expect(second.code, second.stderr).toBe(7);
      expect(second.stderr).toMatch(
        /holds the lock on database \S+: move move-\S+ \(server session \d+/,
      );
    } finally {
      await paused.resume();
    }
    expect((await paused.done).code).toBe(0);
    const back = await runCli(['rollback', '--yes', '--force', '--database-url', m.source.url], {
      cwd: m.ws.dir,
    });
    expect(back.code, back.stderr).toBe(0);
  });
});

describe('a cutover command that fails', () => {
  let m: Awaited<ReturnType<typeof movable>>;
  afterAll(() => m?.cleanup());

  it('stops with exit 6, the source frozen and the destination proved; fixed, the same command finishes it', async () => {
    m = await movable('move_cut');
    const flag = path.join(m.ws.dir, 'dns-ready');
    const cutover = `test -e ${flag} || { echo 'dns api: 503' >&2; exit 3; }`;
    const failed = await runCli(m.args('--cutover', cutover), { cwd: m.ws.dir });
    expect(failed.code, failed.stderr).toBe(6);
    expect(failed.stderr).toContain(
      "The move's cutover failed: the command exited with 3: dns api: 503",
    );
    expect(failed.stderr).toContain('If the applications now use the destination, finish the move');
    expect(await appWrite(m.source.url)).toContain('read-only transaction');
    expect(await exists(m.source.name)).toBe(true);
    expect((await moveRecords(m.ws.dir)).map((r) => r.state)).toEqual(['needs-operator']);

    await writeFile(flag, '');
    const resumed = await runJson(m.args('--cutover', cutover), { cwd: m.ws.dir });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.doc.move).toMatchObject({
      state: 'moved',
      resumed: true,
      cutover: { ran: true },
    });
  });
});

describe('checks on the destination catch what fingerprints cannot', () => {
  let m: Awaited<ReturnType<typeof movable>>;
  beforeAll(async () => {
    m = await movable('move_checks');
    // An expression index through a function declared immutable, and an ICU collation with a version.
    await m.source.query(
      `create function public.norm(t text) returns text language sql immutable as $$ select lower(t) $$;
       create index customers_norm on public.customers (public.norm(name));
       create collation public.german (provider = icu, locale = 'de-DE');
       create table public.words (w text collate public.german primary key);
       insert into public.words values ('Äpfel'), ('Zebra'), ('apfel')`,
    );
    const backup = await runCli(['backup', '--database-url', m.source.url], { cwd: m.ws.dir });
    expect(backup.code, backup.stderr).toBe(0);
  });
  afterAll(() => m?.cleanup());

  it('a schema difference on the destination, made before the proof, is caught: the move goes back', async () => {
    const as = `${m.source.name}_drift`;
    const paused = await startPaused(m.args('--as', as), 'restore:restored', { cwd: m.ws.dir });
    await paused.reached();
    await query(onServer(as), `alter table sales.orders add column discount numeric`);
    await paused.resume();
    const r = await paused.done;
    expect(r.code, r.stderr).toBe(5);
    expect(r.stderr).toMatch(
      /The move failed at its copy: Backup \S+ restored into \S+, but its content differs from the backup/,
    );
    expect(r.stderr).toContain('sales.orders');
    expect(await appWrite(m.source.url)).toBe('written');
    // Kept for inspection under its unproven mark, never dropped.
    const [kept] = await query<{ comment: string }>(
      server.url,
      `select shobj_description(oid, 'pg_database') as comment from pg_database where datname = $1`,
      [as],
    );
    expect(kept?.comment).toMatch(/unproven/i);
  });

  it('a corrupt index and a collation version mismatch stop the move, which goes back by itself', async () => {
    const paused = await startPaused(m.args(), 'move:copy', { cwd: m.ws.dir });
    await paused.reached();
    const dest = onServer(m.source.name);
    // The index no longer matches its table, and the collation claims another library version.
    await query(
      dest,
      `create or replace function public.norm(t text) returns text language sql immutable as $$ select upper(t) $$`,
    );
    await query(dest, `update pg_collation set collversion = '0.1' where collname = 'german'`);
    await paused.resume();
    const r = await paused.done;
    expect(r.code, r.stderr).toBe(5);
    expect(r.stderr).toContain(
      'The move failed at its checks: The moved database failed 2 check(s) on the destination.',
    );
    expect(r.stderr).toContain('index public.customers_norm does not match its table (amcheck)');
    expect(r.stderr).toContain('collation public.german is recorded at version 0.1');
    expect(await appWrite(m.source.url)).toBe('written');
    // The destination is kept for inspection, never dropped.
    expect(await exists(m.source.name)).toBe(true);
    expect((await moveRecords(m.ws.dir)).map((x) => x.state)).toEqual([
      'rolled-back',
      'rolled-back',
    ]);
  });
});

describe('a destination that fills up (tmpfs; needs root, as CI)', () => {
  let small: Cluster;
  let mount: string;
  let m: Awaited<ReturnType<typeof movable>>;
  beforeAll(async () => {
    mount = await mkdtemp(path.join(os.tmpdir(), 'lifeboat-small-'));
    await exec('mount', ['-t', 'tmpfs', '-o', 'size=160m,mode=0755', 'tmpfs', mount]);
    small = await startNewerServer(17, { baseDir: mount });
    m = await movable('move_full');
  });
  afterAll(async () => {
    await m?.cleanup();
    await small?.stop();
    await exec('umount', ['-l', mount]).catch(() => undefined);
    await rm(mount, { recursive: true, force: true });
  });

  async function fill(leaveBytes: number): Promise<string> {
    const { bavail, bsize } = await statfs(mount);
    const file = path.join(mount, 'filler');
    await exec('fallocate', ['-l', String(Math.max(0, bavail * bsize - leaveBytes)), file]);
    return file;
  }

  it('is refused before anything changes when its disk has too little room', async () => {
    const filler = await fill(1 << 20);
    try {
      const r = await runCli(
        ['move', '--to', small.url, '--create-roles', '--yes', '--database-url', m.source.url],
        { cwd: m.ws.dir },
      );
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(
        /the destination's disk has [\d.]+ \w+ free, and the database needs about/,
      );
      expect(await appWrite(m.source.url)).toBe('written');
    } finally {
      await rm(filler, { force: true });
    }
  });

  it('filling up during the copy: the move goes back by itself, the source unfrozen', async () => {
    const paused = await startPaused(
      ['move', '--to', small.url, '--create-roles', '--yes', '--database-url', m.source.url],
      'move:freeze',
      { cwd: m.ws.dir },
    );
    await paused.reached();
    const filler = await fill(256 << 10);
    try {
      await paused.resume();
      const r = await paused.done;
      expect(r.code, r.stderr).toBe(5);
      expect(r.stderr).toContain('The move failed at its copy');
      expect(r.stderr).toContain('was unfrozen and is as before the move');
      expect(await appWrite(m.source.url)).toBe('written');
    } finally {
      await rm(filler, { force: true });
    }
  });
});
