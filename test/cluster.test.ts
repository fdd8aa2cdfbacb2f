import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it, vi } from 'vitest';
import { isReachable, startThrowawayCluster } from '../src/cluster.js';
import { adminUrl, createTestDatabase, urlFor } from './support/db.js';

async function queryOnce(
  url: string,
  sql: string,
  params: unknown[] = [],
): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(sql, params);
  } finally {
    await client.end();
  }
}

/** Whether `pid` is a live process; a zombie waiting to be reaped counts as gone. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: the process exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  const stat = existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, 'utf8') : '';
  return !/\) Z /.test(stat);
}

describe('test harness', () => {
  it('hands the admin URL to workers through the environment', async () => {
    expect(process.env.LIFEBOAT_TEST_ADMIN_URL).toBeTruthy();
    expect(await isReachable(adminUrl())).toBe(true);
  });

  it('creates a database of its own and drops it, even with a connection open', async () => {
    const db = await createTestDatabase('harness');
    expect(db.name).toMatch(/^lb_harness_[0-9a-f]{12}$/);
    expect(db.url).toBe(urlFor(db.name));
    const exists = 'SELECT count(*)::int AS n FROM pg_database WHERE datname = $1';
    expect((await queryOnce(adminUrl(), exists, [db.name])).rows[0]).toEqual({ n: 1 });
    expect((await db.query('SELECT current_database() AS name')).rows[0]).toEqual({
      name: db.name,
    });

    const holder = new pg.Client({ connectionString: db.url });
    holder.on('error', () => {}); // drop terminates it
    await holder.connect();
    try {
      await db.drop();
    } finally {
      await holder.end().catch(() => {});
    }
    expect((await queryOnce(adminUrl(), exists, [db.name])).rows[0]).toEqual({ n: 0 });
    await db.drop(); // dropping twice is harmless
  });
});

describe('startThrowawayCluster', () => {
  it('starts a second, independent cluster and stop() leaves nothing behind', async () => {
    const lines: string[] = [];
    const cluster = await startThrowawayCluster({ log: (line) => lines.push(line) });
    const dir = path.dirname(cluster.dataDir);
    let pid: number | undefined;
    try {
      expect(cluster.url).toBe(
        `postgres://lifeboat:${cluster.password}@127.0.0.1:${cluster.port}/postgres`,
      );
      expect(cluster.url).not.toBe(adminUrl());
      expect(lines.some((l) => l.includes(String(cluster.port)))).toBe(true);
      const { rows } = await queryOnce(cluster.url, 'SELECT 1 AS one, current_user AS who');
      expect(rows[0]).toEqual({ one: 1, who: 'lifeboat' });
      // Password authentication is really enforced over TCP.
      const wrong = cluster.url.replace(cluster.password, 'wrong-password');
      expect(await isReachable(wrong)).toBe(false);

      pid = Number(
        (await readFile(path.join(cluster.dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0],
      );
      expect(isAlive(pid)).toBe(true);
    } finally {
      await cluster.stop();
    }
    // pg_ctl returns once the pid file is gone, a moment before the postmaster exits.
    expect(pid).toBeGreaterThan(0);
    await vi.waitFor(() => expect(isAlive(pid)).toBe(false), { timeout: 10_000 });
    expect(existsSync(dir)).toBe(false);
    expect(await isReachable(cluster.url)).toBe(false);
    await cluster.stop(); // idempotent
  });
});
