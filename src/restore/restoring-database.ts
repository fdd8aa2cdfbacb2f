import type pg from 'pg';
import { carriesToken } from '../database-ledger.js';
import {
  commentOnDatabase,
  dropAbandoned,
  withMarkedDatabase,
  type LedgerScope,
  type MarkedDatabase,
} from '../marked-database.js';
import { stampedName, suffixedName } from './names.js';

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
  return `lifeboat restored backup ${backupId} at ${new Date().toISOString()}`;
}
