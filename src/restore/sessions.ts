import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { sqlState } from '../db.js';
import { BadInputError } from '../errors.js';

/** How long sessions may take to go away by themselves (our own closing ones, terminated ones). */
const SETTLE_MS = 2000;

/** A session connected to a database lifeboat must rename. */
export interface Session {
  pid: number;
  database: string;
  user: string | null;
  application: string | null;
  client: string | null;
}

export async function listSessions(admin: pg.ClientBase, databases: string[]): Promise<Session[]> {
  const res = await admin.query<Session>(
    `select pid, datname as database, usename as user, application_name as application,
            client_addr::text as client
       from pg_stat_activity
      where datname = any($1::text[]) and pid <> pg_backend_pid()
        and backend_type is distinct from 'autovacuum worker'
      order by datname, pid`,
    [databases],
  );
  return res.rows;
}

/**
 * The sessions connected, once lifeboat's own just-closed connections (the
 * fingerprint's, a terminated one) have had a moment to leave.
 */
export async function settledSessions(
  admin: pg.ClientBase,
  databases: string[],
): Promise<Session[]> {
  const deadline = Date.now() + SETTLE_MS;
  for (;;) {
    const sessions = await listSessions(admin, databases);
    const leaving = sessions.some((s) => s.application?.startsWith('lifeboat'));
    if (!leaving || Date.now() > deadline) return sessions;
    await sleep(50);
  }
}

/**
 * End `sessions`, one by one; returns those the server agreed to end, and
 * those it refused (a role that is not a superuser may not end a superuser's).
 */
export async function terminateSessions(
  admin: pg.ClientBase,
  sessions: Session[],
): Promise<{ ended: Session[]; refused: Session[] }> {
  const ended: Session[] = [];
  const refused: Session[] = [];
  for (const session of sessions) {
    try {
      const res = await admin.query<{ ok: boolean | null }>(
        'select pg_terminate_backend($1) as ok',
        [session.pid],
      );
      if (res.rows[0]?.ok) ended.push(session);
    } catch (err) {
      if (sqlState(err) !== '42501') throw err;
      refused.push(session);
    }
  }
  return { ended, refused };
}

/** Sessions the role may not end: the swap cannot happen, and nothing was renamed. */
export function terminateRefusal(refused: Session[], restored: string): BadInputError {
  return new BadInputError(
    `Cannot swap: ${refused.length} session(s) could not be ended: the role may not end a superuser's session. Close them, or swap as a superuser. The proved database ${restored} is kept under its name; nothing was renamed.`,
    { details: refused.map(describeSession), data: { sessions: refused, restored } },
  );
}

export async function waitGone(admin: pg.ClientBase, pids: number[]): Promise<void> {
  const deadline = Date.now() + SETTLE_MS;
  while (Date.now() < deadline) {
    const res = await admin.query('select 1 from pg_stat_activity where pid = any($1::int[])', [
      pids,
    ]);
    if ((res.rowCount ?? 0) === 0) return;
    await sleep(50);
  }
}

export function describeSession(s: Session): string {
  const parts = [`pid ${s.pid}`, `user ${s.user ?? '?'}`];
  if (s.application) parts.push(`application "${s.application}"`);
  if (s.client) parts.push(`from ${s.client}`);
  return `${s.database}: ${parts.join(', ')}`;
}

export function sessionsRefusal(sessions: Session[], restored: string | undefined): BadInputError {
  const kept = restored
    ? ` The proved database ${restored} is kept under its name; nothing was renamed.`
    : ' Nothing was created or renamed.';
  return new BadInputError(
    `Cannot swap: ${sessions.length} session(s) are connected, and a database can only be renamed while no one is connected to it. Close them, or run again with --terminate to end them.${kept}`,
    { details: sessions.map(describeSession), data: { sessions, restored } },
  );
}
