import { findCopies } from '../repository/catalog.js';
import { INDEX_BUILD_SETTINGS } from '../pg-programs/pg-restore.js';
import type pg from 'pg';
import type { Config } from '../config.js';
import {
  BadInputError,
  InterruptedError,
  VerificationFailedError,
  errorMessage,
} from '../errors.js';
import { pausePoint } from '../faults.js';
import type { MarkedDatabase } from '../marked-database.js';
import type { Progress } from '../progress.js';
import type { StoredCopy } from '../repository/copies.js';
import type { Manifest } from '../repository/manifest.js';
import { databaseLedger, databaseToken } from '../database-ledger.js';
import {
  connectionString,
  describeTarget,
  serverOf,
  withDatabase,
  type Target,
} from '../target.js';
import {
  finishRestored,
  localeClause,
  readDatabase,
  type DatabaseRow,
} from './database-properties.js';
import { checkCopies, chooseCopies, copyProblems } from './copies.js';
import { databaseRowFromNeeds, preflightOnto } from './onto-server.js';
import { describeDifference, restoreAndProve, restoreTool } from './prove.js';
import {
  checkName,
  createDatabase,
  databaseExists,
  dropAbandonedRestores,
  markUnproven,
  nameTaken,
  restoredName,
  suffixedName,
  timestamp,
  withMaintenanceConnection,
  withRestoringDatabase,
} from './databases.js';
import {
  checkSameDatabase,
  sessionsRefusal,
  settledSessions,
  swapNames,
  type Session,
} from './swap.js';

/**
 * `lifeboat restore`: a backup restored into a NEW database beside the target
 * (never over anything), proved by fingerprints against its manifest, and,
 * when asked, swapped in under the target's name in one transaction, keeping
 * the database it replaces (DESIGN.md promise 5). While it is being filled,
 * the new database is marked as lifeboat's own (./databases.ts).
 */
/** What `lifeboat restore` is asked to do: read by the restore and by the fill-and-prove under it. */
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
  /** An interrupt: pg_restore stops, the half-restored database is dropped, the target untouched. */
  signal?: AbortSignal;
  /**
   * With swap: called once the restored database is proved, just before the
   * names are exchanged (the restore rung copies the run's journal into it, so
   * that no instant after the swap finds the run forgotten).
   */
  beforeSwap?: (restored: string, replacedAs: string) => Promise<void>;
  /**
   * The target is another server than the backup's source (`restore --to`):
   * it is checked first for what the dump needs (onto-server.ts), and the
   * database takes the source's locale, owner and settings from the manifest.
   */
  onto?: { createRoles: boolean };
  /**
   * Work on the restored database that may run while it is being proved,
   * started once pg_restore is done and awaited after the proof: it must not
   * change what the fingerprints read (a move's ANALYZE).
   */
  alongsideProof?: () => Promise<void>;
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
  /** With `onto`: the server restored onto, the roles created there, and each phase's time. */
  onto?: {
    server: string;
    createdRoles: string[];
    phases: { preflightMs: number; restoreMs: number; proveMs: number; finishMs: number };
  };
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
    const source = opts.onto ? undefined : await readDatabase(admin, target.database);
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
    const preflightStarted = Date.now();
    const preflight = opts.onto
      ? await progress.task(
          `Check ${describeTarget(target)} for what backup ${manifest.id} needs`,
          () => preflightOnto(admin, manifest, opts.onto!.createRoles),
        )
      : undefined;
    const preflightMs = Date.now() - preflightStarted;
    const pgRestore = await restoreTool(admin, manifest, config.pgBinDir);
    const like = opts.onto
      ? databaseRowFromNeeds(manifest.needs!, target.user)
      : manifest.target.database === target.database
        ? source
        : undefined;
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
      restoreMs: proved.phases.restoreMs,
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
    if (preflight) {
      result.onto = {
        server: serverOf(target),
        createdRoles: preflight.createdRoles,
        phases: { preflightMs, ...proved.phases },
      };
    }
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
  marked: MarkedDatabase;
  name: string;
  manifest: Manifest;
  copy: StoredCopy;
  pgRestore: string;
  /** The target's own row, when the backup is of it: its locale and properties are copied. */
  like: DatabaseRow | undefined;
  opts: RestoreOptions;
  warn: (message: string) => void;
}): Promise<{
  properties: string[];
  phases: { restoreMs: number; proveMs: number; finishMs: number };
}> {
  const { admin, name, manifest, opts } = p;
  const into = opts.onto
    ? { ...withDatabase(opts.target, name), options: INDEX_BUILD_SETTINGS }
    : withDatabase(opts.target, name);
  await p.marked.create((as) =>
    createDatabase(admin, as, {
      encoding: manifest.target.encoding,
      ...(p.like ? { locale: localeClause(p.like) } : {}),
      what: 'A restore',
      warn: p.warn,
      strictLocale: opts.onto !== undefined,
    }),
  );
  const proveStarted = Date.now();
  let alongside: Promise<void> | undefined;
  const { restoreMs, differences } = await restoreAndProve({
    copy: p.copy,
    manifest,
    config: opts.config,
    pgRestore: p.pgRestore,
    into,
    keepOwners: opts.keepOwners,
    signal: opts.signal,
    progress: opts.progress,
    tasks: {
      restore: `Restore backup ${manifest.id} into new database ${name}`,
      fingerprint: `Fingerprint ${name}`,
    },
    restored: async () => {
      await pausePoint('restore:restored');
      alongside = opts.alongsideProof?.();
      // Observed at once, awaited below: a failure must not go unhandled while the proof runs.
      alongside?.catch(() => undefined);
    },
    restoreFailed: (err) => restoreFailure(manifest.id, err, opts.keepOwners),
  });
  await alongside;
  if (differences.length > 0) {
    await markUnproven(admin, name, manifest.id, differences.length);
    p.marked.keep();
    throw new VerificationFailedError(
      `Backup ${manifest.id} restored into ${name}, but its content differs from the backup in ${differences.length} place(s); ${name} is kept for inspection and nothing was swapped.`,
      { details: differences.map(describeDifference), data: { database: name, differences } },
    );
  }
  const finishStarted = Date.now();
  const proveMs = finishStarted - proveStarted - restoreMs;
  const properties = await finishRestored(admin, name, manifest.id, {
    source: p.like,
    keepOwners: opts.keepOwners,
    warn: p.warn,
  });
  p.marked.keep();
  return { properties, phases: { restoreMs, proveMs, finishMs: Date.now() - finishStarted } };
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
