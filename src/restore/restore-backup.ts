import { findCopies } from '../repository/catalog.js';
import { BadInputError, InterruptedError, VerificationFailedError } from '../errors.js';
import { databaseLedger, databaseToken } from '../database-ledger.js';
import { connectionString, describeTarget, serverOf, withDatabase } from '../target.js';
import { readDatabase } from './database-properties.js';
import { fillAndProve } from './fill-and-prove.js';
import { checkCopies, chooseCopies, copyProblems } from './copies.js';
import type { RestoreOptions } from './restore-options.js';
import { restoreTool } from './prove.js';
import {
  checkName,
  databaseExists,
  dropAbandonedRestores,
  nameTaken,
  restoredName,
  suffixedName,
  timestamp,
  withMaintenanceConnection,
  withRestoringDatabase,
} from './databases.js';
import { sessionsRefusal, settledSessions, type Session } from './sessions.js';
import { checkSameDatabase, swapNames } from './swap.js';

/**
 * `lifeboat restore`: a backup restored into a NEW database beside the target
 * (never over anything), proved by fingerprints against its manifest, and,
 * when asked, swapped in under the target's name in one transaction, keeping
 * the database it replaces (DESIGN.md promise 5). While it is being filled,
 * the new database is marked as lifeboat's own (./databases.ts).
 */
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

/** Restore, prove, and optionally swap. Never prints; every refusal is a typed error. */
export async function restoreBackup(opts: RestoreOptions): Promise<RestoreResult> {
  try {
    return await restoreBeside(opts);
  } catch (err) {
    if (!opts.signal?.aborted || err instanceof InterruptedError) throw err;
    throw new InterruptedError(
      `Interrupted: the restore of backup ${opts.backupId} was stopped; the half-restored database was dropped and ${opts.target.database} was not touched.`,
      { cause: err },
    );
  }
}

async function restoreBeside(opts: RestoreOptions): Promise<RestoreResult> {
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
    const scope = { ledger: databaseLedger(config), server: serverOf(target), maintenanceDb };
    const cleaned = await dropAbandonedRestores(admin, scope);
    const named = opts.as
      ? { name: opts.as, token: databaseToken() }
      : restoredName(target.database, new Date());
    const { name } = named;
    if (await databaseExists(admin, name)) throw nameTaken(name);
    const source = await readDatabase(admin, target.database);
    if (opts.swap && !source) {
      throw new BadInputError(
        `There is no database "${target.database}" to swap with; restore under its name with --as ${JSON.stringify(target.database)} instead.`,
      );
    }

    // One intact copy is enough to restore; the others are read only when it is not.
    const { checks, manifest } = await checkCopies(
      copies,
      config.signingKey,
      progress,
      'full',
      true,
    );
    const [copy] = chooseCopies(copies, checks);
    if (!copy || !manifest) {
      throw new VerificationFailedError(
        `Backup ${opts.backupId} has no intact copy, so it cannot be restored; nothing was created.`,
        { details: copyProblems(checks) },
      );
    }
    const skipped = checks.filter((c) => !c.intact);
    if (skipped.length > 0) {
      warn(`Skipped damaged copies of the backup: ${copyProblems(skipped).join('; ')}`);
    }
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

    const proved = await withRestoringDatabase(admin, scope, named, manifest.id, (marked) =>
      fillAndProve({ admin, marked, name, manifest, copy, pgRestore, like, opts, warn }),
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
      await opts.beforeSwap?.(name, replacedAs);
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
