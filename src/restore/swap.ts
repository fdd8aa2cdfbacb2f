import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { quoteIdent, sqlState } from '../db.js';
import { BadInputError } from '../errors.js';
import { pausePoint } from '../faults.js';
import { readIdentity } from '../identity.js';
import type { Manifest } from '../repository/manifest.js';
import { describeTarget, type Target } from '../target.js';

/**
 * A swap: the backup proved beside the target takes the target's name in one
 * transaction, once no session is connected to either database (or they are
 * ended, when asked).
 */
const SWAP_ATTEMPTS = 5;

/** A swap puts the backup under the target's name: it must be a backup of that very database. */
export async function checkSameDatabase(
  admin: pg.ClientBase,
  manifest: Manifest,
  target: Target,
): Promise<void> {
  const server = await readIdentity(admin);
  const of = manifest.target;
  if (of.systemIdentifier !== server.systemIdentifier || of.database !== target.database) {
    throw new BadInputError(
      `Backup ${manifest.id} is of ${of.described}, not of ${describeTarget(target)}; --swap would put another database's content under "${target.database}". Restore it beside (without --swap) instead.`,
    );
  }
}

/** The SQL an operator can run (from another database) to swap a restored database in by hand. */
export function swapStatements(target: string, restored: string, replacedAs: string): string {
  return [
    'BEGIN;',
    `ALTER DATABASE ${quoteIdent(target)} RENAME TO ${quoteIdent(replacedAs)};`,
    `ALTER DATABASE ${quoteIdent(restored)} RENAME TO ${quoteIdent(target)};`,
    'COMMIT;',
  ].join(' ');
}

/**
 * Rename `target` to `replacedAs` and `restored` to `target` in one
 * transaction, so the target's name never names zero or two databases (new
 * connections to either wait for the commit). Returns the sessions terminated.
 */
export async function swapNames(
  admin: pg.ClientBase,
  names: { target: string; restored: string; replacedAs: string; terminate: boolean },
): Promise<Session[]> {
  const both = [names.target, names.restored];
  const terminated: Session[] = [];
  for (let attempt = 1; ; attempt++) {
    const sessions = await settledSessions(admin, both);
    if (sessions.length > 0) {
      if (!names.terminate || attempt > SWAP_ATTEMPTS) {
        throw sessionsRefusal(sessions, names.restored);
      }
      const { ended, refused } = await terminateSessions(admin, sessions);
      terminated.push(...ended);
      if (refused.length > 0) throw terminateRefusal(refused, names.restored);
      await waitGone(
        admin,
        ended.map((e) => e.pid),
      );
    }
    try {
      await admin.query('begin');
      await admin.query(
        `alter database ${quoteIdent(names.target)} rename to ${quoteIdent(names.replacedAs)}`,
      );
      await pausePoint('restore:swap-between-renames');
      await admin.query(
        `alter database ${quoteIdent(names.restored)} rename to ${quoteIdent(names.target)}`,
      );
      await admin.query('commit');
      return terminated;
    } catch (err) {
      await admin.query('rollback').catch(() => undefined);
      const code = sqlState(err);
      if (code === '55006') {
        // Someone connected between our look and the rename (or a prepared transaction holds on).
        const prepared = await preparedTransactions(admin, both);
        if (prepared.length > 0) {
          throw new BadInputError(
            `Cannot swap: prepared transactions use the databases; commit or roll them back first. The proved database ${names.restored} is kept; nothing was renamed.`,
            { details: prepared, cause: err },
          );
        }
        if (names.terminate && attempt < SWAP_ATTEMPTS) continue;
        throw sessionsRefusal(await listSessions(admin, both), names.restored);
      }
      if (code === '42P04') {
        throw new BadInputError(
          `Cannot swap: a database named "${names.replacedAs}" already exists. The proved database ${names.restored} is kept; nothing was renamed.`,
          { cause: err },
        );
      }
      throw err;
    }
  }
}

async function preparedTransactions(admin: pg.ClientBase, databases: string[]): Promise<string[]> {
  const res = await admin.query<{ gid: string; database: string }>(
    `select gid, database from pg_prepared_xacts where database = any($1::text[])`,
    [databases],
  );
  return res.rows.map((r) => `prepared transaction "${r.gid}" in ${r.database}`);
}

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
