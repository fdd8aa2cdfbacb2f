import os from 'node:os';
import { isReachable, startThrowawayCluster } from '../../src/cluster.js';

/**
 * Chooses the server the whole suite runs against: LIFEBOAT_TEST_DATABASE_URL,
 * else the libpq PG* variables, else a throwaway cluster started here and
 * stopped in the teardown.
 *
 * How tests learn the URL: this runs in vitest's main process before any test
 * worker is forked, and vitest 4 builds each fork's environment from
 * `process.env` at that point, so setting LIFEBOAT_TEST_ADMIN_URL here reaches
 * every worker (and the CLI processes tests spawn). test/cluster.test.ts
 * checks that it arrived.
 */
export default async function setup(): Promise<() => Promise<void>> {
  const fromEnv = process.env.LIFEBOAT_TEST_DATABASE_URL;
  if (fromEnv) {
    if (await isReachable(fromEnv)) return useServer(fromEnv);
    console.warn('LIFEBOAT_TEST_DATABASE_URL is set but not reachable; looking further.');
  }
  if (['PGHOST', 'PGPORT', 'PGUSER', 'PGDATABASE'].some((k) => process.env[k])) {
    const url = urlFromLibpqEnv();
    if (await isReachable(url)) return useServer(url);
    console.warn(
      'The PG* variables name a server that is not reachable; starting a throwaway one.',
    );
  }
  const cluster = await startThrowawayCluster();
  return useServer(cluster.url, () => cluster.stop());
}

function useServer(url: string, stop?: () => Promise<void>): () => Promise<void> {
  process.env.LIFEBOAT_TEST_ADMIN_URL = url;
  return async () => {
    delete process.env.LIFEBOAT_TEST_ADMIN_URL;
    await stop?.();
  };
}

/** The PG* variables as a URL, with libpq's defaults; a socket directory goes in `?host=`. */
function urlFromLibpqEnv(): string {
  const env = process.env;
  const user = env.PGUSER ?? os.userInfo().username;
  const host = env.PGHOST ?? 'localhost';
  const password = env.PGPASSWORD ? `:${encodeURIComponent(env.PGPASSWORD)}` : '';
  const db = encodeURIComponent(env.PGDATABASE ?? user);
  const port = env.PGPORT ?? '5432';
  const params = new URLSearchParams();
  if (host.startsWith('/')) params.set('host', host);
  if (env.PGSSLMODE) params.set('sslmode', env.PGSSLMODE);
  const hostPart = host.startsWith('/') ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  const query = params.size > 0 ? `?${params.toString()}` : '';
  return `postgres://${encodeURIComponent(user)}${password}@${hostPart}:${port}/${db}${query}`;
}
