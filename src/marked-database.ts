import { hostname } from 'node:os';
import type pg from 'pg';
import { quoteIdent, quoteLiteral } from './db.js';

/**
 * A database lifeboat creates for its own work (a scratch database, a restore
 * being filled) carries a marker comment, `<kind> {json}`, and is guarded by an
 * advisory lock on its name held by the owning process in the maintenance
 * database. A later run can then tell a crashed run's leftover (marked, lock
 * free) from a live one (lock held) and from a user's database that merely
 * looks similar (no marker): only the first is ever dropped.
 */
export interface MarkedDatabaseOptions {
  /** The marker's first word, e.g. `lifeboat-scratch`; it also keys the lock. */
  kind: string;
  name: string;
  /** The database `admin` is connected to: the lock is only visible from there. */
  maintenanceDb: string;
  /** What the marker records besides its owner (purpose, backup). */
  about: Record<string, string>;
}

export interface MarkedDatabase {
  /** Mark the database, right after creating it: from then on it is dropped unless kept. */
  mark(): Promise<void>;
  /** Keep the database however `fn` ends (the caller re-marks it as it should stay). */
  keep(): void;
}

/** The lock key for a name bound to `$1`: the kind keeps owners of different kinds apart. */
export function lockKey(kind: string): string {
  return `hashtextextended(${quoteLiteral(`${kind}:`)} || $1, 0)`;
}

/**
 * Hold the lock on `opts.name` while `fn` creates, marks and uses the
 * database. Once marked, it is dropped when `fn` ends unless kept; a crash
 * leaves it marked with its lock free, for `dropAbandoned` to find.
 */
export async function withMarkedDatabase<T>(
  admin: pg.ClientBase,
  opts: MarkedDatabaseOptions,
  fn: (db: MarkedDatabase) => Promise<T>,
): Promise<T> {
  const key = lockKey(opts.kind);
  await admin.query(`select pg_advisory_lock(${key})`, [opts.name]);
  let created = false;
  let kept = false;
  const db: MarkedDatabase = {
    async mark() {
      created = true;
      const marker = {
        ...opts.about,
        maintenanceDb: opts.maintenanceDb,
        host: hostname(),
        pid: process.pid,
        at: new Date().toISOString(),
      };
      await commentOnDatabase(admin, opts.name, `${opts.kind} ${JSON.stringify(marker)}`);
    },
    keep() {
      kept = true;
    },
  };
  let failed = true;
  try {
    const result = await fn(db);
    failed = false;
    return result;
  } finally {
    if (created && !kept) {
      const dropping = dropDatabase(admin, opts.name);
      // After a failure, its error is the one to report; a leftover stays marked for the next cleanup.
      await (failed ? dropping.catch(() => undefined) : dropping);
    }
    // The lock ends with the session anyway.
    await admin.query(`select pg_advisory_unlock(${key})`, [opts.name]).catch(() => undefined);
  }
}

/**
 * Drop the databases marked `kind` whose owners are gone (lock free). The lock
 * is only visible from the database it was taken in, so a marker naming
 * another maintenance database is left alone. Returns their names.
 */
export async function dropAbandoned(admin: pg.ClientBase, kind: string): Promise<string[]> {
  const res = await admin.query<{ datname: string; comment: string; current: string }>(
    `select d.datname, shobj_description(d.oid, 'pg_database') as comment,
            current_database() as current
       from pg_database d
      where shobj_description(d.oid, 'pg_database') like $1`,
    [`${kind} %`],
  );
  const key = lockKey(kind);
  const dropped: string[] = [];
  for (const row of res.rows) {
    if (markedFrom(kind, row.comment) !== row.current) continue;
    const lock = await admin.query<{ ok: boolean }>(`select pg_try_advisory_lock(${key}) as ok`, [
      row.datname,
    ]);
    if (!lock.rows[0]?.ok) continue;
    try {
      // Read again under the lock: its owner may have re-marked or dropped it since the first look.
      const again = await admin.query<{ comment: string | null }>(
        `select shobj_description(oid, 'pg_database') as comment from pg_database where datname = $1`,
        [row.datname],
      );
      if (!again.rows[0]?.comment?.startsWith(`${kind} `)) continue;
      await dropDatabase(admin, row.datname);
      dropped.push(row.datname);
    } finally {
      await admin.query(`select pg_advisory_unlock(${key})`, [row.datname]);
    }
  }
  return dropped;
}

/** The maintenance database a `kind` marker names; undefined for any other comment. */
function markedFrom(kind: string, comment: string): unknown {
  if (!comment.startsWith(`${kind} `)) return undefined;
  try {
    const marker = JSON.parse(comment.slice(kind.length + 1)) as { maintenanceDb?: unknown } | null;
    return marker?.maintenanceDb;
  } catch {
    return undefined;
  }
}

/** Replace a database's comment: how a marker is put on, changed, or taken off. */
export async function commentOnDatabase(
  admin: pg.ClientBase,
  name: string,
  comment: string,
): Promise<void> {
  await admin.query(`comment on database ${quoteIdent(name)} is ${quoteLiteral(comment)}`);
}

async function dropDatabase(admin: pg.ClientBase, name: string): Promise<void> {
  await admin.query(`drop database if exists ${quoteIdent(name)} with (force)`);
}
