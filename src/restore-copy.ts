import type { Config } from './config.js';
import type { Manifest } from './repository/manifest.js';
import type { Amount } from './progress.js';
import { restoreArchive } from './pg-programs/pg-restore.js';
import type { StoredCopy } from './repository/copies.js';
import { withDumpDir } from './repository/dump-dir.js';
import type { Target } from './target.js';

/** pg_restore one copy of a backup into a database: in place, or fetched and decrypted first. */
export function restoreCopy(p: {
  copy: StoredCopy;
  manifest: Manifest;
  config: Config;
  pgRestore: string;
  into: Target;
  /** lifeboat's own connection to `into`'s database, when `into` is an unprivileged role. */
  own?: Target;
  keepOwners: boolean;
  /** A scratch database, dropped once proved: restored with settings a real restore would not take. */
  disposable?: boolean;
  update: (detail: string, amount?: Amount) => void;
  signal?: AbortSignal;
}): Promise<void> {
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
