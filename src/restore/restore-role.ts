import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type pg from 'pg';
import { quoteIdent, quoteLiteral } from '../db.js';
import { lockKey } from '../marked-database.js';
import { registerSecret } from '../secrets.js';

/**
 * Who restores a scratch copy (verify, rehearse). pg_restore --no-owner makes
 * the restoring role own every table, so code a table owner put in the dump
 * (an index expression, a check constraint, a trigger) runs with that role's
 * rights. When lifeboat connects as a superuser (or a role that may create
 * roles), it restores as a role of its own instead: LOGIN and nothing else,
 * owning only the scratch database, with a random password, dropped
 * afterwards. A configured `restoreRole` is used as it is. Otherwise the
 * connecting role restores: it has no rights to hand on beyond its own.
 *
 * Like scratch databases, the roles lifeboat creates carry a marker comment
 * and an advisory lock held by their owner, so a killed run's role is dropped
 * by the next one, and a role that merely has a similar name never is.
 */
const MARKER = 'lifeboat-restore-role';
const PREFIX = 'lifeboat_restore_';

export interface RestoreRole {
  name: string;
  /** Its password, when lifeboat knows one (its own role's; LIFEBOAT_RESTORE_PASSWORD). */
  password?: string;
}

/** What `doctor` says and verify does: who restores scratch copies. */
export type RestoreRoleChoice =
  { kind: 'configured'; name: string } | { kind: 'own' } | { kind: 'connecting'; name: string };

export async function chooseRestoreRole(
  admin: pg.ClientBase,
  configured: string | undefined,
): Promise<RestoreRoleChoice> {
  if (configured) return { kind: 'configured', name: configured };
  const res = await admin.query<{ name: string; may: boolean }>(
    `select current_user as name, rolsuper or rolcreaterole as may
       from pg_catalog.pg_roles where rolname = current_user`,
  );
  const row = res.rows[0]!;
  return row.may ? { kind: 'own' } : { kind: 'connecting', name: row.name };
}

/** doctor's line: who restores scratch copies, and what that means. */
export async function restoreRoleCheck(
  admin: pg.ClientBase,
  configured: string | undefined,
): Promise<[boolean, string]> {
  const choice = await chooseRestoreRole(admin, configured);
  if (choice.kind === 'own')
    return [
      true,
      `a role created for each scratch restore (${PREFIX}*: LOGIN, no other rights, dropped afterwards); code in a backup runs with no rights`,
    ];
  if (choice.kind === 'connecting')
    return [
      true,
      `${choice.name} restores scratch copies itself (it may not create roles): code a table owner put in a backup runs with its rights during verification`,
    ];
  const res = await admin.query<{ rolsuper: boolean; rolcanlogin: boolean }>(
    'select rolsuper, rolcanlogin from pg_catalog.pg_roles where rolname = $1',
    [choice.name],
  );
  const role = res.rows[0];
  if (!role) return [false, `restoreRole ${choice.name} does not exist on this server`];
  if (!role.rolcanlogin) return [false, `restoreRole ${choice.name} may not log in (LOGIN)`];
  return [
    true,
    `restoreRole ${choice.name} restores scratch copies${role.rolsuper ? ': it is a superuser, so code a table owner put in a backup runs with a superuser’s rights during verification' : ''}`,
  ];
}

/**
 * Run `fn` with the role that restores into `database` (the scratch
 * database, not yet created), or undefined when the connecting role does:
 * lifeboat's own role is created first and dropped after `fn`, once the
 * database is gone.
 */
export async function withRestoreRole<T>(
  admin: pg.ClientBase,
  opts: { configured?: string; password?: string; database: string; about: Record<string, string> },
  fn: (role: RestoreRole | undefined) => Promise<T>,
): Promise<T> {
  const choice = await chooseRestoreRole(admin, opts.configured);
  if (choice.kind === 'configured')
    return fn({ name: choice.name, ...(opts.password ? { password: opts.password } : {}) });
  if (choice.kind === 'connecting') return fn(undefined);

  const name = `${PREFIX}${opts.database.replace(/^lifeboat_/, '')}`.slice(0, 63);
  const password = randomBytes(24).toString('hex');
  registerSecret(password);
  const key = lockKey(MARKER);
  await admin.query(`select pg_advisory_lock(${key})`, [name]);
  try {
    const marker = {
      ...opts.about,
      database: opts.database,
      maintenanceDb: await currentDatabase(admin),
      host: hostname(),
      pid: process.pid,
      at: new Date().toISOString(),
    };
    // One transaction: a role without its marker would never be cleaned up.
    await admin.query('begin');
    try {
      // The password goes to the server as a SCRAM verifier, never as text a log could keep.
      await admin.query(
        `create role ${quoteIdent(name)} login nosuperuser nocreatedb nocreaterole noreplication nobypassrls
           password ${quoteLiteral(scramVerifier(password))}`,
      );
      await admin.query(
        `comment on role ${quoteIdent(name)} is ${quoteLiteral(`${MARKER} ${JSON.stringify(marker)}`)}`,
      );
      // A role that may create roles but is no superuser must be a member to give it a database.
      await admin.query(`grant ${quoteIdent(name)} to current_user`);
      await admin.query('commit');
    } catch (err) {
      await admin.query('rollback').catch(() => undefined);
      throw err;
    }
    let failed = true;
    try {
      const result = await fn({ name, password });
      failed = false;
      return result;
    } finally {
      const dropping = dropRole(admin, name);
      // After a failure, its error is the one to report; a leftover stays marked for the next cleanup.
      await (failed ? dropping.catch(() => undefined) : dropping);
    }
  } finally {
    await admin.query(`select pg_advisory_unlock(${key})`, [name]).catch(() => undefined);
  }
}

/**
 * Drop the roles lifeboat created for runs that are gone (marker present,
 * lock free, from this maintenance database). Their scratch databases go
 * first (dropAbandonedScratch). Returns their names.
 */
export async function dropAbandonedRestoreRoles(admin: pg.ClientBase): Promise<string[]> {
  const res = await admin.query<{ rolname: string; comment: string }>(
    `select rolname, shobj_description(oid, 'pg_authid') as comment
       from pg_catalog.pg_roles
      where starts_with(rolname, $1) and shobj_description(oid, 'pg_authid') like $2`,
    [PREFIX, `${MARKER} %`],
  );
  const here = await currentDatabase(admin);
  const key = lockKey(MARKER);
  const dropped: string[] = [];
  for (const row of res.rows) {
    if (markerOf(row.comment)?.maintenanceDb !== here) continue;
    const lock = await admin.query<{ ok: boolean }>(`select pg_try_advisory_lock(${key}) as ok`, [
      row.rolname,
    ]);
    if (!lock.rows[0]?.ok) continue;
    try {
      await dropRole(admin, row.rolname);
      dropped.push(row.rolname);
    } catch {
      // It still owns something (a scratch database another maintenance database guards): later.
    } finally {
      await admin.query(`select pg_advisory_unlock(${key})`, [row.rolname]);
    }
  }
  return dropped;
}

function markerOf(comment: string): { maintenanceDb?: unknown } | undefined {
  try {
    return JSON.parse(comment.slice(MARKER.length + 1)) as { maintenanceDb?: unknown };
  } catch {
    return undefined;
  }
}

async function dropRole(admin: pg.ClientBase, name: string): Promise<void> {
  await admin.query(`drop role if exists ${quoteIdent(name)}`);
}

async function currentDatabase(admin: pg.ClientBase): Promise<string> {
  const res = await admin.query<{ db: string }>('select current_database() as db');
  return res.rows[0]!.db;
}

/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for a password (RFC 5802,
 * RFC 7677): the server accepts it as the role's password as it is.
 */
export function scramVerifier(password: string, salt = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const hmac = (key: Buffer, text: string): Buffer =>
    createHmac('sha256', key).update(text).digest();
  const storedKey = createHash('sha256').update(hmac(salted, 'Client Key')).digest();
  const serverKey = hmac(salted, 'Server Key');
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}
