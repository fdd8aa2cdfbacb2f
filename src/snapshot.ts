import type pg from 'pg';
import { connect, quoteLiteral } from './db.js';
import type { Target } from './target.js';

export interface HeldSnapshot {
  /** The id other sessions (pg_dump) import with SET TRANSACTION SNAPSHOT / --snapshot. */
  id: string;
  xmin: string;
  xmax: string;
  /** The session holding the snapshot; queries on it see exactly what the dump sees. */
  client: pg.Client;
}

/**
 * Open a REPEATABLE READ, READ ONLY transaction, export its snapshot, and hold
 * it for the duration of `fn`: the dump and the fingerprints read the same data.
 */
export async function withExportedSnapshot<T>(
  target: Target,
  fn: (snapshot: HeldSnapshot) => Promise<T>,
): Promise<T> {
  const client = await connect(target, 'lifeboat snapshot');
  try {
    await client.query('begin isolation level repeatable read, read only');
    const res = await client.query<{ id: string; xmin: string; xmax: string }>(
      `select pg_export_snapshot() as id,
              pg_snapshot_xmin(pg_current_snapshot())::text as xmin,
              pg_snapshot_xmax(pg_current_snapshot())::text as xmax`,
    );
    const row = res.rows[0]!;
    const result = await fn({ id: row.id, xmin: row.xmin, xmax: row.xmax, client });
    await client.query('commit');
    return result;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * `fn` inside a REPEATABLE READ, READ ONLY transaction on `session`, rolled
 * back after, which also undoes any setting `fn` made: a session of the
 * caller's (a run's own) is left as it was found.
 */
export async function inRolledBackSnapshot<T>(
  session: pg.ClientBase,
  fn: () => Promise<T>,
): Promise<T> {
  await session.query('begin isolation level repeatable read, read only');
  let result: T;
  try {
    result = await fn();
  } catch (err) {
    await session.query('rollback').catch(() => undefined);
    throw err;
  }
  await session.query('rollback');
  return result;
}

/** Another session reading the same exported snapshot (for work shared out in parallel). */
export async function joinSnapshot(target: Target, snapshotId: string): Promise<pg.Client> {
  const client = await connect(target, 'lifeboat snapshot');
  try {
    await client.query('begin isolation level repeatable read, read only');
    await client.query(`set transaction snapshot ${quoteLiteral(snapshotId)}`);
    return client;
  } catch (err) {
    await client.end().catch(() => undefined);
    throw err;
  }
}

/**
 * `count` more sessions on that snapshot. Each is pushed onto `opened` as soon
 * as it connects, so the caller closes every one, even when a later one fails.
 */
export async function joinSnapshotSessions(
  target: Target,
  snapshotId: string,
  count: number,
  opened: pg.Client[],
): Promise<pg.Client[]> {
  const joined: pg.Client[] = [];
  for (let i = 0; i < count; i++) {
    const session = await joinSnapshot(target, snapshotId);
    opened.push(session);
    joined.push(session);
  }
  return joined;
}
