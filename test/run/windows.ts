import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { expect } from 'vitest';
import { stringify } from 'yaml';
import type { Fingerprints } from '../../src/fingerprint.js';
import { startCli, startPaused, type CliResult } from '../support/cli.js';
import { auditCounts, expectState, sandbox, type Sandbox } from './support.js';

/**
 * The crash-window harness: a runbook with a step of every kind, each writing
 * one row into `audit` (so "applied twice" shows as a count of 2), a way to
 * kill the real process at a named window, and the checks every recovery path
 * must pass: the database is exactly the pre-run or the post-run state (by
 * fingerprints the test computes), each step's row is there once or not at all.
 */
export const INIT = `
  create table audit (step text not null);
  create table accounts (id serial primary key, name text not null, balance int not null);
  insert into accounts (name, balance) select 'account ' || g, g * 10 from generate_series(1, 200) g;
`;

export const INDEX_VALID = `SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
  WHERE c.relname = 'accounts_name_idx' AND i.indisvalid)`;

const TIER_EXISTS = `SELECT EXISTS (SELECT 1 FROM information_schema.columns
  WHERE table_name = 'accounts' AND column_name = 'tier')`;

export interface WindowRunbookOptions {
  /** A step whose up fails after its work (division by zero). */
  fail?: 'tx' | 'shell' | 'last';
}

/**
 * Five steps: `tx` (transactional sql), `nontx` (CREATE INDEX CONCURRENTLY,
 * its audit row first, with a verify query and a down), `shell` (psql from a
 * shell command), `check`, and `last` (transactional sql).
 */
export function windowRunbook(opts: WindowRunbookOptions = {}): string {
  const boom = (id: string) => (opts.fail === id ? ';\nselect 1/0' : '');
  const psql = (sql: string) => `psql -v ON_ERROR_STOP=1 -qAt -c "${sql}"`;
  return stringify({
    name: 'windows',
    defaults: { lockTimeout: '5s' },
    steps: [
      {
        id: 'tx',
        sql: {
          up: `create table ledger (id int primary key, account int not null references accounts, amount int not null);\ninsert into audit values ('tx')${boom('tx')}`,
          down: `drop table ledger;\ndelete from audit where step = 'tx'`,
        },
      },
      {
        id: 'nontx',
        // A build a test holds up waits on that test's snapshot under lock_timeout: it must outlast
        // the slowest chain of lifeboat processes a test starts before letting it go.
        lockTimeout: '2min',
        sql: {
          up: `insert into audit values ('nontx');\ncreate index concurrently accounts_name_idx on accounts (name)`,
          down: `drop index concurrently if exists accounts_name_idx;\ndelete from audit where step = 'nontx'`,
          verify: INDEX_VALID,
        },
      },
      {
        id: 'shell',
        shell: {
          up: `${psql("insert into audit values ('shell'); alter table accounts add column tier text")}${opts.fail === 'shell' ? ' && exit 3' : ''}`,
          down: psql(
            "alter table accounts drop column if exists tier; delete from audit where step = 'shell'",
          ),
          verify: TIER_EXISTS,
        },
      },
      {
        id: 'check',
        check: { query: 'select count(*) = 200 from accounts', message: '200 accounts' },
      },
      {
        id: 'last',
        sql: {
          up: `insert into ledger select g, g, g * 3 from generate_series(1, 50) g;\nupdate accounts set balance = balance + 1 where id <= 20;\ninsert into audit values ('last')${boom('last')}`,
          down: `update accounts set balance = balance - 1 where id <= 20;\ndelete from ledger;\ndelete from audit where step = 'last'`,
        },
      },
    ],
  });
}

export const ALL_ONCE = { tx: 1, nontx: 1, shell: 1, last: 1 };

export interface StatusDoc {
  lock: unknown;
  lastRun: { id: string; status: string; pid: number; error?: string | null } | null;
  steps: { id: string; state: string; note: string | null }[];
}

export interface RunDoc {
  runId: string;
  resumed: boolean;
  status: string;
  steps: { id: string; outcome: string }[];
  rollback?: { complete: boolean; nothingApplied?: boolean; proof?: { equal: boolean } };
}

/** Start a run, wait until it reaches `point`, SIGKILL it, and wait until the server noticed. */
export async function killAt(
  sb: Sandbox,
  args: string[],
  point: string,
  opts: { waitSessions?: boolean } = {},
): Promise<CliResult> {
  const run = await startPaused([...args, '--database-url', sb.db.url], point, { cwd: sb.dir });
  await run.reached();
  const killed = await run.kill9();
  expect(killed.signal).toBe('SIGKILL');
  if (opts.waitSessions !== false) await sb.sessionsGone();
  return killed;
}

export async function statusOf(sb: Sandbox): Promise<StatusDoc> {
  const json = await sb.json(['status']);
  expect(json.code, json.stderr).toBe(0);
  return json.doc.status as StatusDoc;
}

/** Exactly one of the two states, and the audit rows that go with it. */
export async function expectPreOrPost(
  sb: Sandbox,
  states: { preRun: Fingerprints; postRun: Fingerprints },
  which: 'pre-run' | 'post-run',
): Promise<void> {
  expect(await auditCounts(sb.db)).toEqual(which === 'pre-run' ? {} : ALL_ONCE);
  expectState(await sb.fingerprint(), which === 'pre-run' ? states.preRun : states.postRun, which);
}

/** The post-run state, computed once on a database of its own. */
export async function postRunState(prefix: string): Promise<Fingerprints> {
  const ref = await sandbox(prefix, INIT);
  try {
    const rb = await ref.write('windows.yaml', windowRunbook());
    const r = await ref.cli(['run', rb]);
    expect(r.code, r.stderr).toBe(0);
    expect(await auditCounts(ref.db)).toEqual(ALL_ONCE);
    return await ref.fingerprint();
  } finally {
    await ref.cleanup();
  }
}

/** Databases on the server whose name starts with `prefix` (the test's own, never the server's whole list). */
export async function databasesNamed(sb: Sandbox, prefix: string): Promise<string[]> {
  const res = await sb.db.query(
    `select datname from pg_database where starts_with(datname, $1) order by 1`,
    [prefix],
  );
  return (res.rows as { datname: string }[]).map((r) => r.datname);
}

/**
 * The server still executing a step after its client died: a transaction of
 * the test's own holds a snapshot, so the run's CREATE INDEX CONCURRENTLY
 * waits for it in its last phase; the run is killed while the server waits. The
 * build goes on (and ends) once the test lets the transaction go.
 */
export async function killDuringIndexBuild(
  sb: Sandbox,
  args: string[],
): Promise<{ buildPid: number; release(): Promise<void> }> {
  const blocker = new pg.Client({ connectionString: sb.db.url, application_name: 'test-blocker' });
  blocker.on('error', () => undefined);
  await blocker.connect();
  await blocker.query('begin isolation level repeatable read');
  await blocker.query('select 1');
  const run = startCli([...args, '--database-url', sb.db.url], { cwd: sb.dir });
  let buildPid = 0;
  for (let i = 0; i < 2400 && !buildPid; i++) {
    buildPid = (await indexBuilds(sb))[0] ?? 0;
    if (!buildPid) await sleep(25);
  }
  if (!buildPid) throw new Error(`the index build never waited:\n${(await run.done).stderr}`);
  run.child.kill('SIGKILL');
  expect((await run.done).signal).toBe('SIGKILL');
  return {
    buildPid,
    async release() {
      await blocker.query('commit');
      await blocker.end();
    },
  };
}

/** Sessions of a lifeboat run building the index, waiting on a lock (the test's transaction). */
export async function indexBuilds(sb: Sandbox): Promise<number[]> {
  const res = await sb.db.query(
    `select pid from pg_stat_activity
      where datname = current_database() and application_name like 'lifeboat run % steps'
        and query ilike 'create index concurrently%' and wait_event_type = 'Lock'`,
  );
  return (res.rows as { pid: number }[]).map((r) => r.pid);
}

/** Is that backend still there? */
export async function backendAlive(sb: Sandbox, pid: number): Promise<boolean> {
  const res = await sb.db.query(`select 1 from pg_stat_activity where pid = $1`, [pid]);
  return (res.rowCount ?? 0) > 0;
}

/** Start a recovery command; resolves `waiting` once its stderr says `text`. */
export function startRecovery(
  sb: Sandbox,
  args: string[],
): { done: Promise<CliResult>; said(text: string): Promise<void>; interrupt(): void } {
  const run = startCli([...args, '--database-url', sb.db.url, '--json'], { cwd: sb.dir });
  let stderr = '';
  run.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let finished = false;
  void run.done.then(() => (finished = true));
  return {
    done: run.done,
    interrupt: () => run.child.kill('SIGINT'),
    async said(text) {
      for (let i = 0; i < 2400; i++) {
        if (stderr.includes(text)) return;
        if (finished) throw new Error(`ended before saying "${text}":\n${stderr}`);
        await sleep(25);
      }
      throw new Error(`never said "${text}":\n${stderr}`);
    },
  };
}

/** What `status` says of each step is what the database shows: its audit row, or none; never two. */
export async function expectStatusMatchesDatabase(sb: Sandbox): Promise<StatusDoc> {
  const status = await statusOf(sb);
  const audit = await auditCounts(sb.db);
  for (const s of status.steps) {
    if (s.id === 'check') continue;
    if (s.state === 'applied') expect(audit[s.id], `${s.id} is applied`).toBe(1);
    if (s.state === 'not-applied') expect(audit[s.id], `${s.id} is not applied`).toBeUndefined();
  }
  for (const [id, n] of Object.entries(audit)) expect(n, `${id} applied once`).toBe(1);
  return status;
}
