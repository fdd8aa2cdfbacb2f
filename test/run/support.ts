import { spawn } from 'node:child_process';
import { cp, mkdtemp, rm, stat, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'vitest';
import { compareFingerprints, type Difference, type Fingerprints } from '../../src/fingerprint.js';
import { fingerprintDatabase } from '../../src/fingerprint-session.js';
import { resolveTarget } from '../../src/target.js';
import { CLI, runCli, runJson, type CliResult } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

/**
 * What the run fault tests share: a database and a workspace of their own,
 * the CLI pointed at them, and fingerprints computed by the test itself (not
 * trusted from lifeboat's own report) to prove "pre-run" or "post-run" state.
 */
export const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));

export interface Sandbox {
  db: TestDatabase;
  dir: string;
  /** The CLI in the workspace, against this database. */
  cli(args: string[], env?: Record<string, string>): Promise<CliResult>;
  json(args: string[]): Promise<CliResult & { doc: Record<string, unknown> }>;
  /** Writes a file in the workspace; returns its name relative to it. */
  write(name: string, text: string): Promise<string>;
  /** Copies a fixture directory (test/fixtures/NAME) into the workspace as `as`. */
  fixture(name: string, as: string): Promise<void>;
  fingerprint(): Promise<Fingerprints>;
  /** Waits until no session of a lifeboat process is left in the database (after a kill -9). */
  sessionsGone(): Promise<void>;
  cleanup(): Promise<void>;
}

export async function sandbox(prefix: string, initSql?: string): Promise<Sandbox> {
  const db = await createTestDatabase(prefix);
  if (initSql) await db.query(initSql);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lifeboat-run-'));
  const withUrl = (args: string[]) => [...args, '--database-url', db.url];
  return {
    db,
    dir,
    cli: (args, env) => runCli(withUrl(args), { cwd: dir, env }),
    json: (args) => runJson(withUrl(args), { cwd: dir }),
    async write(name, text) {
      await writeFile(path.join(dir, name), text);
      return name;
    },
    fixture: (name, as) => cp(path.join(FIXTURES, name), path.join(dir, as), { recursive: true }),
    fingerprint: () => fingerprintOf(db.url),
    async sessionsGone() {
      for (let i = 0; i < 400; i++) {
        const res = await db.query(
          `select count(*)::int as n from pg_stat_activity
            where datname = current_database() and application_name like 'lifeboat %' and pid <> pg_backend_pid()`,
        );
        if ((res.rows[0] as { n: number }).n === 0) return;
        await sleep(25);
      }
      throw new Error('the killed run still has sessions in the database after 10 s');
    },
    async cleanup() {
      await db.drop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Fingerprints of a database, lifeboat's own journal left out (as lifeboat's proof does). */
export function fingerprintOf(
  url: string,
  excludeSchemas = ['lifeboat_journal'],
): Promise<Fingerprints> {
  return fingerprintDatabase(resolveTarget(url), { excludeSchemas });
}

/** The database equals a recorded state; the differences are the failure message. */
export function expectState(found: Fingerprints, expected: Fingerprints, what: string): void {
  const diffs: Difference[] = compareFingerprints(expected, found);
  expect(diffs, `the database should be exactly the ${what} state`).toEqual([]);
}

/** How many times each step left its row in the audit table. */
export async function auditCounts(db: TestDatabase): Promise<Record<string, number>> {
  const res = await db.query(
    `select step, count(*)::int as n from audit group by step order by step`,
  );
  return Object.fromEntries((res.rows as { step: string; n: number }[]).map((r) => [r.step, r.n]));
}

export async function journalCounts(db: TestDatabase): Promise<{ runs: number; steps: number }> {
  const res = await db.query(
    `select (select count(*)::int from lifeboat_journal.runs) as runs,
            (select count(*)::int from lifeboat_journal.steps) as steps`,
  );
  return res.rows[0] as { runs: number; steps: number };
}

/**
 * The CLI stopped at any of several pause points (src/faults.ts), reached in
 * order: the test acts at each one and lets it go on.
 */
export async function startPausedAt(
  args: string[],
  points: string[],
  cwd: string,
): Promise<{
  pid: number;
  done: Promise<CliResult>;
  reached(point: string): Promise<void>;
  resume(point: string): Promise<void>;
  /** SIGKILL, if it is still running (for a test that fails while it is paused). */
  kill(): Promise<void>;
}> {
  const pauseDir = await mkdtemp(path.join(os.tmpdir(), 'lifeboat-pause-'));
  const env: NodeJS.ProcessEnv = { ...process.env, CI: 'true', NO_COLOR: '1' };
  for (const k of ['DATABASE_URL', 'PGHOST', 'PGPORT', 'PGUSER', 'PGPASSWORD', 'PGDATABASE'])
    delete env[k];
  env.LIFEBOAT_PAUSE_AT = points.join(',');
  env.LIFEBOAT_PAUSE_DIR = pauseDir;
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let finished = false;
  const done = new Promise<CliResult>((resolve) => {
    child.on('close', (code, signal) => {
      finished = true;
      void rm(pauseDir, { recursive: true, force: true });
      resolve({ code, signal, stdout, stderr });
    });
  });
  const marker = (point: string) => path.join(pauseDir, `${encodeURIComponent(point)}.paused`);
  return {
    pid: child.pid!,
    done,
    async reached(point) {
      for (let i = 0; i < 2400; i++) {
        if (
          await stat(marker(point)).then(
            () => true,
            () => false,
          )
        )
          return;
        if (finished) {
          const r = await done;
          throw new Error(`exited (${r.code}) before reaching ${point}:\n${r.stdout}\n${r.stderr}`);
        }
        await sleep(25);
      }
      throw new Error(`never reached pause point ${point}`);
    },
    resume: (point) => unlink(marker(point)),
    async kill() {
      if (!finished) {
        child.kill('SIGKILL');
        await done;
      }
    },
  };
}

/** A tiny seeded PRNG (mulberry32): the same seed, the same runbooks. */
export function prng(seed: number): {
  next(): number;
  int(min: number, max: number): number;
  pick<T>(items: readonly T[]): T;
  chance(p: number): boolean;
} {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    pick: (items) => items[Math.floor(next() * items.length)]!,
    chance: (p) => next() < p,
  };
}
