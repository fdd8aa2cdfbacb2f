import { hostname } from 'node:os';
import type pg from 'pg';
import { carriesToken, ledgerEntry, type DatabaseLedger } from './database-ledger.js';
import { quoteIdent, quoteLiteral } from './db.js';
import { pausePoint } from './faults.js';

/**
 * A database lifeboat creates for its own work (a scratch database, a restore
 * being filled) is written in the ledger (src/database-ledger.ts) before it is
 * created, carries a marker comment, `<kind> {json}`, once created, and is
 * guarded by an advisory lock on its name held by the owning process in the
 * maintenance database. A later run can then tell a crashed run's leftover (marked, lock
 * free) from a live one (lock held) and from a user's database that merely
 * looks similar (no marker): only the first is ever dropped.
 */
export interface MarkedDatabaseOptions {
  /** The marker's first word, e.g. `lifeboat-scratch`; it also keys the lock. */
  kind: string;
  name: string;
  /** Recorded in the ledger before the database exists; the name it is created under ends with it. */
  token: string;
  /**
   * The name it is created under, when `name` does not carry the token (a
   * name the user chose): it is renamed to `name` once marked.
   */
  createAs?: string;
  /** The database `admin` is connected to: the lock is only visible from there. */
  maintenanceDb: string;
  /** `host:port` of the server, as the ledger keys its entries. */
  server: string;
  ledger: DatabaseLedger;
  /** What the marker records besides its owner (purpose, backup). */
  about: Record<string, string>;
}

export interface MarkedDatabase {
  /**
   * Record the database in the ledger, create it with `run` (under the name it
   * is given), and mark it: from then on it is dropped unless kept. A
   * CREATE DATABASE the server refused leaves no entry behind.
   */
  create(run: (name: string) => Promise<void>): Promise<void>;
  /** Keep the database however `fn` ends (the caller re-marks it as it should stay). */
  keep(): void;
}

/** The lock key for a name bound to `$1`: the kind keeps owners of different kinds apart. */
export function lockKey(kind: string): string {
  return `hashtextextended(${quoteLiteral(`${kind}:`)} || $1, 0)`;
}

/**
 * Hold the lock on `opts.name` while `fn` creates, marks and uses the
 * database. Once created, it is dropped when `fn` ends unless kept; a crash
 * leaves it in the ledger (and marked, once it was) with its lock free, for
 * `dropAbandoned` to find.
 */
export async function withMarkedDatabase<T>(
  admin: pg.ClientBase,
  opts: MarkedDatabaseOptions,
  fn: (db: MarkedDatabase) => Promise<T>,
): Promise<T> {
  const key = lockKey(opts.kind);
  const createAs = opts.createAs ?? opts.name;
  if (!carriesToken(createAs, opts.token)) throw new Error(`${createAs} does not carry its token`);
  const names = [...new Set([opts.name, createAs])];
  for (const name of names) await admin.query(`select pg_advisory_lock(${key})`, [name]);
  /** The name the database has now, once it exists. */
  let current: string | undefined;
  let kept = false;
  const db: MarkedDatabase = {
    async create(run) {
      await opts.ledger.record(
        ledgerEntry({
          token: opts.token,
          name: createAs,
          kind: opts.kind,
          server: opts.server,
          maintenanceDb: opts.maintenanceDb,
        }),
      );
      try {
        await run(createAs);
      } catch (err) {
        // Refused: no database, no entry. Created all the same (the answer was lost): ours to drop.
        const exists = await databaseExists(admin, createAs).catch(() => undefined);
        if (exists === false) await opts.ledger.remove(opts.token);
        if (exists) current = createAs;
        throw err;
      }
      current = createAs;
      await pausePoint(`database:created`);
      const marker = {
        ...opts.about,
        maintenanceDb: opts.maintenanceDb,
        token: opts.token,
        host: hostname(),
        pid: process.pid,
        at: new Date().toISOString(),
      };
      await commentOnDatabase(admin, createAs, `${opts.kind} ${JSON.stringify(marker)}`);
      if (createAs !== opts.name) {
        await admin.query(
          `alter database ${quoteIdent(createAs)} rename to ${quoteIdent(opts.name)}`,
        );
        current = opts.name;
      }
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
    if (current !== undefined && !kept) {
      const dropping = dropDatabase(admin, current).then(() => opts.ledger.remove(opts.token));
      // After a failure, its error is the one to report; a leftover stays in the ledger for the next cleanup.
      await (failed ? dropping.catch(() => undefined) : dropping);
    } else if (kept) {
      await opts.ledger.remove(opts.token).catch(() => undefined);
    }
    // The locks end with the session anyway.
    for (const name of names)
      await admin.query(`select pg_advisory_unlock(${key})`, [name]).catch(() => undefined);
  }
}

/** Where a cleanup looks besides the markers: the ledger, for the entries of this server. */
export interface LedgerScope {
  ledger: DatabaseLedger;
  server: string;
}

/**
 * Drop the databases marked `kind` whose owners are gone (lock free), and
 * those the ledger says a gone owner was creating: unmarked, but named with
 * the entry's token. The lock is only visible from the database it was taken
 * in, so a marker or entry naming another maintenance database is left alone.
 * Returns their names.
 */
export async function dropAbandoned(
  admin: pg.ClientBase,
  kind: string,
  scope: LedgerScope,
): Promise<string[]> {
  const res = await admin.query<{ datname: string; comment: string; current: string }>(
    `select d.datname, shobj_description(d.oid, 'pg_database') as comment,
            current_database() as current
       from pg_database d
      where shobj_description(d.oid, 'pg_database') like $1`,
    [`${kind} %`],
  );
  const current = res.rows[0]?.current ?? (await currentDatabase(admin));
  const dropped: string[] = [];
  for (const row of res.rows) {
    if (markedFrom(kind, row.comment) !== row.current) continue;
    await underLock(admin, kind, row.datname, async () => {
      // Read again under the lock: its owner may have re-marked or dropped it since the first look.
      if (!(await commentOf(admin, row.datname))?.startsWith(`${kind} `)) return;
      await dropDatabase(admin, row.datname);
      dropped.push(row.datname);
    });
  }
  const entries = (await scope.ledger.list()).filter(
    (e) => e.kind === kind && e.server === scope.server && e.maintenanceDb === current,
  );
  for (const entry of entries) {
    await underLock(admin, kind, entry.name, async () => {
      const comment = await commentOf(admin, entry.name);
      const ours =
        comment === null ? carriesToken(entry.name, entry.token) : comment?.startsWith(`${kind} `);
      if (ours) {
        await dropDatabase(admin, entry.name);
        dropped.push(entry.name);
      }
      // Gone, dropped, or kept by its owner (a plain comment): the entry has done its work.
      await scope.ledger.remove(entry.token);
    });
  }
  return dropped;
}

/** Run `fn` holding the name's lock, if no live owner holds it; otherwise do nothing. */
async function underLock(
  admin: pg.ClientBase,
  kind: string,
  name: string,
  fn: () => Promise<void>,
): Promise<void> {
  const key = lockKey(kind);
  const lock = await admin.query<{ ok: boolean }>(`select pg_try_advisory_lock(${key}) as ok`, [
    name,
  ]);
  if (!lock.rows[0]?.ok) return;
  try {
    await fn();
  } finally {
    await admin.query(`select pg_advisory_unlock(${key})`, [name]);
  }
}

/** The database's comment: null when it has none, undefined when there is no such database. */
async function commentOf(admin: pg.ClientBase, name: string): Promise<string | null | undefined> {
  const res = await admin.query<{ comment: string | null }>(
    `select shobj_description(oid, 'pg_database') as comment from pg_database where datname = $1`,
    [name],
  );
  return res.rows[0] ? res.rows[0].comment : undefined;
}

async function databaseExists(admin: pg.ClientBase, name: string): Promise<boolean> {
  return (await commentOf(admin, name)) !== undefined;
}

async function currentDatabase(admin: pg.ClientBase): Promise<string> {
  const res = await admin.query<{ d: string }>('select current_database() as d');
  return res.rows[0]!.d;
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
