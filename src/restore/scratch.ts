import type pg from 'pg';
import type { Config } from '../config.js';
import { databaseLedger } from '../database-ledger.js';
import { connect, quoteIdent } from '../db.js';
import { dropAbandoned, withMarkedDatabase, type LedgerScope } from '../marked-database.js';
import type { Manifest } from '../repository/manifest.js';
import { dropAbandonedRestoreRoles, withRestoreRole } from './restore-role.js';
import { serverOf, withDatabase, type Target } from '../target.js';
import { createDatabase, stampedName } from './databases.js';
import { restoreTool, type RestoreCopy } from './prove.js';

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
  /** The pg_restore chosen for the backup, before the database was created. */
  pgRestore: string;
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
 * Create a marked scratch database on `server` for a backup, in its encoding,
 * run `fn`, and drop it, even when `fn` fails. A crash leaves it marked and
 * unlocked for the next cleanup. The pg_restore is chosen first: a backup it
 * cannot read is refused before anything is made.
 */
export async function withScratchDatabase<T>(
  server: Target,
  purpose: string,
  manifest: Manifest,
  fn: (scratch: ScratchDatabase) => Promise<T>,
  config: Pick<Config, 'destinations' | 'pgBinDir' | 'restoreRole' | 'restorePassword'>,
): Promise<T> {
  const admin = await connect(server, 'lifeboat scratch');
  try {
    const pgRestore = await restoreTool(admin, manifest, config.pgBinDir);
    const scope = { ledger: databaseLedger(config), server: serverOf(server) };
    await dropAbandonedScratch(admin, scope);
    const { name, token } = stampedName(`lifeboat_${purpose}`, '', new Date());
    const marked = {
      kind: MARKER,
      name,
      token,
      maintenanceDb: server.database,
      ...scope,
      about: { purpose, backup: manifest.id },
    };
    const role = {
      ...(config.restoreRole ? { configured: config.restoreRole } : {}),
      ...(config.restorePassword ? { password: config.restorePassword } : {}),
      database: name,
      about: marked.about,
    };
    // The role outlives the database: it can only be dropped once the database it owns is gone.
    return await withRestoreRole(admin, role, (restoreAs) =>
      withMarkedDatabase(admin, marked, async (db) => {
        await db.create(() =>
          createDatabase(admin, name, {
            encoding: manifest.target.encoding,
            what: 'A scratch database',
            warn: () => undefined,
          }),
        );
        const target = withDatabase(server, name);
        if (!restoreAs) return fn({ name, target, restorer: target, pgRestore });
        await admin.query(
          `alter database ${quoteIdent(name)} owner to ${quoteIdent(restoreAs.name)}`,
        );
        return fn({
          name,
          target,
          restorer: { ...target, user: restoreAs.name, password: restoreAs.password },
          pgRestore,
        });
      }),
    );
  } finally {
    await admin.end().catch(() => undefined);
  }
}

/** How a copy is restored into a scratch database: as its restoring role, without owners or privileges. */
export function intoScratch(
  scratch: ScratchDatabase,
): Pick<RestoreCopy, 'into' | 'own' | 'keepOwners' | 'pgRestore' | 'disposable'> {
  return {
    disposable: true,
    into: scratch.restorer,
    own: scratch.target,
    keepOwners: false,
    pgRestore: scratch.pgRestore,
  };
}
