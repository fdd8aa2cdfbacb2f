import type pg from 'pg';
import { connect, sqlState } from '../db.js';
import { BadInputError, ConnectionError, errorMessage } from '../errors.js';
import { withDatabase, type Target } from '../target.js';

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
