import type pg from 'pg';
import { connect } from './db.js';
import { inRolledBackSnapshot, joinSnapshotSessions } from './snapshot.js';
import { computeFingerprints, type Fingerprints } from './fingerprint.js';
import type { ContentMethod } from './row-hash.js';
import { howFar, type Amount } from './progress.js';
import type { Target } from './target.js';
import { formatBytes } from './units.js';

/**
 * Fingerprint a whole database at one snapshot: a REPEATABLE READ, READ ONLY
 * transaction whose snapshot `parallel - 1` more sessions import, so tables
 * are hashed side by side and still all read the same data.
 */
export async function fingerprintDatabase(
  target: Target,
  options: {
    excludeSchemas?: string[];
    onTable?: (done: number, total: number) => void;
    /** How far, in bytes of table data, with the time left: for a progress bar. */
    onProgress?: (detail: string, amount: Amount) => void;
    parallel?: number;
    /** An interrupt ends the sessions, which ends the hashing. */
    signal?: AbortSignal;
    /** How rows are hashed: a copy as its source was (the expected fingerprints' method). */
    contentMethod?: ContentMethod | 'fastest';
    /**
     * An idle session of the caller's on `target` to hash on, sparing a
     * connection (a run's own, before its first step). Left open, its
     * transaction rolled back, which undoes the output settings pinned on it.
     */
    session?: pg.Client;
  } = {},
): Promise<Fingerprints> {
  // Two sessions by default: tables hash side by side on the 2 cores a small server has.
  const parallel = options.parallel ?? 2;
  // The sessions this call opened, each ended at the end.
  const opened: pg.Client[] = [];
  try {
    const main = options.session ?? (await connect(target, 'lifeboat fingerprint'));
    if (!options.session) opened.push(main);
    return await inRolledBackSnapshot(main, async () => {
      const snapshot =
        parallel > 1
          ? (await main.query<{ id: string }>('select pg_export_snapshot() as id')).rows[0]!.id
          : undefined;
      const helpers = (): Promise<pg.Client[]> =>
        joinSnapshotSessions(target, snapshot!, parallel - 1, opened);
      const started = Date.now();
      return computeFingerprints(main, {
        excludeSchemas: options.excludeSchemas,
        contentMethod: options.contentMethod,
        onTable: (d, t) => {
          options.signal?.throwIfAborted();
          options.onTable?.(d, t);
        },
        onBytes: options.onProgress
          ? (done, total) =>
              options.onProgress!(
                ...howFar(done, total, Date.now() - started, formatBytes, 'hashed'),
              )
          : undefined,
        helpers,
      });
    });
  } finally {
    await Promise.all(opened.map((s) => s.end().catch(() => undefined)));
  }
}
