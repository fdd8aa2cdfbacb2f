import type { Config } from './config.js';
import {
  BadInputError,
  InterruptedError,
  VerificationFailedError,
  errorMessage,
} from './errors.js';
import type { Difference } from './fingerprint.js';
import { manifestDigest, type Manifest, type VerificationRecord } from './repository/manifest.js';
import { pausePoint } from './faults.js';
import type { Progress } from './progress.js';
import { writeVerification, type StoredCopy } from './repository/copies.js';
import {
  checkCopies,
  checkManifests,
  chooseCopies,
  copyProblems,
  type CopyCheck,
} from './restore/copies.js';
import { describeDifference, restoreAndProve } from './restore/prove.js';
import { intoScratch, withScratchDatabase } from './restore/scratch.js';
import { describeTarget, scratchServer, type Target } from './target.js';
import { findCopies, resolveBackupId } from './repository/catalog.js';

export interface VerifyResult {
  backupId: string;
  /** The verification recorded; with several copies restored, the first that failed, else the last. */
  record: VerificationRecord;
  /** One record per copy restored. */
  records: VerificationRecord[];
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
  /** Restore the copy in this destination (the others' checksums are still checked). */
  from?: string;
  /** Restore every copy, one after the other. */
  allCopies?: boolean;
  /** An interrupt: the restore stops, the scratch database is dropped, nothing is recorded. */
  signal?: AbortSignal;
}

/**
 * Prove a backup: check its copies, restore an intact one (or the one asked
 * for, or each) into a scratch database, fingerprint the result and compare
 * it with the manifest. Every outcome is recorded beside the manifest of
 * every copy whose manifest is sound.
 */
/**
 * `verify ID` or `verify latest`: the name resolved (latest is the target's
 * newest backup), `named` told which backup that is before it is proved (so
 * a failure's evidence can name it), then the backup verified.
 */
export async function verifyNamedBackup(
  opts: Omit<VerifyOptions, 'backupId'> & { name: string; named?: (backupId: string) => void },
): Promise<VerifyResult> {
  const { name, named, ...rest } = opts;
  const backupId = await resolveBackupId(name, {
    destinations: opts.config.destinations,
    key: opts.config.signingKey,
    target: opts.target,
  });
  named?.(backupId);
  return verifyBackup({ ...rest, backupId });
}

export async function verifyBackup(opts: VerifyOptions): Promise<VerifyResult> {
  try {
    return await proveBackup(opts);
  } catch (err) {
    if (!opts.signal?.aborted || err instanceof InterruptedError) throw err;
    throw new InterruptedError(
      `Interrupted: the verification of backup ${opts.backupId} was stopped; its scratch database was dropped and nothing was recorded.`,
      { cause: err },
    );
  }
}

async function proveBackup(opts: VerifyOptions): Promise<VerifyResult> {
  const { config, progress } = opts;
  const started = Date.now();
  const copies = await findCopies(config.destinations, opts.backupId);
  const { checks, manifest, sound } = opts.checksumsJustRead
    ? await checkManifests(copies, config.signingKey)
    : await checkCopies(copies, config.signingKey, progress);
  const scratch = scratchServer(config.scratchUrl, opts.target);
  const recordable = copies.filter((c) =>
    checks.some(
      (k) => k.destination === c.destination && !k.problems.some((p) => p.startsWith('manifest')),
    ),
  );
  const toRestore = chooseCopies(copies, checks, { from: opts.from, all: opts.allCopies });

  const bound = manifest ?? sound;
  const base = {
    backupId: opts.backupId,
    manifestSha256: bound ? manifestDigest(bound) : '',
    at: new Date().toISOString(),
    scratch: { server: describeTarget(scratch), database: '' },
    compared: { tables: 0, sequences: 0, largeObjects: 0, schema: false },
  };

  if (!manifest || toRestore.length === 0) {
    const problems = copyProblems(checks);
    const which = opts.from ? `the copy in ${opts.from} is damaged` : 'no intact copy';
    const record: VerificationRecord = {
      ...base,
      restoredFrom: '',
      ok: false,
      durationMs: Date.now() - started,
      restoreMs: 0,
      differences: [],
      error: `${which}: ${problems.join('; ')}`,
    };
    if (bound) for (const c of recordable) await writeVerification(c, record, config.signingKey);
    throw new VerificationFailedError(
      opts.from
        ? `The copy of backup ${opts.backupId} in ${opts.from} is damaged, so it cannot be verified from there.`
        : `Backup ${opts.backupId} has no intact copy, so it cannot be verified.`,
      { details: problems },
    );
  }

  const records: VerificationRecord[] = [];
  for (const copy of toRestore) {
    const outcome = await restoreAndCompare(copy, manifest, scratch, opts);
    const record: VerificationRecord = {
      ...base,
      at: new Date().toISOString(),
      scratch: {
        ...base.scratch,
        database: outcome.scratchName,
        ...(outcome.role ? { role: outcome.role } : {}),
      },
      restoredFrom: copy.destination,
      ok: !outcome.error && outcome.differences.length === 0 && checks.every((c) => c.intact),
      durationMs: Date.now() - started,
      restoreMs: outcome.restoreMs,
      ...(outcome.fingerprintMs !== undefined ? { fingerprintMs: outcome.fingerprintMs } : {}),
      compared: {
        tables: manifest.fingerprints.tables.length,
        sequences: manifest.fingerprints.sequences.length,
        largeObjects: manifest.fingerprints.largeObjects.count,
        schema: true,
      },
      differences: outcome.differences,
      ...(outcome.error ? { error: outcome.error } : {}),
    };
    for (const c of recordable) await writeVerification(c, record, config.signingKey);
    records.push(record);
  }

  const failed = records.find((r) => r.error || r.differences.length > 0);
  if (failed?.error) {
    throw new VerificationFailedError(
      `Backup ${manifest.id} does not restore from ${failed.restoredFrom}: ${failed.error}`,
      { data: failed },
    );
  }
  if (failed) {
    throw new VerificationFailedError(
      `Backup ${manifest.id} restored from ${failed.restoredFrom}, but its content differs from the source in ${failed.differences.length} place(s).`,
      { details: failed.differences.map((d) => describeDifference(d as Difference)), data: failed },
    );
  }
  const damaged = checks.filter((c) => !c.intact);
  if (damaged.length > 0) {
    throw new VerificationFailedError(
      `Backup ${manifest.id} restored from ${records.map((r) => r.restoredFrom).join(', ')}, but ${damaged.length} other copy(ies) are damaged.`,
      { details: copyProblems(damaged) },
    );
  }
  return { backupId: manifest.id, record: records.at(-1)!, records, copies: checks };
}

/** Restore one copy into a scratch database and compare its fingerprints with the manifest. */
async function restoreAndCompare(
  copy: StoredCopy,
  manifest: Manifest,
  server: Target,
  opts: VerifyOptions,
): Promise<{
  restoreMs: number;
  fingerprintMs?: number;
  differences: Difference[];
  error?: string;
  scratchName: string;
  role?: string;
}> {
  const { config, progress } = opts;
  let restoreMs = 0;
  let fingerprintMs: number | undefined;
  let differences: Difference[] = [];
  let scratchName = '';
  let role: string | undefined;
  try {
    await withScratchDatabase(
      server,
      'verify',
      manifest,
      async (scratch) => {
        scratchName = scratch.name;
        role = scratch.restorer.user;
        ({ differences, fingerprintMs } = await restoreAndProve({
          copy,
          manifest,
          config,
          ...intoScratch(scratch),
          signal: opts.signal,
          progress,
          tasks: {
            restore: `Restore the copy in ${copy.destination} into scratch database ${scratch.name}`,
            fingerprint: 'Fingerprint the restored copy',
            compare: 'Compare fingerprints',
          },
          restored: async (ms) => {
            restoreMs = ms;
            await pausePoint('verify:restored');
          },
        }));
      },
      config,
    );
    return {
      restoreMs,
      ...(fingerprintMs !== undefined ? { fingerprintMs } : {}),
      differences,
      scratchName,
      role,
    };
  } catch (err) {
    // Missing tools, keys or an unreachable scratch server are bad input, not a verdict on the
    // backup; nor is an interrupt.
    if (err instanceof BadInputError || opts.signal?.aborted) throw err;
    return { restoreMs, differences, error: errorMessage(err), scratchName, role };
  }
}
