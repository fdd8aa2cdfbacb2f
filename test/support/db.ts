import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** A database of its own for one test; `drop` removes it even while connections are open. */
export interface TestDatabase {
  name: string;
  url: string;
  query(sql: string, params?: unknown[]): Promise<pg.QueryResult>;
  drop(): Promise<void>;
}

/** The server chosen by test/support/globalSetup.ts, as a superuser-ish URL. */
export function adminUrl(): string {
  const url = process.env.LIFEBOAT_TEST_ADMIN_URL;
  if (!url) {
    throw new Error(
      'LIFEBOAT_TEST_ADMIN_URL is not set; run the tests through vitest so test/support/globalSetup.ts runs.',
    );
  }
  return url;
}

/** The admin URL with another database name (query parameters such as ?host= are kept). */
export function urlFor(database: string): string {
  const url = new URL(adminUrl());
  url.pathname = `/${encodeURIComponent(database)}`;
  return url.toString();
}

export async function createTestDatabase(prefix = 't'): Promise<TestDatabase> {
  if (!/^[a-z0-9_]+$/.test(prefix)) throw new Error(`bad test database prefix: ${prefix}`);
  // 63 bytes is PostgreSQL's identifier limit; longer names would be silently truncated.
  const name = `lb_${prefix.slice(0, 44)}_${randomBytes(6).toString('hex')}`;
  await withClient(adminUrl(), (c) => c.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`));
  const url = urlFor(name);
  return {
    name,
    url,
    // A short-lived connection per query: nothing to leak, and tests may kill backends freely.
    query: (sql, params) => withClient(url, (c) => c.query(sql, params)),
    drop: () => dropDatabase(name),
  };
}

async function dropDatabase(name: string): Promise<void> {
  await withClient(adminUrl(), async (c) => {
    await c.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
      [name],
    );
    await c.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
  });
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: 'lifeboat-test' });
  client.on('error', () => {}); // a backend killed by a test must not crash the worker
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** The rows of one query on any server's database, on a connection of its own. */
export async function rowsAt<T extends pg.QueryResultRow>(
  url: string,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  return withClient(url, async (c) => (await c.query<T>(sql, params)).rows);
}
