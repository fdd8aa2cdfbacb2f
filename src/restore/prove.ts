import type pg from 'pg';
import type { Config } from '../config.js';
import { ToolError } from '../errors.js';
import { compareFingerprints, type Difference } from '../fingerprint.js';
import { fingerprintDatabase } from '../fingerprint-session.js';
import { findTool } from '../pg-programs/find.js';
import { restoreArchive } from '../pg-programs/pg-restore.js';
import type { Amount, Progress } from '../progress.js';
import type { StoredCopy } from '../repository/copies.js';
import { withDumpDir } from '../repository/dump-dir.js';
import type { Manifest } from '../repository/manifest.js';
import { unknownContentMethod } from '../row-hash.js';
import type { Target } from '../target.js';

/**
 * Restore a copy and prove it: pg_restore into a database, fingerprint what
 * arrived, compare with the manifest. The differences are returned as values;
 * what one means is the caller's to decide (verify records it, restore keeps
 * the database under an `unproven` marker, a rehearsal refuses).
 */

/**
 * A pg_restore for the server's version that can read the backup's archive.
 * Returns its path. Chosen on the connection that will create the database,
 * before it is created: a refusal leaves nothing behind. A backup whose rows
 * were hashed by a method this version does not know is refused here too.
 */
export async function restoreTool(
  admin: pg.ClientBase,
  manifest: Manifest,
  pgBinDir: string | undefined,
): Promise<string> {
  const unknown = unknownContentMethod(manifest.fingerprints.contentMethod ?? 'text');
  if (unknown) throw new ToolError(unknown);
  const res = await admin.query<{ num: string }>(
    `select current_setting('server_version_num') as num`,
  );
  const serverMajor = Math.floor(Number(res.rows[0]?.num) / 10000);
  // An older pg_restore restores into a newer server, as long as it reads the archive (below).
  const pgRestore = await findTool('pg_restore', serverMajor, pgBinDir, true);
  const dumpMajor = Number(manifest.tools.pgDump.version.split('.')[0]);
  if (pgRestore.major < dumpMajor) {
    throw new ToolError(
      `pg_restore ${pgRestore.version} cannot read an archive written by pg_dump ${manifest.tools.pgDump.version}; install client tools ${dumpMajor} or newer.`,
    );
  }
  return pgRestore.path;
}

export interface RestoreCopy {
  copy: StoredCopy;
  manifest: Manifest;
  config: Config;
  /** From restoreTool. */
  pgRestore: string;
  into: Target;
  /** lifeboat's own connection to `into`'s database, when `into` is an unprivileged role. */
  own?: Target;
  keepOwners: boolean;
  /** A scratch database, dropped once proved: restored with settings a real restore would not take. */
  disposable?: boolean;
  signal?: AbortSignal;
}

/** pg_restore one copy of a backup into a database: in place, or fetched and decrypted first. */
export function restoreCopy(
  p: RestoreCopy & { update: (detail: string, amount?: Amount) => void },
): Promise<void> {
  return withDumpDir(p.copy, p.manifest, p.config.signingKey, p.update, (dumpDir) =>
    restoreArchive(p.pgRestore, dumpDir, p.into, {
      jobs: p.config.jobs,
      tables: p.manifest.fingerprints.tables.length,
      rows: p.manifest.fingerprints.tables.reduce((sum, t) => sum + t.rows, 0),
      keepOwners: p.keepOwners,
      onProgress: p.update,
      ...(p.own ? { own: p.own } : {}),
      ...(p.disposable ? { disposable: true } : {}),
      signal: p.signal,
    }),
  );
}

export interface Proof {
  restoreMs: number;
  /** Fingerprinting the restored database. */
  fingerprintMs: number;
  differences: Difference[];
}

/** Restore a copy, then fingerprint the database and compare it with the manifest. */
export async function restoreAndProve(
  p: RestoreCopy & {
    progress: Progress;
    /** The titles of the progress tasks; without `compare`, the comparison is no task of its own. */
    tasks: { restore: string; fingerprint: string; compare?: string };
    /** Called once pg_restore is done, before the fingerprint. */
    restored?: (restoreMs: number) => Promise<void>;
    /** What a failed pg_restore becomes (an interrupt stays itself). */
    restoreFailed?: (err: unknown) => unknown;
  },
): Promise<Proof> {
  const { progress, manifest } = p;
  const started = Date.now();
  await progress.task(p.tasks.restore, (update) =>
    restoreCopy({ ...p, update }).catch((err: unknown) => {
      throw p.signal?.aborted || !p.restoreFailed ? err : p.restoreFailed(err);
    }),
  );
  const restoreMs = Date.now() - started;
  await p.restored?.(restoreMs);
  const fingerprintStarted = Date.now();
  const found = await progress.task(p.tasks.fingerprint, (update) =>
    fingerprintDatabase(p.own ?? p.into, {
      onProgress: update,
      signal: p.signal,
      // Hashed as the source was; with as many sessions as the restore had jobs.
      contentMethod: manifest.fingerprints.contentMethod,
      parallel: Math.max(2, p.config.jobs),
    }),
  );
  const fingerprintMs = Date.now() - fingerprintStarted;
  const compare = (): Difference[] => compareFingerprints(manifest.fingerprints, found);
  const differences = p.tasks.compare
    ? await progress.task(p.tasks.compare, () => Promise.resolve(compare()))
    : compare();
  return { restoreMs, fingerprintMs, differences };
}

export function describeDifference(d: Difference): string {
  return `${d.kind} ${d.object}: expected ${d.expected}, found ${d.found}`;
}
