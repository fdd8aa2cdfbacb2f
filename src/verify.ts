import type { Config } from './config.js';
import { connect } from './db.js';
import { BadInputError, ToolError, VerificationFailedError, errorMessage } from './errors.js';
import { compareFingerprints, type Difference } from './fingerprint.js';
import { fingerprintDatabase } from './fingerprint-session.js';
import type { Manifest, VerificationRecord } from './manifest.js';
import { pausePoint } from './faults.js';
import { findTool } from './pgtools.js';
import type { Progress } from './progress.js';
import { checkFiles, readManifest, writeVerification, type StoredCopy } from './repository.js';
import { restoreArchive } from './pg-restore.js';
import { withScratchDatabase } from './scratch.js';
import { describeTarget, resolveTarget, type Target } from './target.js';
import { findCopies } from './catalog.js';
import { DUMP_DIR } from './repository.js';
import path from 'node:path';
import { readIdentity } from './identity.js';

export interface CopyCheck {
  destination: string;
  dir: string;
  intact: boolean;
  problems: string[];
}

export interface VerifyResult {
  backupId: string;
  record: VerificationRecord;
  copies: CopyCheck[];
}

export interface VerifyOptions {
  config: Config;
  /** The target; its server hosts the scratch database unless config.scratchUrl says otherwise. */
  target: Target;
  backupId: string;
  progress: Progress;
  /**
   * The copies' checksums were read back by this process a moment ago (right
   * after the backup stored them): only their manifests are checked again.
   */
  checksumsJustRead?: boolean;
}

/** Read every copy of a backup back and compare it with its manifest. */
export async function checkCopies(
  copies: StoredCopy[],
  key: string | undefined,
  progress: Progress,
): Promise<{ checks: CopyCheck[]; manifest?: Manifest }> {
  const checks: CopyCheck[] = [];
  let manifest: Manifest | undefined;
  for (const copy of copies) {
    const check = await progress.task(
      `Check checksums of the copy in ${copy.destination}`,
      async (update) => {
        const read = await readManifest(copy.dir, key);
        const problems = [...read.problems];
        if (read.manifest && read.problems.length === 0) {
          problems.push(
            ...(await checkFiles(copy.dir, read.manifest, (done, total) =>
              update(`${done}/${total} files`),
            )),
          );
          manifest ??= read.manifest;
        }
        return {
          destination: copy.destination,
          dir: copy.dir,
          intact: problems.length === 0,
          problems,
        };
      },
    );
    checks.push(check);
    if (!check.intact)
      progress.warn(`the copy in ${copy.destination} is damaged: ${check.problems.join('; ')}`);
  }
  return { checks, manifest };
}

async function checkManifests(
  copies: StoredCopy[],
  key: string | undefined,
): Promise<{ checks: CopyCheck[]; manifest?: Manifest }> {
  const checks: CopyCheck[] = [];
  let manifest: Manifest | undefined;
  for (const copy of copies) {
    const read = await readManifest(copy.dir, key);
    if (read.manifest && read.problems.length === 0) manifest ??= read.manifest;
    checks.push({
      destination: copy.destination,
      dir: copy.dir,
      intact: read.problems.length === 0,
      problems: read.problems,
    });
  }
  return { checks, manifest };
}

/**
 * Prove a backup: check its copies, restore an intact one into a scratch
 * database, fingerprint the result and compare it with the manifest. The
 * outcome is recorded beside the manifest of every copy whose manifest is sound.
 */
export async function verifyBackup(opts: VerifyOptions): Promise<VerifyResult> {
  const { config, progress } = opts;
  const started = Date.now();
  const copies = await findCopies(config.destinations, opts.backupId);
  const { checks, manifest } = opts.checksumsJustRead
    ? await checkManifests(copies, config.signingKey)
    : await checkCopies(copies, config.signingKey, progress);
  const scratchServer = config.scratchUrl ? resolveTarget(config.scratchUrl) : opts.target;
  const recordable = checks.filter((c) => !c.problems.some((p) => p.startsWith('manifest')));
  const intact = checks.find((c) => c.intact);

  const base = {
    backupId: opts.backupId,
    at: new Date().toISOString(),
    scratch: { server: describeTarget(scratchServer), database: '' },
    compared: { tables: 0, sequences: 0, largeObjects: 0, schema: false },
  };

  if (!manifest || !intact) {
    const problems = checks.flatMap((c) => c.problems.map((p) => `${c.destination}: ${p}`));
    const record: VerificationRecord = {
      ...base,
      restoredFrom: '',
      ok: false,
      durationMs: Date.now() - started,
      restoreMs: 0,
      differences: [],
      error: `no intact copy: ${problems.join('; ')}`,
    };
    for (const c of recordable) await writeVerification(c.dir, record, config.signingKey);
    throw new VerificationFailedError(
      `Backup ${opts.backupId} has no intact copy, so it cannot be verified.`,
      { details: problems },
    );
  }

  let restoreMs = 0;
  let differences: Difference[] = [];
  let error: string | undefined;
  let scratchName = '';
  try {
    const scratchMajor = await serverMajor(scratchServer);
    const pgRestore = await findTool('pg_restore', scratchMajor, config.pgBinDir);
    const dumpMajor = Number(manifest.tools.pgDump.version.split('.')[0]);
    if (pgRestore.major < dumpMajor) {
      throw new ToolError(
        `pg_restore ${pgRestore.version} cannot read an archive written by pg_dump ${manifest.tools.pgDump.version}; install client tools ${dumpMajor} or newer.`,
      );
    }
    await withScratchDatabase(
      scratchServer,
      'verify',
      manifest.id,
      async (scratch) => {
        scratchName = scratch.name;
        const restoreStarted = Date.now();
        await progress.task(`Restore into scratch database ${scratch.name}`, (update) =>
          restoreArchive(pgRestore.path, path.join(intact.dir, DUMP_DIR), scratch.target, {
            jobs: config.jobs,
            tables: manifest.fingerprints.tables.length,
            keepOwners: false,
            onProgress: update,
          }),
        );
        restoreMs = Date.now() - restoreStarted;
        await pausePoint('verify:restored');
        const found = await progress.task('Fingerprint the restored copy', (update) =>
          fingerprintDatabase(scratch.target, {
            onTable: (done, total) => update(`${done}/${total} tables`),
          }),
        );
        differences = await progress.task('Compare fingerprints', () =>
          Promise.resolve(compareFingerprints(manifest.fingerprints, found)),
        );
      },
      { encoding: manifest.target.encoding },
    );
  } catch (err) {
    // Missing tools or an unreachable scratch server are bad input, not a verdict on the backup.
    if (err instanceof BadInputError) throw err;
    error = errorMessage(err);
  }

  const record: VerificationRecord = {
    ...base,
    scratch: { ...base.scratch, database: scratchName },
    restoredFrom: intact.destination,
    ok: !error && differences.length === 0 && checks.every((c) => c.intact),
    durationMs: Date.now() - started,
    restoreMs,
    compared: {
      tables: manifest.fingerprints.tables.length,
      sequences: manifest.fingerprints.sequences.length,
      largeObjects: manifest.fingerprints.largeObjects.count,
      schema: true,
    },
    differences,
    ...(error ? { error } : {}),
  };
  for (const c of recordable) await writeVerification(c.dir, record, config.signingKey);

  if (error) {
    throw new VerificationFailedError(`Backup ${manifest.id} does not restore: ${error}`, {
      data: record,
    });
  }
  if (differences.length > 0) {
    throw new VerificationFailedError(
      `Backup ${manifest.id} restored, but its content differs from the source in ${differences.length} place(s).`,
      { details: differences.map(describeDifference), data: record },
    );
  }
  const damaged = checks.filter((c) => !c.intact);
  if (damaged.length > 0) {
    throw new VerificationFailedError(
      `Backup ${manifest.id} restored from ${intact.destination}, but ${damaged.length} other copy(ies) are damaged.`,
      { details: damaged.flatMap((c) => c.problems.map((p) => `${c.destination}: ${p}`)) },
    );
  }
  return { backupId: manifest.id, record, copies: checks };
}

export function describeDifference(d: Difference): string {
  return `${d.kind} ${d.object}: expected ${d.expected}, found ${d.found}`;
}

async function serverMajor(server: Target): Promise<number> {
  const client = await connect(server);
  try {
    return (await readIdentity(client)).serverMajor;
  } finally {
    await client.end().catch(() => undefined);
  }
}
