import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type pg from 'pg';
import { connect, quoteIdent, quoteLiteral } from './db.js';
import { withDatabase, type Target } from './target.js';

/**
 * Scratch databases are where backups are proved. Each carries a marker in
 * its comment and is guarded by an advisory lock held by the process using
 * it, so a later run can tell a crashed verify's leftovers (marked, lock free)
 * from a live one (lock held) and from a user's database that merely looks
 * similar (no marker): only the first is dropped.
 */
const MARKER = 'lifeboat-scratch';

interface Marker {
  purpose: string;
  backup: string;
  maintenanceDb: string;
  host: string;
  pid: number;
  at: string;
}

export interface ScratchDatabase {
  name: string;
  target: Target;
}

function lockKeySql(param: string): string {
  return `hashtextextended('${MARKER}:' || ${param}, 0)`;
}

/** Drop scratch databases left by lifeboat processes that are gone. Returns their names. */
export async function dropAbandonedScratch(admin: pg.ClientBase): Promise<string[]> {
  const res = await admin.query<{ datname: string; comment: string }>(
    `select d.datname, shobj_description(d.oid, 'pg_database') as comment
       from pg_database d
      where shobj_description(d.oid, 'pg_database') like $1`,
    [`${MARKER} %`],
  );
  const dropped: string[] = [];
  for (const row of res.rows) {
    const marker = parseMarker(row.comment);
    // Liveness is only visible from the database the owner locked in.
    if (!marker || marker.maintenanceDb !== (await currentDb(admin))) continue;
    const lock = await admin.query<{ ok: boolean }>(
      `select pg_try_advisory_lock(${lockKeySql('$1')}) as ok`,
      [row.datname],
    );
    if (!lock.rows[0]?.ok) continue;
    try {
      await admin.query(`drop database if exists ${quoteIdent(row.datname)} with (force)`);
      dropped.push(row.datname);
    } finally {
      await admin.query(`select pg_advisory_unlock(${lockKeySql('$1')})`, [row.datname]);
    }
  }
  return dropped;
}

function parseMarker(comment: string): Marker | undefined {
  if (!comment.startsWith(`${MARKER} `)) return undefined;
  try {
    return JSON.parse(comment.slice(MARKER.length + 1)) as Marker;
  } catch {
    return undefined;
  }
}

async function currentDb(client: pg.ClientBase): Promise<string> {
  const res = await client.query<{ db: string }>('select current_database() as db');
  return res.rows[0]!.db;
}

/**
 * Create a marked scratch database on `server`, run `fn`, and drop it, even
 * when `fn` fails. A crash leaves it marked and unlocked for the next cleanup.
 */
export async function withScratchDatabase<T>(
  server: Target,
  purpose: string,
  backupId: string,
  fn: (scratch: ScratchDatabase) => Promise<T>,
  options: { encoding?: string } = {},
): Promise<T> {
  const admin = await connect(server, 'lifeboat scratch');
  try {
    await dropAbandonedScratch(admin);
    const stamp = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
    const name = `lifeboat_${purpose}_${stamp}_${randomBytes(3).toString('hex')}`;
    await admin.query(`select pg_advisory_lock(${lockKeySql('$1')})`, [name]);
    const marker: Marker = {
      purpose,
      backup: backupId,
      maintenanceDb: server.database,
      host: hostname(),
      pid: process.pid,
      at: new Date().toISOString(),
    };
    await createDatabase(admin, name, options.encoding);
    try {
      await admin.query(
        `comment on database ${quoteIdent(name)} is ${quoteLiteral(`${MARKER} ${JSON.stringify(marker)}`)}`,
      );
      return await fn({ name, target: withDatabase(server, name) });
    } finally {
      await admin.query(`drop database if exists ${quoteIdent(name)} with (force)`);
      await admin.query(`select pg_advisory_unlock(${lockKeySql('$1')})`, [name]);
    }
  } finally {
    await admin.end().catch(() => undefined);
  }
}

/** From template0, as pg_restore expects; in the source's encoding when the server allows it. */
async function createDatabase(
  admin: pg.ClientBase,
  name: string,
  encoding?: string,
): Promise<void> {
  const base = `create database ${quoteIdent(name)} template template0`;
  if (!encoding) return void (await admin.query(base));
  try {
    await admin.query(`${base} encoding ${quoteLiteral(encoding)}`);
  } catch {
    // The cluster's locale may not fit that encoding; the C locale fits every one.
    await admin.query(`${base} encoding ${quoteLiteral(encoding)} locale 'C'`);
  }
}
