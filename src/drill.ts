import { readCatalog, type CatalogEntry } from './repository/catalog.js';
import type { Config } from './config.js';
import { withClient } from './db.js';
import {
  BadInputError,
  GuardRefusedError,
  LifeboatError,
  VerificationFailedError,
} from './errors.js';
import { ageMs } from './freshness.js';
import { readIdentity, sameTarget, type TargetIdentity } from './identity.js';
import type { Progress } from './progress.js';
import {
  DRILLS_DIR,
  readLayout,
  readManifest,
  writeRecord,
  type StoredCopy,
} from './repository/copies.js';
import { bindingOf, type DrillRecord, type VerificationRecord } from './repository/manifest.js';
import type { Destination } from './repository/storage/destination.js';
import { describeTarget, scratchServer, type Target } from './target.js';
import { verifyBackup } from './verify.js';

/**
 * `lifeboat drill`: a timed disaster-recovery rehearsal. The newest verified
 * backup of the target is restored from ONE destination (an off-site one by
 * default), reading nothing else of the repository, onto a scratch database
 * on the usual server or on another one (`to`), and proved as verify proves
 * it. The record kept beside that copy is the evidence: recovery time by
 * phase, the backup's age (the writes a real disaster would lose), which copy
 * and which key. `gate --drilled` asks for a passing one.
 */
export interface DrillOptions {
  config: Config;
  target: Target;
  progress: Progress;
  /** The destination to restore from (default: the first off-site one). */
  from?: string;
  /** Another server to restore onto (a connection URL); the database there is dropped afterwards. */
  to?: string;
  /** A backup id instead of the newest verified one. */
  backupId?: string;
  /** Told which backup the drill restores, before it starts (a failure's evidence names it). */
  chosen?: (backupId: string) => void;
  signal?: AbortSignal;
  now?: Date;
}

export async function runDrill(opts: DrillOptions): Promise<DrillRecord> {
  const { config, progress } = opts;
  const dest = drillDestination(config.destinations, opts.from);
  const remote = dest.kind === 's3';
  if (!remote) {
    progress.warn(
      `destination ${dest.name} is not off-site: this drill proves a copy that a lost machine would take with it.`,
    );
  }
  const identity = await withClient(opts.target, readIdentity).catch(() => undefined);
  if (!identity && !opts.to && !config.scratchUrl) {
    throw new BadInputError(
      `${describeTarget(opts.target)} does not answer, and a drill restores onto its server by default; name another server with --to URL.`,
    );
  }
  // As if every other destination were gone: only this one is listed and read.
  const entries = await readCatalog([dest], config.signingKey);
  const entry = chooseBackup(entries, opts, dest.name, identity);
  opts.chosen?.(entry.id);
  const copy = entry.copies[0]!;
  const manifest = entry.manifest!;
  const started = opts.now ?? new Date();
  const phases: DrillRecord['phases'] = [];
  const scratch = scratchServer(opts.to ?? config.scratchUrl, opts.target);
  const record: DrillRecord = {
    at: started.toISOString(),
    ...bindingOf(manifest),
    passed: false,
    from: { destination: dest.name, remote },
    ...(await encryptionOf(copy, config.signingKey)),
    onto: { server: describeTarget(scratch), database: '' },
    source: manifest.target.described,
    backupAgeMs: ageMs(manifest.createdAt, started),
    durationMs: 0,
    phases,
    differences: [],
  };
  const verified = await verifyBackup({
    config: { ...config, destinations: [dest], scratchUrl: opts.to ?? config.scratchUrl },
    target: opts.target,
    backupId: entry.id,
    from: dest.name,
    progress: timed(progress, phases),
    signal: opts.signal,
  }).catch(async (err: unknown) => {
    // A failed proof is the drill's finding: recorded, then reported as verify reports it.
    if (opts.signal?.aborted || !(err instanceof LifeboatError) || err.exitCode !== 4) throw err;
    const failed = err.data as VerificationRecord | undefined;
    finish(record, failed, Date.now() - started.getTime());
    record.error = failed?.error ?? [err.message, ...err.details].join(' ');
    await writeRecord(copy, DRILLS_DIR, record, config.signingKey);
    throw new VerificationFailedError(`The drill failed: ${err.message}`, {
      details: err.details,
      data: record,
      cause: err,
    });
  });
  finish(record, verified.record, Date.now() - started.getTime());
  record.passed = verified.record.ok;
  await writeRecord(copy, DRILLS_DIR, record, config.signingKey);
  return record;
}

function finish(
  record: DrillRecord,
  verification: VerificationRecord | undefined,
  durationMs: number,
): void {
  record.durationMs = durationMs;
  if (!verification) return;
  record.onto.database = verification.scratch.database;
  record.differences = verification.differences;
}

/** The destination named, or the first off-site one, or (with none) the first. */
export function drillDestination(destinations: Destination[], name?: string): Destination {
  if (name) {
    const found = destinations.find((d) => d.name === name);
    if (!found) {
      throw new BadInputError(
        `There is no destination "${name}"; the config names ${destinations.map((d) => d.name).join(', ')}.`,
      );
    }
    return found;
  }
  return destinations.find((d) => d.kind === 's3') ?? destinations[0]!;
}

/**
 * The backup to drill: the one asked for, else the newest of the target with
 * a passing verification. With the source gone, "of the target" falls back
 * to the database name the manifest records.
 */
function chooseBackup(
  entries: CatalogEntry[],
  opts: DrillOptions,
  destination: string,
  identity: TargetIdentity | undefined,
): CatalogEntry {
  const ofTarget = (e: CatalogEntry): boolean =>
    identity
      ? sameTarget(e.manifest!.target, identity)
      : e.manifest!.target.database === opts.target.database;
  const sound = entries.filter((e) => e.manifest);
  if (opts.backupId) {
    const asked = sound.find((e) => e.id === opts.backupId);
    if (asked) return asked;
    throw new BadInputError(
      `Destination ${destination} holds no sound copy of backup ${opts.backupId}; see \`lifeboat backups list\`.`,
    );
  }
  const newest = sound
    .filter((e) => ofTarget(e) && e.verifications.some((v) => v.ok))
    .sort((a, b) => b.manifest!.createdAt.localeCompare(a.manifest!.createdAt))[0];
  if (!newest) {
    throw new GuardRefusedError(
      `Destination ${destination} holds no verified backup of ${describeTarget(opts.target)} to drill.`,
      {
        details: [
          'Take one with `lifeboat backup` (it verifies the backup and records the verification in every copy).',
        ],
      },
    );
  }
  return newest;
}

/** Which recipients an encrypted copy is sealed to, and where the key to open it came from. */
async function encryptionOf(
  copy: StoredCopy,
  key: string | undefined,
): Promise<Pick<DrillRecord, 'encryption'>> {
  const { manifest } = await readManifest(copy, key);
  if (!manifest) return {};
  const { layout } = await readLayout(copy, manifest, key);
  if (!layout?.encryption) return {};
  const file = process.env.LIFEBOAT_AGE_IDENTITY_FILE;
  const identityFrom = [
    ...(process.env.LIFEBOAT_AGE_IDENTITY ? ['LIFEBOAT_AGE_IDENTITY'] : []),
    ...(file ? [`LIFEBOAT_AGE_IDENTITY_FILE (${file})`] : []),
  ].join(' and ');
  return {
    encryption: { recipients: layout.encryption.recipients, identityFrom: identityFrom || 'none' },
  };
}

/** The same progress, with each task's time kept: the drill's phases. */
function timed(progress: Progress, phases: DrillRecord['phases']): Progress {
  return {
    warn: (message) => progress.warn(message),
    async task(title, fn) {
      const started = Date.now();
      try {
        return await progress.task(title, fn);
      } finally {
        phases.push({ name: title, ms: Date.now() - started });
      }
    },
  };
}
