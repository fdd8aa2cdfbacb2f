import type pg from 'pg';
import { databaseToken } from '../database-ledger.js';
import { BadInputError } from '../errors.js';

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
