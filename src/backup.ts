import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { mkdtemp, statfs, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Config } from './config.js';
import { InterruptedError, StorageError, ToolError } from './errors.js';
import { computeFingerprints } from './fingerprint.js';
import { readIdentity, readWriteCounters, type TargetIdentity } from './identity.js';
import {
  MANIFEST_FORMAT,
  checksumLine,
  newBackupId,
  type FileEntry,
  type Manifest,
} from './repository/manifest.js';
import { pausePoint } from './faults.js';
import { requirePrivileges } from './privileges.js';
import { findTool } from './pg-programs/find.js';
import type { Amount, Progress } from './progress.js';
import { DUMP_DIR, writeManifest } from './repository/copies.js';
import { storeCopy, type CopyOutcome } from './repository/store-copy.js';
import { describeDestination, type Destination } from './repository/storage/destination.js';
import { openRepo } from './repository/storage/open.js';
import type { CopyWriter } from './repository/storage/repo.js';
import { storageReason } from './repository/storage/reasons.js';
import { isNoSpace, runPgTool } from './pg-programs/exec.js';
import { joinSnapshotSessions, withExportedSnapshot } from './snapshot.js';
import { readClusterNeeds } from './cluster-needs.js';
import { PRIVATE_FILE, directorySize, hashFile, listFiles, removeTree } from './files.js';
import { dbnameArgument, describeTarget, type Target } from './target.js';
import { formatBytes, formatDuration } from './units.js';
import { latestFor, readCatalog } from './repository/catalog.js';
import { LIFEBOAT_VERSION } from './version.js';
import { tableDataBytes } from './backup-estimate.js';

export interface BackupOptions {
  config: Config;
  target: Target;
  progress: Progress;
  now?: () => Date;
  /** An interrupt: pg_dump is stopped, the partial backup removed, nothing listed. */
  signal?: AbortSignal;
}

export interface BackupResult {
  id: string;
  manifest: Manifest;
  copies: CopyOutcome[];
  phases: BackupPhases;
}

/**
 * Where a backup's time went, in milliseconds. The dump and the source's
 * fingerprints run side by side, so `dumpMs` and `fingerprintMs` overlap
 * within `snapshotMs`, the wall time of both.
 */
export interface BackupPhases {
  dumpMs: number;
  fingerprintMs: number;
  snapshotMs: number;
  checksumMs: number;
  /** Storing the copies after the first: streamed, encrypted where asked. */
  copiesMs: number;
}

/**
 * Dump the target at an exported snapshot, fingerprint it inside the same
 * snapshot, and store it in every destination. Nothing is listed until it is
 * complete: each copy is written under a temporary name, synced, read back and
 * only then renamed into place.
 */
export async function takeBackup(opts: BackupOptions): Promise<BackupResult> {
  try {
    return await dumpAndStore(opts);
  } catch (err) {
    if (!opts.signal?.aborted || err instanceof InterruptedError) throw err;
    throw new InterruptedError(
      'Interrupted: the backup was stopped before it was stored; pg_dump was stopped, the partial backup removed, and nothing was listed.',
      { cause: err },
    );
  }
}

async function dumpAndStore(opts: BackupOptions): Promise<BackupResult> {
  const { config, target, progress, signal } = opts;
  const now = opts.now ?? (() => new Date());
  const createdAt = now();

  return withExportedSnapshot(target, async (snapshot) => {
    // Everything the dump and the fingerprints read must be readable: say so before starting.
    await requirePrivileges(snapshot.client, ['read'], 'A backup');
    const identity = await readIdentity(snapshot.client);
    const counters = await readWriteCounters(snapshot.client);
    const needs = await readClusterNeeds(snapshot.client);
    const sourceBytes = await tableDataBytes(snapshot.client);
    const pgDump = await findTool('pg_dump', identity.serverMajor, config.pgBinDir);
    const id = newBackupId(createdAt, identity.database, randomBytes(3).toString('hex'));

    const previous = await previousDump(config, identity);
    const source = await openSource(config.destinations, id);
    const dumpDir = path.join(source.dir, DUMP_DIR);
    try {
      await pausePoint('backup:snapshot-held');
      const snapshotStarted = Date.now();
      // The dump and the fingerprints read the same snapshot at the same time.
      const { dump, fingerprinted } = await progress.task(
        `Dump ${describeTarget(target)} at snapshot ${snapshot.id} (pg_dump ${pgDump.version})`,
        async (update) => {
          let dumped = '';
          let tables = '';
          let dumpAmount: Amount | undefined;
          const show = (): void => update([dumped, tables].filter(Boolean).join(' · '), dumpAmount);
          const [dump, fingerprinted] = await Promise.all([
            dumpAtSnapshot(
              pgDump.path,
              snapshot.id,
              dumpDir,
              target,
              { jobs: config.jobs, compression: config.compression },
              previous,
              (d, amount) => {
                dumped = d;
                dumpAmount = amount;
                show();
              },
              signal,
            ),
            (async () => {
              const started = Date.now();
              // As many sessions as pg_dump has jobs: with more jobs the dump gets faster, and the
              // fingerprints, hidden behind the dump on two cores, must keep up with it.
              const helpers: pg.Client[] = [];
              try {
                const fingerprints = await computeFingerprints(snapshot.client, {
                  helpers: () =>
                    joinSnapshotSessions(
                      target,
                      snapshot.id,
                      Math.max(2, config.jobs) - 1,
                      helpers,
                    ),
                  contentMethod: 'fastest',
                  onTable: (done, total) => {
                    signal?.throwIfAborted();
                    tables = `${done}/${total} tables fingerprinted`;
                    show();
                  },
                });
                return { fingerprints, ms: Date.now() - started };
              } finally {
                await Promise.all(helpers.map((h) => h.end().catch(() => undefined)));
              }
            })(),
          ]);
          return { dump, fingerprinted };
        },
      );

      const snapshotMs = Date.now() - snapshotStarted;
      signal?.throwIfAborted();
      const checksumStarted = Date.now();
      const files = await progress.task('Checksum the dump', async (update) =>
        checksumStaging(source.dir, update),
      );
      const checksumMs = Date.now() - checksumStarted;
      signal?.throwIfAborted();
      const manifest: Manifest = {
        format: MANIFEST_FORMAT,
        id,
        createdAt: createdAt.toISOString(),
        completedAt: now().toISOString(),
        target: { ...identity, described: describeTarget(target) },
        snapshot: { id: snapshot.id, xmin: snapshot.xmin, xmax: snapshot.xmax, counters },
        tools: {
          pgDump: { path: pgDump.path, version: pgDump.version },
          lifeboat: LIFEBOAT_VERSION,
        },
        dump: {
          format: 'directory',
          jobs: config.jobs,
          durationMs: dump.durationMs,
          bytes: dump.bytes,
          ...(config.compression === undefined ? {} : { compression: config.compression }),
          sourceBytes,
        },
        fingerprintMs: fingerprinted.ms,
        files,
        fingerprints: fingerprinted.fingerprints,
        needs,
      };
      const copies: CopyOutcome[] = [...source.failures];
      if (source.primary) {
        await writeManifest(source.primary.writer, manifest, config.signingKey);
        await pausePoint('backup:before-publish');
        const published = await publishPrimary(source.primary.dest, source.primary.writer);
        if (!published.ok)
          throw new StorageError(
            `Backup ${id} could not be published in ${published.destination}.`,
            {
              details: [published.error ?? ''],
            },
          );
        copies.push(published);
      }
      const copiesStarted = Date.now();
      const done = new Set(copies.map((c) => c.destination));
      const sourceDir = copies.find((c) => c.ok)?.location ?? source.dir;
      for (const dest of config.destinations.filter((d) => !done.has(d.name))) {
        if (signal?.aborted) {
          // The published copy is whole and kept; the copies not made are said.
          throw new InterruptedError(
            `Interrupted: backup ${id} is stored in ${
              copies
                .filter((c) => c.ok)
                .map((c) => c.destination)
                .join(', ') || 'no destination'
            }, but its copies to ${config.destinations
              .filter((d) => !copies.some((c) => c.destination === d.name && c.ok))
              .map((d) => d.name)
              .join(', ')} were stopped and removed; it is not verified.`,
          );
        }
        copies.push(
          await progress.task(`Copy to ${dest.name} (${describeDestination(dest)})`, (update) =>
            storeCopy({
              sourceDir,
              dest,
              manifest,
              key: config.signingKey,
              update,
              warn: (m) => progress.warn(m),
              signal,
            }),
          ),
        );
      }
      const stored = copies.filter((c) => c.ok).length;
      if (stored === 0) {
        throw new StorageError(`Backup ${id} could not be stored in any destination.`, {
          details: copies.map((c) => `${c.destination}: ${c.error}`),
        });
      }
      if (stored < config.copies) {
        throw new StorageError(
          `Backup ${id} is held in ${stored} destination(s) but the policy requires ${config.copies}.`,
          { details: copies.filter((c) => !c.ok).map((c) => `${c.destination}: ${c.error}`) },
        );
      }
      for (const c of copies.filter((c) => !c.ok)) progress.warn(`${c.destination}: ${c.error}`);
      const phases: BackupPhases = {
        dumpMs: dump.durationMs,
        fingerprintMs: fingerprinted.ms,
        snapshotMs,
        checksumMs,
        copiesMs: Date.now() - copiesStarted,
      };
      return { id, manifest, copies, phases };
    } catch (err) {
      await source.primary?.writer.abort();
      throw err;
    } finally {
      if (!source.primary) await removeTree(source.dir);
    }
  });
}

interface DumpSource {
  /** Where pg_dump writes: the staging directory of `primary`, or a private temporary one. */
  dir: string;
  /** The first plain local destination that accepted a staging directory. */
  primary?: { dest: Destination; writer: CopyWriter };
  failures: CopyOutcome[];
}

/**
 * pg_dump's directory format needs a directory: the first plain (unencrypted)
 * local destination receives the dump itself and is published by a rename.
 * Without one, the dump is staged in a private temporary directory and every
 * destination receives a streamed copy; the staging is removed afterwards.
 */
async function openSource(destinations: Destination[], id: string): Promise<DumpSource> {
  const failures: CopyOutcome[] = [];
  for (const dest of destinations.filter((d) => d.kind === 'local' && !d.encrypt)) {
    try {
      const writer = await openRepo(dest).begin(id);
      return { dir: writer.dir!, primary: { dest, writer }, failures };
    } catch (err) {
      failures.push({ destination: dest.name, ok: false, error: storageReason(dest, err) });
    }
  }
  if (failures.length === destinations.length) {
    throw new StorageError('No destination can be written to.', {
      details: failures.map((f) => `${f.destination}: ${f.error}`),
    });
  }
  return { dir: await mkdtemp(path.join(os.tmpdir(), `lifeboat-${id}-`)), failures };
}

async function dumpAtSnapshot(
  pgDump: string,
  snapshotId: string,
  dumpDir: string,
  target: Target,
  how: { jobs: number; compression: number | undefined },
  previous: { bytes: number; durationMs: number } | undefined,
  update: (detail: string, amount?: Amount) => void,
  signal: AbortSignal | undefined,
): Promise<{ durationMs: number; bytes: number }> {
  const started = Date.now();
  const timer = setInterval(() => {
    void directorySize(dumpDir).then((n) =>
      update(
        dumpProgress(n, Date.now() - started, previous),
        previous ? { done: n, total: previous.bytes } : undefined,
      ),
    );
  }, 500);
  let result;
  try {
    result = await runPgTool(
      pgDump,
      [
        '--format=directory',
        `--jobs=${how.jobs}`,
        ...(how.compression === undefined ? [] : [`--compress=${how.compression}`]),
        `--snapshot=${snapshotId}`,
        `--file=${dumpDir}`,
        '--no-password',
        dbnameArgument(target.database),
      ],
      target,
      undefined,
      signal,
    );
  } finally {
    clearInterval(timer);
  }
  if (!result.ok) {
    const where = path.dirname(dumpDir);
    // A parallel pg_dump may report only "a worker process died"; the file system tells the truth.
    if (isNoSpace(result) || (await freeBytes(where)) < 1 << 20) {
      throw new StorageError(
        `The disk holding ${where} filled up during the dump (no space left on device); the partial backup was removed and nothing was listed.`,
        { details: result.errorLines },
      );
    }
    throw new ToolError(
      `pg_dump failed (exit ${result.exitCode ?? result.signal}); no backup was listed.`,
      { details: result.errorLines },
    );
  }
  return { durationMs: result.durationMs, bytes: await directorySize(dumpDir) };
}

/** Bytes written, and against the last backup of this target an estimate of what is left. */
export function dumpProgress(
  bytes: number,
  elapsedMs: number,
  previous: { bytes: number; durationMs: number } | undefined,
): string {
  if (!previous || previous.bytes <= 0 || bytes <= 0) return `${formatBytes(bytes)} written`;
  const share = Math.min(bytes / previous.bytes, 0.99);
  const leftMs = (elapsedMs / share) * (1 - share);
  return `${formatBytes(bytes)} of ~${formatBytes(previous.bytes)} (last backup), about ${formatDuration(leftMs)} left`;
}

/** The newest earlier backup of this target: the estimate for this one's size and time. */
async function previousDump(
  config: Config,
  identity: TargetIdentity,
): Promise<{ bytes: number; durationMs: number } | undefined> {
  const entries = await readCatalog(config.destinations, config.signingKey).catch(() => []);
  const manifest = latestFor(entries, identity)?.manifest;
  return manifest
    ? { bytes: manifest.dump.bytes, durationMs: manifest.dump.durationMs }
    : undefined;
}

async function freeBytes(dir: string): Promise<number> {
  const fs = await statfs(dir).catch(() => undefined);
  return fs ? fs.bavail * fs.bsize : Number.MAX_SAFE_INTEGER;
}

/** SHA-256 of every dump file, plus a SHA256SUMS that `sha256sum -c` can check by hand. */
async function checksumStaging(
  staging: string,
  update: (detail: string) => void,
): Promise<FileEntry[]> {
  const names = await listFiles(path.join(staging, DUMP_DIR));
  const files: FileEntry[] = [];
  for (const name of names) {
    const rel = `${DUMP_DIR}/${name}`;
    files.push({ path: rel, ...(await hashFile(path.join(staging, rel))) });
    update(`${files.length}/${names.length} files`);
  }
  const sums = files.map((f) => checksumLine(f.sha256, f.path)).join('');
  await writeFile(path.join(staging, 'SHA256SUMS'), sums, { mode: PRIVATE_FILE });
  files.push({ path: 'SHA256SUMS', ...(await hashFile(path.join(staging, 'SHA256SUMS'))) });
  return files;
}

async function publishPrimary(dest: Destination, writer: CopyWriter): Promise<CopyOutcome> {
  try {
    return { destination: dest.name, ok: true, location: await writer.commit() };
  } catch (err) {
    await writer.abort();
    return { destination: dest.name, ok: false, error: storageReason(dest, err) };
  }
}
