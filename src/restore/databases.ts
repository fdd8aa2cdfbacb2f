import type pg from 'pg';
import { carriesToken, databaseToken } from '../database-ledger.js';
import { connect, quoteIdent, quoteLiteral, sqlState } from '../db.js';
import { BadInputError, ConnectionError, LifeboatError, errorMessage } from '../errors.js';
import {
  commentOnDatabase,
  dropAbandoned,
  withMarkedDatabase,
  type LedgerScope,
  type MarkedDatabase,
} from '../marked-database.js';
import { createdbGap, privilegeError } from '../privileges.js';
import { withDatabase, type Target } from '../target.js';

/**
 * The databases a restore creates: their names, the CREATE DATABASE with its
 * fallbacks (scratch databases too), the markers a restore being filled
 * carries, and the third database they are created and renamed from.
 */

/** PostgreSQL silently truncates longer names, which could land on another database. */
const MAX_NAME_BYTES = 63;

/** `base` + `suffix`, shortening `base` so the whole fits PostgreSQL's 63 bytes. */
export function suffixedName(base: string, suffix: string): string {
  let head = [...base];
  while (head.length > 0 && Buffer.byteLength(head.join('') + suffix) > MAX_NAME_BYTES) {
    head = head.slice(0, -1);
  }
  return head.join('') + suffix;
}

/** `yyyymmddhhmmss`, UTC, as in the names lifeboat gives databases. */
export function timestamp(at: Date): string {
  return at.toISOString().replace(/\D/g, '').slice(0, 14);
}

/**
 * The name of a database lifeboat creates, `<base><tag>_<yyyymmddhhmmss>_<token>`
 * within 63 bytes, and its token: a scratch database (`lifeboat_verify_…`), a
 * restore's default name (`<target>__restored_…`).
 */
export function stampedName(base: string, tag: string, at: Date): { name: string; token: string } {
  const token = databaseToken();
  return { name: suffixedName(base, `${tag}_${timestamp(at)}_${token}`), token };
}

export function checkName(name: string, flag: string): void {
  if (name.length === 0 || name.includes('\0')) {
    throw new BadInputError(`${flag} needs a database name.`);
  }
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) {
    throw new BadInputError(
      `${flag} "${name}" is longer than PostgreSQL's ${MAX_NAME_BYTES} bytes; it would be cut short, so choose a shorter name.`,
    );
  }
}

export async function databaseExists(admin: pg.ClientBase, name: string): Promise<boolean> {
  const res = await admin.query('select 1 from pg_database where datname = $1', [name]);
  return (res.rowCount ?? 0) > 0;
}

export function nameTaken(name: string): BadInputError {
  return new BadInputError(
    `A database named "${name}" already exists; a restore never overwrites anything. Choose another name with --as.`,
  );
}

/**
 * From template0, as pg_restore expects, in the backup's encoding; with the
 * target's collation and character classes when the backup is of the target,
 * so that a swapped-in copy sorts as the original did. Falls back to the
 * server's defaults, then to the C locale (which fits every encoding).
 * `what` names the database in a refusal for want of privileges.
 */
export async function createDatabase(
  admin: pg.ClientBase,
  name: string,
  how: {
    encoding?: string;
    /** The target's collation and character classes, as options of CREATE DATABASE (localeClause). */
    locale?: string;
    what: 'A restore' | 'A scratch database';
    warn: (message: string) => void;
    /** The locale is the source's on another server: one the server refuses is a refusal, not a fallback. */
    strictLocale?: boolean;
  },
): Promise<void> {
  const { encoding, locale, warn } = how;
  const base = `create database ${quoteIdent(name)} template template0`;
  if (!encoding) return void (await attempt(admin, name, base, how.what));
  const encoded = `${base} encoding ${quoteLiteral(encoding)}`;
  if (how.strictLocale && locale) {
    return attempt(admin, name, `${encoded} ${locale}`, how.what).catch((err: unknown) => {
      if (err instanceof LifeboatError) throw err;
      throw new BadInputError(
        `This server cannot create ${name} in the source's encoding and locale (${encoding}, ${locale}): ${errorMessage(err)}. Install the locale on this server; nothing was restored.`,
        { cause: err },
      );
    });
  }
  const attempts = [encoded, `${encoded} locale 'C'`];
  if (locale) attempts.unshift(`${encoded} ${locale}`);
  for (const [i, sql] of attempts.entries()) {
    try {
      await attempt(admin, name, sql, how.what);
      if (i === attempts.length - 1) {
        warn(
          `${name} was created with the C locale: the server's default locale does not fit ${encoding}.`,
        );
      } else if (i > 0) {
        warn(
          `${name} was created with the server's default locale: the target's (${locale}) was refused.`,
        );
      }
      return;
    } catch (err) {
      if (err instanceof BadInputError || i === attempts.length - 1) throw err;
    }
  }
}

/** One `create database`: a name taken and a role that may not create databases are refusals. */
async function attempt(
  admin: pg.ClientBase,
  name: string,
  sql: string,
  what: string,
): Promise<void> {
  try {
    await admin.query(sql);
  } catch (err) {
    const code = sqlState(err);
    if (code === '42P04') throw nameTaken(name);
    if (code === '42501') {
      // Not a verdict on the backup: the role may not create databases here.
      const role = await admin.query<{ r: string }>('select current_user as r');
      throw privilegeError([createdbGap(role.rows[0]!.r)], what);
    }
    throw err;
  }
}

/**
 * While it is being filled, the new database is a marked database
 * (src/marked-database.ts): a crashed restore's leftover is dropped by the
 * next restore; nothing without the marker ever is. Once proved, the marker
 * becomes a plain comment and the database is the user's: lifeboat never drops
 * it. One that fails the proof is kept for inspection under an `unproven` marker.
 */
const RESTORING = 'lifeboat-restoring';
const UNPROVEN = 'lifeboat-restored-unproven';

/** Drop the databases left half-restored by restores that crashed. Returns their names. */
export async function dropAbandonedRestores(
  admin: pg.ClientBase,
  scope: LedgerScope,
): Promise<string[]> {
  return dropAbandoned(admin, RESTORING, scope);
}

/** A new restore's default name, `<target>__restored_<yyyymmddhhmmss>_<token>`, and its token. */
export function restoredName(target: string, at: Date): { name: string; token: string } {
  return stampedName(target, '__restored', at);
}

/**
 * Hold the lock for `name` while `fn` creates, marks, fills and proves it.
 * Unless `fn` keeps it, a failure drops the database: it never held anything
 * but the restore's own work.
 */
export async function withRestoringDatabase<T>(
  admin: pg.ClientBase,
  where: LedgerScope & { maintenanceDb: string },
  named: { name: string; token: string },
  backupId: string,
  fn: (marked: MarkedDatabase) => Promise<T>,
): Promise<T> {
  // A name the user chose (--as) carries no token: the database is created under one, then renamed.
  const createAs = carriesToken(named.name, named.token)
    ? undefined
    : suffixedName(named.name, `__restoring_${named.token}`);
  const marked = {
    kind: RESTORING,
    ...named,
    ...(createAs ? { createAs } : {}),
    ...where,
    about: { backup: backupId },
  };
  return withMarkedDatabase(admin, marked, fn);
}

/** Re-mark a restore whose content differs from its backup: no cleanup drops it. */
export async function markUnproven(
  admin: pg.ClientBase,
  name: string,
  backupId: string,
  differences: number,
): Promise<void> {
  const unproven = { backup: backupId, at: new Date().toISOString(), differences };
  await commentOnDatabase(admin, name, `${UNPROVEN} ${JSON.stringify(unproven)}`);
}

/** The plain comment of a proved restore: without a marker, the database is the user's. */
export function restoredComment(backupId: string): string {
  return `${restoredFrom(backupId)} at ${new Date().toISOString()}`;
}

/** How a proved restore's comment begins: what tells a restore of that backup found after a crash. */
export function restoredFrom(backupId: string): string {
  return `lifeboat restored backup ${backupId}`;
}

/**
 * Run `fn` on a connection to a third database, neither the target nor the
 * new one: creating, marking and renaming are done from there, since a
 * database cannot be renamed by a session connected to it.
 */
export async function withMaintenanceConnection<T>(
  target: Target,
  wanted: string | undefined,
  fn: (admin: pg.Client, database: string) => Promise<T>,
): Promise<T> {
  if (wanted !== undefined && wanted === target.database) {
    throw new BadInputError(
      `--maintenance-db must be another database than the target "${target.database}": a database cannot be renamed by a session connected to it.`,
    );
  }
  const candidates = wanted ? [wanted] : ['postgres', 'template1'];
  let lastError: unknown;
  for (const database of candidates.filter((c) => c !== target.database)) {
    let admin: pg.Client;
    try {
      admin = await connect(withDatabase(target, database), 'lifeboat restore');
    } catch (err) {
      lastError = err;
      // Only "no such database" sends us to the next candidate; anything else is the answer.
      if (err instanceof ConnectionError && sqlState(err.cause) === '3D000') continue;
      throw err;
    }
    try {
      return await fn(admin, database);
    } finally {
      await admin.end().catch(() => undefined);
    }
  }
  throw lastError instanceof Error
    ? new BadInputError(
        `${errorMessage(lastError)} lifeboat needs a database other than the target to create and rename from; name one with --maintenance-db.`,
        { cause: lastError },
      )
    : new BadInputError('No database to connect to besides the target; use --maintenance-db.');
}
