import type pg from 'pg';
import { databaseToken, type DatabaseLedger } from './database-ledger.js';
import { connect, quoteIdent, quoteLiteral } from './db.js';
import { dropAbandoned, withMarkedDatabase, type LedgerScope } from './marked-database.js';
import { restoreCopy } from './restore-copy.js';
import { dropAbandonedRestoreRoles, withRestoreRole } from './restore-role.js';
import { createdbGap, privilegeError } from './privileges.js';
import { sqlState } from './restore/sql-state.js';
import { serverOf, withDatabase, type Target } from './target.js';

/**
 * Scratch databases are where backups are proved. Each is a marked database
 * (src/marked-database.ts): a crashed verify's leftovers are dropped by the
 * next one, a live one's never are, nor a user's database that merely looks
 * similar.
 */
const MARKER = 'lifeboat-scratch';

export interface ScratchDatabase {
  name: string;
  /** lifeboat's own connection to it: fingerprints, a rehearsal's steps. */
  target: Target;
  /** The role that restores into it, owning it and nothing else (see restore-role.ts). */
  restorer: Target;
}

/** Drop scratch databases left by lifeboat processes that are gone, then their roles. Returns their names. */
export async function dropAbandonedScratch(
  admin: pg.ClientBase,
  scope: LedgerScope,
): Promise<string[]> {
  const databases = await dropAbandoned(admin, MARKER, scope);
  return [...databases, ...(await dropAbandonedRestoreRoles(admin))];
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
  options: {
    /** Where the database is recorded before it is created (the repository's ledger). */
    ledger: DatabaseLedger;
    encoding?: string;
    restoreRole?: string;
    restorePassword?: string;
  },
): Promise<T> {
  const admin = await connect(server, 'lifeboat scratch');
  try {
    const scope = { ledger: options.ledger, server: serverOf(server) };
    await dropAbandonedScratch(admin, scope);
    const stamp = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
    const token = databaseToken();
    const name = `lifeboat_${purpose}_${stamp}_${token}`;
    const marked = {
      kind: MARKER,
      name,
      token,
      maintenanceDb: server.database,
      ...scope,
      about: { purpose, backup: backupId },
    };
    const role = {
      ...(options.restoreRole ? { configured: options.restoreRole } : {}),
      ...(options.restorePassword ? { password: options.restorePassword } : {}),
      database: name,
      about: marked.about,
    };
    // The role outlives the database: it can only be dropped once the database it owns is gone.
    return await withRestoreRole(admin, role, (restoreAs) =>
      withMarkedDatabase(admin, marked, async (db) => {
        await db.create(() =>
          createDatabase(admin, name, options.encoding).catch((err: unknown) => {
            // Not a verdict on the backup: the role may not create databases here.
            if (sqlState(err) === '42501') {
              throw privilegeError([createdbGap(server.user)], 'A scratch database');
            }
            throw err;
          }),
        );
        const target = withDatabase(server, name);
        if (!restoreAs) return fn({ name, target, restorer: target });
        await admin.query(
          `alter database ${quoteIdent(name)} owner to ${quoteIdent(restoreAs.name)}`,
        );
        return fn({
          name,
          target,
          restorer: { ...target, user: restoreAs.name, password: restoreAs.password },
        });
      }),
    );
  } finally {
    await admin.end().catch(() => undefined);
  }
}

/** pg_restore a copy into a scratch database: as its restoring role, without owners or privileges. */
export function restoreIntoScratch(
  scratch: ScratchDatabase,
  p: Omit<Parameters<typeof restoreCopy>[0], 'into' | 'own' | 'keepOwners'>,
): Promise<void> {
  return restoreCopy({ ...p, into: scratch.restorer, own: scratch.target, keepOwners: false });
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
