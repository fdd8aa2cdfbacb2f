import { hostname } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { findCopies } from './catalog.js';
import type { Config } from './config.js';
import { connect, quoteIdent, quoteLiteral } from './db.js';
import {
  BadInputError,
  ConnectionError,
  ToolError,
  VerificationFailedError,
  errorMessage,
} from './errors.js';
import { pausePoint } from './faults.js';
import { compareFingerprints } from './fingerprint.js';
import { fingerprintDatabase } from './fingerprint-session.js';
import { readIdentity } from './identity.js';
import type { Manifest } from './manifest.js';
import { restoreArchive } from './pg-restore.js';
import { findTool } from './pgtools.js';
import type { Progress } from './progress.js';
import { DUMP_DIR, type StoredCopy } from './repository.js';
import { describeTarget, withDatabase, type Target } from './target.js';
import { checkCopies, describeDifference } from './verify.js';

/**
 * `lifeboat restore`: a backup restored into a NEW database beside the target
 * (never over anything), proved by fingerprints against its manifest, and,
 * when asked, swapped in under the target's name in one transaction, keeping
 * the database it replaces (DESIGN.md promise 5).
 *
 * While it is being filled, the new database carries a `lifeboat-restoring`
 * marker comment and an advisory lock held by this process, like scratch
 * databases (src/scratch.ts): a crashed restore's leftover (marker present,
 * lock free) is dropped by the next restore; nothing without the marker ever
 * is. Once proved, the marker becomes a plain comment and the database is the
 * user's: lifeboat never drops it.
 */
const RESTORING = 'lifeboat-restoring';
const UNPROVEN = 'lifeboat-restored-unproven';
/** PostgreSQL silently truncates longer names, which could land on another database. */
const MAX_NAME_BYTES = 63;
const SWAP_ATTEMPTS = 5;
/** How long sessions may take to go away by themselves (our own closing ones, terminated ones). */
const SETTLE_MS = 2000;

export interface RestoreOptions {
  config: Config;
  /** The target: the new database is created on its server, beside it. */
  target: Target;
  backupId: string;
  /** Name of the new database; default `<target>__restored_<yyyymmddhhmmss>`. */
  as?: string;
  /** After the proof, exchange names with the target. */
  swap?: boolean;
  /** With swap: end the sessions connected to either database instead of refusing. */
  terminate?: boolean;
  /** Restore owners and privileges (pg_restore without --no-owner --no-privileges). */
  keepOwners: boolean;
  /** The database to connect to for creating and renaming; default postgres, else template1. */
  maintenanceDb?: string;
  progress: Progress;
}

/** A session connected to a database lifeboat must rename. */
export interface Session {
  pid: number;
  database: string;
  user: string | null;
  application: string | null;
  client: string | null;
}

export interface RestoreResult {
  backupId: string;
  /** The database holding the restored data, under its current name (the target's after a swap). */
  database: string;
  /** The name it was restored under. */
  restoredAs: string;
  /** The destination whose copy was restored. */
  restoredFrom: string;
  /** A connection string for `database`, without the password. */
  connection: string;
  proved: true;
  compared: { tables: number; sequences: number; largeObjects: number; schema: boolean };
  restoreMs: number;
  durationMs: number;
  /** Half-restored databases of crashed restores that were dropped first. */
  cleaned: string[];
  /** Database-level properties carried over from the target (owner, privileges, settings). */
  properties: string[];
  warnings: string[];
  swapped?: { replacedAs: string; terminated: Session[] };
}

interface Marker {
  backup: string;
  maintenanceDb: string;
  host: string;
  pid: number;
  at: string;
}

/** Restore, prove, and optionally swap. Never prints; every refusal is a typed error. */
export async function restoreBackup(opts: RestoreOptions): Promise<RestoreResult> {
  const { config, target, progress } = opts;
  const started = Date.now();
  const warnings: string[] = [];
  const warn = (message: string): void => {
    warnings.push(message);
    progress.warn(message);
  };
  if (opts.as !== undefined) checkName(opts.as, '--as');
  const copies = await findCopies(config.destinations, opts.backupId);

  return withMaintenanceConnection(target, opts.maintenanceDb, async (admin, maintenanceDb) => {
    const cleaned = await dropAbandonedRestores(admin);
    const name = opts.as ?? suffixedName(target.database, `__restored_${timestamp(new Date())}`);
    if (await databaseExists(admin, name)) throw nameTaken(name);
    const source = await readDatabase(admin, target.database);
    if (opts.swap && !source) {
      throw new BadInputError(
        `There is no database "${target.database}" to swap with; restore under its name with --as ${JSON.stringify(target.database)} instead.`,
      );
    }

    const { copy, manifest } = await intactCopy(copies, config.signingKey, progress, warn);
    if (opts.swap) {
      await checkSameDatabase(admin, manifest, target);
      if (!opts.terminate) {
        const sessions = await settledSessions(admin, [target.database]);
        if (sessions.length > 0) throw sessionsRefusal(sessions, undefined);
      }
    }
    const pgRestore = await restoreTool(admin, manifest, config.pgBinDir);
    const like = manifest.target.database === target.database ? source : undefined;
    if (!like) {
      warn(
        `Backup ${manifest.id} is of ${manifest.target.described}, not of ${describeTarget(target)}; it is restored beside it as ${name}, with this server's defaults for the database's own settings.`,
      );
    }

    const proved = await withRestoringDatabase(admin, maintenanceDb, name, manifest, (keeper) =>
      fillAndProve({ admin, keeper, name, manifest, copy, pgRestore, like, opts, warn }),
    );
    const result: RestoreResult = {
      backupId: manifest.id,
      database: name,
      restoredAs: name,
      restoredFrom: copy.destination,
      connection: connectionString(withDatabase(target, name)),
      proved: true,
      compared: {
        tables: manifest.fingerprints.tables.length,
        sequences: manifest.fingerprints.sequences.length,
        largeObjects: manifest.fingerprints.largeObjects.count,
        schema: true,
      },
      restoreMs: proved.restoreMs,
      durationMs: 0,
      cleaned,
      properties: proved.properties,
      warnings,
    };
    if (opts.swap) {
      const replacedAs = suffixedName(target.database, `__replaced_${timestamp(new Date())}`);
      const terminated = await progress.task(`Swap ${name} in as ${target.database}`, () =>
        swapNames(admin, {
          target: target.database,
          restored: name,
          replacedAs,
          terminate: opts.terminate ?? false,
        }),
      );
      result.database = target.database;
      result.connection = connectionString(target);
      result.swapped = { replacedAs, terminated };
    }
    result.durationMs = Date.now() - started;
    return result;
  });
}

/**
 * Create the new database, mark it, pg_restore into it, fingerprint it and
 * compare with the manifest. A difference keeps it for inspection under an
 * `unproven` marker; a match replaces the marker with the plain comment.
 */
async function fillAndProve(p: {
  admin: pg.ClientBase;
  keeper: Keeper;
  name: string;
  manifest: Manifest;
  copy: StoredCopy;
  pgRestore: string;
  /** The target's own row, when the backup is of it: its locale and properties are copied. */
  like: DatabaseRow | undefined;
  opts: RestoreOptions;
  warn: (message: string) => void;
}): Promise<{ restoreMs: number; properties: string[] }> {
  const { admin, name, manifest, opts } = p;
  const into = withDatabase(opts.target, name);
  await createDatabase(admin, name, manifest.target.encoding, p.like, p.warn);
  await p.keeper.mark();
  const started = Date.now();
  await opts.progress.task(`Restore backup ${manifest.id} into new database ${name}`, (update) =>
    restoreArchive(p.pgRestore, path.join(p.copy.dir, DUMP_DIR), into, {
      jobs: opts.config.jobs,
      tables: manifest.fingerprints.tables.length,
      keepOwners: opts.keepOwners,
      onProgress: update,
    }).catch((err: unknown) => {
      throw restoreFailure(manifest.id, err, opts.keepOwners);
    }),
  );
  const restoreMs = Date.now() - started;
  await pausePoint('restore:restored');
  const found = await opts.progress.task(`Fingerprint ${name}`, (update) =>
    fingerprintDatabase(into, { onTable: (done, total) => update(`${done}/${total} tables`) }),
  );
  const differences = compareFingerprints(manifest.fingerprints, found);
  if (differences.length > 0) {
    const unproven = {
      backup: manifest.id,
      at: new Date().toISOString(),
      differences: differences.length,
    };
    await setComment(admin, name, `${UNPROVEN} ${JSON.stringify(unproven)}`);
    p.keeper.keep();
    throw new VerificationFailedError(
      `Backup ${manifest.id} restored into ${name}, but its content differs from the backup in ${differences.length} place(s); ${name} is kept for inspection and nothing was swapped.`,
      { details: differences.map(describeDifference), data: { database: name, differences } },
    );
  }
  const properties = await finishRestored(admin, name, manifest.id, {
    source: p.like,
    keepOwners: opts.keepOwners,
    warn: p.warn,
  });
  p.keeper.keep();
  return { restoreMs, properties };
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

/** `postgresql://user@host:port/db`, never with the password. */
export function connectionString(target: Target): string {
  const params = new URLSearchParams();
  let authority: string;
  if (target.host.startsWith('/')) {
    authority = '';
    params.set('host', target.host);
    params.set('port', String(target.port));
  } else {
    const host = target.host.includes(':') ? `[${target.host}]` : target.host;
    authority = `${host}:${target.port}`;
  }
  if (target.sslmode) params.set('sslmode', target.sslmode);
  const query = params.size > 0 ? `?${params.toString()}` : '';
  return `postgresql://${encodeURIComponent(target.user)}@${authority}/${encodeURIComponent(target.database)}${query}`;
}

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

function checkName(name: string, flag: string): void {
  if (name.length === 0 || name.includes('\0')) {
    throw new BadInputError(`${flag} needs a database name.`);
  }
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) {
    throw new BadInputError(
      `${flag} "${name}" is longer than PostgreSQL's ${MAX_NAME_BYTES} bytes; it would be cut short, so choose a shorter name.`,
    );
  }
}

function nameTaken(name: string): BadInputError {
  return new BadInputError(
    `A database named "${name}" already exists; a restore never overwrites anything. Choose another name with --as.`,
  );
}

// ---------------------------------------------------------------------------
// The connection that creates, marks, renames: to a third database.

async function withMaintenanceConnection<T>(
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
      if (err instanceof ConnectionError && causeCode(err) === '3D000') continue;
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

function causeCode(err: unknown): string | undefined {
  const cause = (err as { cause?: { code?: unknown } }).cause;
  return typeof cause?.code === 'string' ? cause.code : undefined;
}

function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

async function databaseExists(admin: pg.ClientBase, name: string): Promise<boolean> {
  const res = await admin.query('select 1 from pg_database where datname = $1', [name]);
  return (res.rowCount ?? 0) > 0;
}

async function setComment(admin: pg.ClientBase, name: string, comment: string): Promise<void> {
  await admin.query(`comment on database ${quoteIdent(name)} is ${quoteLiteral(comment)}`);
}

// ---------------------------------------------------------------------------
// The backup: an intact copy, a pg_restore able to read it.

async function intactCopy(
  copies: StoredCopy[],
  key: string | undefined,
  progress: Progress,
  warn: (message: string) => void,
): Promise<{ copy: StoredCopy; manifest: Manifest }> {
  const problems: string[] = [];
  // One intact copy is enough to restore; the others are read only when it is not.
  for (const copy of copies) {
    const { checks, manifest } = await checkCopies([copy], key, progress);
    const check = checks[0]!;
    if (check.intact && manifest) {
      if (problems.length > 0) {
        warn(`Skipped damaged copies of the backup: ${problems.join('; ')}`);
      }
      return { copy, manifest };
    }
    problems.push(...check.problems.map((p) => `${check.destination}: ${p}`));
  }
  throw new VerificationFailedError(
    `Backup ${copies[0]?.id ?? ''} has no intact copy, so it cannot be restored; nothing was created.`,
    { details: problems },
  );
}

async function restoreTool(
  admin: pg.ClientBase,
  manifest: Manifest,
  pgBinDir: string | undefined,
): Promise<string> {
  const res = await admin.query<{ num: string }>(
    `select current_setting('server_version_num') as num`,
  );
  const serverMajor = Math.floor(Number(res.rows[0]?.num) / 10000);
  const pgRestore = await findTool('pg_restore', serverMajor, pgBinDir);
  const dumpMajor = Number(manifest.tools.pgDump.version.split('.')[0]);
  if (pgRestore.major < dumpMajor) {
    throw new ToolError(
      `pg_restore ${pgRestore.version} cannot read an archive written by pg_dump ${manifest.tools.pgDump.version}; install client tools ${dumpMajor} or newer.`,
    );
  }
  return pgRestore.path;
}

function restoreFailure(id: string, err: unknown, keepOwners: boolean): Error {
  const message = errorMessage(err);
  const role = /role "([^"]+)" does not exist/.exec(message);
  if (role && keepOwners) {
    return new BadInputError(
      `Backup ${id} names role "${role[1]}", which does not exist on this server; create the role, or restore with --no-owner. The half-restored database was dropped.`,
      { cause: err },
    );
  }
  return new VerificationFailedError(
    `Backup ${id} does not restore: ${message}. The half-restored database was dropped.`,
    { cause: err },
  );
}

/** A swap puts the backup under the target's name: it must be a backup of that very database. */
async function checkSameDatabase(
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

// ---------------------------------------------------------------------------
// The new database while it is being filled: marked, locked, dropped on failure.

function lockKey(param: string): string {
  return `hashtextextended('${RESTORING}:' || ${param}, 0)`;
}

/**
 * Drop the databases left half-restored by restores that crashed: marked
 * `lifeboat-restoring`, with their lock free. The lock is only visible from
 * the database it was taken in, so a marker naming another maintenance
 * database is left alone. Returns their names.
 */
export async function dropAbandonedRestores(admin: pg.ClientBase): Promise<string[]> {
  const res = await admin.query<{ datname: string; comment: string; current: string }>(
    `select d.datname, shobj_description(d.oid, 'pg_database') as comment,
            current_database() as current
       from pg_database d
      where shobj_description(d.oid, 'pg_database') like $1`,
    [`${RESTORING} %`],
  );
  const dropped: string[] = [];
  for (const row of res.rows) {
    const marker = parseMarker(row.comment);
    if (!marker || marker.maintenanceDb !== row.current) continue;
    const lock = await admin.query<{ ok: boolean }>(
      `select pg_try_advisory_lock(${lockKey('$1')}) as ok`,
      [row.datname],
    );
    if (!lock.rows[0]?.ok) continue;
    try {
      // Read again under the lock: the marker must still be there.
      const again = await admin.query<{ comment: string | null }>(
        `select shobj_description(oid, 'pg_database') as comment from pg_database where datname = $1`,
        [row.datname],
      );
      if (!again.rows[0]?.comment?.startsWith(`${RESTORING} `)) continue;
      await admin.query(`drop database if exists ${quoteIdent(row.datname)} with (force)`);
      dropped.push(row.datname);
    } finally {
      await admin.query(`select pg_advisory_unlock(${lockKey('$1')})`, [row.datname]);
    }
  }
  return dropped;
}

function parseMarker(comment: string): Marker | undefined {
  if (!comment.startsWith(`${RESTORING} `)) return undefined;
  try {
    return JSON.parse(comment.slice(RESTORING.length + 1)) as Marker;
  } catch {
    return undefined;
  }
}

interface Keeper {
  /** Put the `lifeboat-restoring` marker on the new database (right after creating it). */
  mark(): Promise<void>;
  /** The database is kept even if `fn` then fails (proved, or left for inspection). */
  keep(): void;
}

/**
 * Hold the advisory lock for `name` while `fn` creates, marks, fills and
 * proves it. Unless `fn` said to keep it, a failure drops the database: it
 * never held anything but the restore's own work. A crash leaves it marked
 * with its lock free, for the next restore to drop.
 */
async function withRestoringDatabase<T>(
  admin: pg.ClientBase,
  maintenanceDb: string,
  name: string,
  manifest: Manifest,
  fn: (keeper: Keeper) => Promise<T>,
): Promise<T> {
  await admin.query(`select pg_advisory_lock(${lockKey('$1')})`, [name]);
  let created = false;
  let kept = false;
  const keeper: Keeper = {
    async mark() {
      created = true;
      const marker: Marker = {
        backup: manifest.id,
        maintenanceDb,
        host: hostname(),
        pid: process.pid,
        at: new Date().toISOString(),
      };
      await setComment(admin, name, `${RESTORING} ${JSON.stringify(marker)}`);
    },
    keep() {
      kept = true;
    },
  };
  try {
    return await fn(keeper);
  } finally {
    if (created && !kept) {
      await admin
        .query(`drop database if exists ${quoteIdent(name)} with (force)`)
        .catch(() => undefined);
    }
    await admin.query(`select pg_advisory_unlock(${lockKey('$1')})`, [name]).catch(() => undefined);
  }
}

/**
 * From template0, as pg_restore expects, in the backup's encoding; with the
 * target's collation and character classes when the backup is of the target,
 * so that a swapped-in copy sorts as the original did. Falls back to the
 * server's defaults, then to the C locale (which fits every encoding).
 */
async function createDatabase(
  admin: pg.ClientBase,
  name: string,
  encoding: string,
  like: DatabaseRow | undefined,
  warn: (message: string) => void,
): Promise<void> {
  const base = `create database ${quoteIdent(name)} template template0 encoding ${quoteLiteral(encoding)}`;
  const attempts = [base, `${base} locale 'C'`];
  const locale = like ? localeOptions(like) : '';
  if (locale) attempts.unshift(`${base} ${locale}`);
  for (const [i, sql] of attempts.entries()) {
    try {
      await admin.query(sql);
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
      const code = sqlState(err);
      if (code === '42P04') throw nameTaken(name);
      if (code === '42501') {
        throw new BadInputError(
          `The role may not create databases (${errorMessage(err)}); restore as a role with CREATEDB.`,
          { cause: err },
        );
      }
      if (i === attempts.length - 1) throw err;
    }
  }
}

function localeOptions(like: DatabaseRow): string {
  const l = like.locale;
  if (!l.collate || !l.ctype) return '';
  const opts = [`lc_collate ${quoteLiteral(l.collate)}`, `lc_ctype ${quoteLiteral(l.ctype)}`];
  if (l.provider === 'i' && l.icu) {
    opts.push('locale_provider icu', `icu_locale ${quoteLiteral(l.icu)}`);
    if (l.icuRules) opts.push(`icu_rules ${quoteLiteral(l.icuRules)}`);
  } else if (l.provider === 'b' && l.icu) {
    opts.push('locale_provider builtin', `builtin_locale ${quoteLiteral(l.icu)}`);
  } else if (l.provider === 'c') {
    opts.push('locale_provider libc');
  }
  return opts.join(' ');
}

// ---------------------------------------------------------------------------
// After the proof: the plain comment, and what the backup cannot carry.

interface DatabaseRow {
  oid: number;
  owner: string;
  connlimit: number;
  hasAcl: boolean;
  grants: { grantee: string | null; privilege: string; grantable: boolean }[];
  settings: { role: string | null; config: string[] | null }[];
  /** What the server version has of datcollate, datctype, datlocprovider, daticulocale/datlocale. */
  locale: {
    collate?: string;
    ctype?: string;
    provider?: string;
    icu?: string;
    icuRules?: string;
  };
}

async function readDatabase(admin: pg.ClientBase, name: string): Promise<DatabaseRow | undefined> {
  const res = await admin.query<DatabaseRow>(
    `select d.oid::int as oid, pg_get_userbyid(d.datdba)::text as owner,
            d.datconnlimit as connlimit, d.datacl is not null as "hasAcl",
            (select coalesce(json_agg(json_build_object(
                      'grantee', case when a.grantee = 0 then null
                                      else pg_get_userbyid(a.grantee)::text end,
                      'privilege', a.privilege_type, 'grantable', a.is_grantable)), '[]')
               from aclexplode(d.datacl) a where a.grantee <> d.datdba) as grants,
            (select coalesce(json_agg(json_build_object(
                      'role', case when s.setrole = 0 then null
                                   else pg_get_userbyid(s.setrole)::text end,
                      'config', s.setconfig)), '[]')
               from pg_db_role_setting s where s.setdatabase = d.oid) as settings,
            json_strip_nulls(json_build_object(
              'collate', j->>'datcollate', 'ctype', j->>'datctype',
              'provider', j->>'datlocprovider',
              'icu', coalesce(j->>'daticulocale', j->>'datlocale'),
              'icuRules', j->>'daticurules')) as locale
       from pg_database d, lateral (select to_jsonb(d) as j) x
      where d.datname = $1`,
    [name],
  );
  return res.rows[0];
}

/**
 * A pg_dump without --create carries no database-level properties: owner,
 * privileges on the database, `ALTER DATABASE ... SET`. When the backup is of
 * the target, they are copied from it, each on its own (one that fails is a
 * warning), in the same transaction that replaces the marker with the plain
 * comment that makes the database the user's.
 */
async function finishRestored(
  admin: pg.ClientBase,
  name: string,
  backupId: string,
  opts: { source: DatabaseRow | undefined; keepOwners: boolean; warn: (m: string) => void },
): Promise<string[]> {
  const statements = opts.source ? propertyStatements(opts.source, name, opts.keepOwners) : [];
  const copied: string[] = [];
  await admin.query('begin');
  try {
    await setComment(
      admin,
      name,
      `lifeboat restored backup ${backupId} at ${new Date().toISOString()}`,
    );
    for (const s of statements) {
      await admin.query('savepoint property');
      try {
        await admin.query(s.sql);
        await admin.query('release savepoint property');
        copied.push(s.what);
      } catch (err) {
        await admin.query('rollback to savepoint property');
        opts.warn(`Could not copy ${s.what} from the target: ${errorMessage(err)}`);
      }
    }
    await admin.query('commit');
  } catch (err) {
    await admin.query('rollback').catch(() => undefined);
    throw err;
  }
  return copied;
}

function propertyStatements(
  source: DatabaseRow,
  name: string,
  keepOwners: boolean,
): { what: string; sql: string }[] {
  const db = quoteIdent(name);
  const out: { what: string; sql: string }[] = [];
  if (keepOwners) {
    out.push({
      what: `owner ${source.owner}`,
      sql: `alter database ${db} owner to ${quoteIdent(source.owner)}`,
    });
    if (source.hasAcl) {
      out.push({ what: 'privileges of public', sql: `revoke all on database ${db} from public` });
      for (const g of source.grants) {
        const who = g.grantee === null ? 'public' : quoteIdent(g.grantee);
        out.push({
          what: `${g.privilege} privilege of ${g.grantee ?? 'public'}`,
          sql: `grant ${g.privilege.toLowerCase()} on database ${db} to ${who}${g.grantable ? ' with grant option' : ''}`,
        });
      }
    }
  }
  if (source.connlimit >= 0) {
    out.push({
      what: `connection limit ${source.connlimit}`,
      sql: `alter database ${db} connection limit ${source.connlimit}`,
    });
  }
  for (const s of source.settings) {
    const scope =
      s.role === null
        ? `alter database ${db}`
        : `alter role ${quoteIdent(s.role)} in database ${db}`;
    for (const entry of s.config ?? []) {
      const at = entry.indexOf('=');
      if (at <= 0) continue;
      const [setting, value] = [entry.slice(0, at), entry.slice(at + 1)];
      out.push({
        what: `setting ${setting}${s.role === null ? '' : ` of role ${s.role}`}`,
        sql: `${scope} set ${quoteIdent(setting)} to ${settingValue(setting, value)}`,
      });
    }
  }
  return out;
}

/** Settings whose stored value is a list of quoted items (as pg_dump's variable_is_guc_list_quote). */
const LIST_SETTINGS = new Set([
  'local_preload_libraries',
  'search_path',
  'session_preload_libraries',
  'shared_preload_libraries',
  'temp_tablespaces',
  'unix_socket_directories',
]);

function settingValue(setting: string, value: string): string {
  if (!LIST_SETTINGS.has(setting.toLowerCase())) return quoteLiteral(value);
  const items = splitSettingList(value);
  return items.length > 0 ? items.map(quoteLiteral).join(', ') : "''";
}

/** `"$user", public` → [`$user`, `public`], as PostgreSQL's SplitGUCList reads it. */
export function splitSettingList(text: string): string[] {
  const items: string[] = [];
  let i = 0;
  const skipSpace = (): void => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  skipSpace();
  while (i < text.length) {
    let item = '';
    if (text[i] === '"') {
      for (i++; i < text.length; i++) {
        if (text[i] === '"') {
          if (text[i + 1] !== '"') {
            i++;
            break;
          }
          i++;
        }
        item += text[i];
      }
    } else {
      while (i < text.length && text[i] !== ',') item += text[i++];
      item = item.trim();
    }
    items.push(item);
    skipSpace();
    if (text[i] === ',') i++;
    skipSpace();
  }
  return items;
}

// ---------------------------------------------------------------------------
// The swap: both renames in one transaction, from a third database.

async function listSessions(admin: pg.ClientBase, databases: string[]): Promise<Session[]> {
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
async function settledSessions(admin: pg.ClientBase, databases: string[]): Promise<Session[]> {
  const deadline = Date.now() + SETTLE_MS;
  for (;;) {
    const sessions = await listSessions(admin, databases);
    const leaving = sessions.some((s) => s.application?.startsWith('lifeboat'));
    if (!leaving || Date.now() > deadline) return sessions;
    await sleep(50);
  }
}

async function waitGone(admin: pg.ClientBase, pids: number[]): Promise<void> {
  const deadline = Date.now() + SETTLE_MS;
  while (Date.now() < deadline) {
    const res = await admin.query('select 1 from pg_stat_activity where pid = any($1::int[])', [
      pids,
    ]);
    if ((res.rowCount ?? 0) === 0) return;
    await sleep(50);
  }
}

async function preparedTransactions(admin: pg.ClientBase, databases: string[]): Promise<string[]> {
  const res = await admin.query<{ gid: string; database: string }>(
    `select gid, database from pg_prepared_xacts where database = any($1::text[])`,
    [databases],
  );
  return res.rows.map((r) => `prepared transaction "${r.gid}" in ${r.database}`);
}

export function describeSession(s: Session): string {
  const parts = [`pid ${s.pid}`, `user ${s.user ?? '?'}`];
  if (s.application) parts.push(`application "${s.application}"`);
  if (s.client) parts.push(`from ${s.client}`);
  return `${s.database}: ${parts.join(', ')}`;
}

function sessionsRefusal(sessions: Session[], restored: string | undefined): BadInputError {
  const kept = restored
    ? ` The proved database ${restored} is kept under its name; nothing was renamed.`
    : ' Nothing was created or renamed.';
  return new BadInputError(
    `Cannot swap: ${sessions.length} session(s) are connected, and a database can only be renamed while no one is connected to it. Close them, or run again with --terminate to end them.${kept}`,
    { details: sessions.map(describeSession), data: { sessions, restored } },
  );
}

async function terminateSessions(admin: pg.ClientBase, sessions: Session[]): Promise<Session[]> {
  const res = await admin.query<{ pid: number; ok: boolean | null }>(
    `select pid, pg_terminate_backend(pid) as ok from unnest($1::int[]) as pid`,
    [sessions.map((s) => s.pid)],
  );
  const ended = new Set(res.rows.filter((r) => r.ok).map((r) => r.pid));
  return sessions.filter((s) => ended.has(s.pid));
}

/**
 * Rename `target` to `replacedAs` and `restored` to `target` in one
 * transaction, so the target's name never names zero or two databases (new
 * connections to either wait for the commit). Returns the sessions terminated.
 */
async function swapNames(
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
      const ended = await terminateSessions(admin, sessions);
      terminated.push(...ended);
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
