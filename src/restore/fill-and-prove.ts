import type pg from 'pg';
import { BadInputError, VerificationFailedError, errorMessage } from '../errors.js';
import { pausePoint } from '../faults.js';
import type { Manifest } from '../repository/manifest.js';
import type { MarkedDatabase } from '../marked-database.js';
import type { StoredCopy } from '../repository/copies.js';
import { withDatabase } from '../target.js';
import { describeDifference, restoreAndProve } from './prove.js';
import { finishRestored, localeClause, type DatabaseRow } from './database-properties.js';
import type { RestoreOptions } from './restore-options.js';
import { createDatabase, markUnproven } from './databases.js';

/**
 * Create the new database, mark it, pg_restore into it, fingerprint it and
 * compare with the manifest. A difference keeps it for inspection under an
 * `unproven` marker; a match replaces the marker with the plain comment.
 */
export async function fillAndProve(p: {
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
}): Promise<{ restoreMs: number; properties: string[] }> {
  const { admin, name, manifest, opts } = p;
  const into = withDatabase(opts.target, name);
  await p.marked.create((as) =>
    createDatabase(admin, as, {
      encoding: manifest.target.encoding,
      ...(p.like ? { locale: localeClause(p.like) } : {}),
      what: 'A restore',
      warn: p.warn,
    }),
  );
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
    restored: () => pausePoint('restore:restored'),
    restoreFailed: (err) => restoreFailure(manifest.id, err, opts.keepOwners),
  });
  if (differences.length > 0) {
    await markUnproven(admin, name, manifest.id, differences.length);
    p.marked.keep();
    throw new VerificationFailedError(
      `Backup ${manifest.id} restored into ${name}, but its content differs from the backup in ${differences.length} place(s); ${name} is kept for inspection and nothing was swapped.`,
      { details: differences.map(describeDifference), data: { database: name, differences } },
    );
  }
  const properties = await finishRestored(admin, name, manifest.id, {
    source: p.like,
    keepOwners: opts.keepOwners,
    warn: p.warn,
  });
  p.marked.keep();
  return { restoreMs, properties };
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
