import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from '../src/cluster.js';
import { startNewerServer, type NewerMajor } from './support/newer-servers.js';

/**
 * Newer PostgreSQL majors than the suite's own server (Debian's 15), started
 * from the npm server builds: the destinations of a move or a restore elsewhere.
 */
const MAJORS: NewerMajor[] = [17, 18];
const servers = new Map<NewerMajor, Cluster>();

beforeAll(async () => {
  const started = await Promise.allSettled(MAJORS.map((m) => startNewerServer(m)));
  for (const [i, s] of started.entries())
    if (s.status === 'fulfilled') servers.set(MAJORS[i]!, s.value);
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) throw failed.reason;
});
afterAll(async () => {
  await Promise.all([...servers.values()].map((s) => s.stop()));
});

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

describe.each(MAJORS)('PostgreSQL %i from the npm server build', (major) => {
  it('runs that major, with the contrib extensions the suite uses', async () => {
    const url = servers.get(major)!.url;
    const [version] = await query<{ v: string }>(
      url,
      `select current_setting('server_version_num') as v`,
    );
    expect(Math.floor(Number(version!.v) / 10000)).toBe(major);
    const available = await query<{ name: string }>(
      url,
      `select name from pg_available_extensions
        where name in ('amcheck', 'citext', 'cube', 'earthdistance', 'btree_gist', 'pgcrypto')
        order by name`,
    );
    expect(available.map((e) => e.name)).toEqual([
      'amcheck',
      'btree_gist',
      'citext',
      'cube',
      'earthdistance',
      'pgcrypto',
    ]);
    // Loadable, not only listed: their libraries are in the build.
    await query(url, 'create extension amcheck; create extension citext; drop extension citext');
  });
});
