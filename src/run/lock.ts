import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { connect } from '../db.js';
import { LockHeldError } from '../errors.js';
import type { Target } from '../target.js';
import { JOURNAL } from './journal.js';
import { isMoveId } from './runner-id.js';

/**
 * One run at a time per database: a session-level advisory lock on a
 * connection of its own, taken by trying and polling (never a blocking wait,
 * which could deadlock with CREATE INDEX CONCURRENTLY waiting on our own
 * sessions). If the process dies, the server drops the lock with the connection.
 */
const KEY_SQL = `hashtextextended('lifeboat:run:' || current_database(), 0)`;

export interface LockHolder {
  pid: number;
  application: string;
  clientAddr: string | null;
  since: string;
  /** From the journal, when the holder is a lifeboat run that recorded itself. */
  run?: { id: string; host: string; pid: number; startedAt: string; runbook: string };
  /** When the holder is a lifeboat move: its id. */
  move?: string;
}

export async function lockHolder(client: pg.ClientBase): Promise<LockHolder | undefined> {
  const res = await client.query<{ pid: number; app: string; addr: string | null; since: Date }>(
    `select a.pid, a.application_name as app, host(a.client_addr) as addr, a.backend_start as since
       from pg_locks l join pg_stat_activity a on a.pid = l.pid
      where l.locktype = 'advisory' and l.granted and l.objsubid = 1
        and l.database = (select oid from pg_database where datname = current_database())
        and ((l.classid::bigint << 32) | l.objid::bigint) = ${KEY_SQL}`,
  );
  const row = res.rows[0];
  if (!row) return undefined;
  const holder: LockHolder = {
    pid: row.pid,
    application: row.app,
    clientAddr: row.addr,
    since: row.since.toISOString(),
  };
  const runId = /^lifeboat run (\S+)/.exec(row.app)?.[1];
  if (isMoveId(runId)) holder.move = runId;
  else if (runId) {
    const run = await client
      .query<{ id: string; host: string; pid: number; started_at: Date; runbook: string }>(
        `select id, host, pid, started_at, runbook from ${JOURNAL}.runs where id = $1`,
        [runId],
      )
      .catch(() => undefined);
    const r = run?.rows[0];
    if (r)
      holder.run = {
        id: r.id,
        host: r.host,
        pid: r.pid,
        startedAt: r.started_at.toISOString(),
        runbook: r.runbook,
      };
  }
  return holder;
}

export function describeHolder(h: LockHolder): string {
  if (h.move) return `move ${h.move} (server session ${h.pid}, connected since ${h.since})`;
  if (h.run) {
    return `run ${h.run.id} of runbook ${h.run.runbook} (host ${h.run.host}, pid ${h.run.pid}, since ${h.run.startedAt})`;
  }
  return `server session ${h.pid} "${h.application}"${h.clientAddr ? ` from ${h.clientAddr}` : ''} (connected since ${h.since})`;
}

/** Hold the run lock for the duration of `fn`, or refuse with exit 7 naming the holder. */
export async function withRunLock<T>(
  target: Target,
  runId: string,
  waitMs: number,
  fn: (lockClient: pg.Client) => Promise<T>,
): Promise<T> {
  const client = await connect(target, `lifeboat run ${runId}`);
  try {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const res = await client.query<{ ok: boolean }>(
        `select pg_try_advisory_lock(${KEY_SQL}) as ok`,
      );
      if (res.rows[0]?.ok) break;
      if (Date.now() >= deadline) {
        const holder = await lockHolder(client);
        throw new LockHeldError(
          `Another run holds the lock on database ${target.database}${holder ? `: ${describeHolder(holder)}` : ''}.`,
          {
            details: [
              'Wait for it to finish, or see `lifeboat status`. A run whose process died releases the lock with its connection.',
            ],
            data: { holder },
          },
        );
      }
      await sleep(Math.min(250, Math.max(10, deadline - Date.now())));
    }
    return await fn(client);
  } finally {
    // Ending the session releases the lock; no explicit unlock to forget.
    await client.end().catch(() => undefined);
  }
}

/**
 * The run lock, and beside it the session that does the work: it connects
 * while the lock's session does (each connection is a round trip and an
 * authentication) and ends before the lock is released. Which of the two
 * starts first is left to chance (see `sessionStart`).
 */
export async function withRunLockAndSession<T>(
  locked: { target: Target; runId: string; waitMs: number },
  applicationName: string,
  fn: (lockClient: pg.Client, client: pg.Client) => Promise<T>,
): Promise<T> {
  const session = connect(locked.target, applicationName);
  session.catch(() => undefined); // awaited under the lock, or ended below
  try {
    return await withRunLock(locked.target, locked.runId, locked.waitMs, async (lockClient) => {
      const client = await session;
      try {
        return await fn(lockClient, client);
      } finally {
        await client.end().catch(() => undefined);
      }
    });
  } finally {
    // Refused before it was used (another run holds the lock): ended here.
    await session.then((client) => client.end()).catch(() => undefined);
  }
}
