import { hostname } from 'node:os';
import { mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Destination } from './config.js';
import {
  BACKUP_ID_PATTERN,
  hmacHex,
  hmacMatches,
  sha256Hex,
  type Manifest,
  type VerificationRecord,
} from './manifest.js';
import {
  exists,
  fsyncPath,
  hashFile,
  listFiles,
  removeTree,
  writeFileAtomic,
} from './storage/files.js';

/**
 * The layout of a backup in a local destination:
 *
 *   <dest>/<id>/manifest.json      what was dumped, files with SHA-256, fingerprints
 *   <dest>/<id>/manifest.sha256    `sha256sum -c` line for manifest.json
 *   <dest>/<id>/manifest.hmac      HMAC-SHA256 of manifest.json, when a key is configured
 *   <dest>/<id>/SHA256SUMS         every dump file, for `sha256sum -c`
 *   <dest>/<id>/dump/              pg_dump --format=directory
 *   <dest>/<id>/verifications/     one JSON record per verification
 *   <dest>/<id>/rehearsals/        one JSON record per rehearsal of a runbook on this backup
 *
 * A backup is written under `.partial-<id>` and renamed into place only when
 * complete and synced, so a listed backup is never partial.
 */
export const DUMP_DIR = 'dump';
export const VERIFICATIONS_DIR = 'verifications';
export const REHEARSALS_DIR = 'rehearsals';
const METADATA_FILES = new Set(['manifest.json', 'manifest.sha256', 'manifest.hmac']);
const PARTIAL_PREFIX = '.partial-';

export interface StoredCopy {
  destination: string;
  id: string;
  dir: string;
}

export function publishedDir(dest: Destination, id: string): string {
  return path.join(dest.path, id);
}

export function stagingDir(dest: Destination, id: string): string {
  return path.join(dest.path, `${PARTIAL_PREFIX}${id}`);
}

/** Create the staging directory, recording who writes it so a crash can be cleaned up later. */
export async function startStaging(dest: Destination, id: string): Promise<string> {
  await mkdir(dest.path, { recursive: true });
  await cleanStalePartials(dest);
  const dir = stagingDir(dest, id);
  await mkdir(dir);
  await writeFile(
    path.join(dir, '.owner'),
    JSON.stringify({ host: hostname(), pid: process.pid, at: new Date().toISOString() }),
  );
  return dir;
}

/** Remove `.partial-*` directories left by a backup process that is gone. */
export async function cleanStalePartials(dest: Destination): Promise<string[]> {
  const removed: string[] = [];
  let names: string[];
  try {
    names = await readdir(dest.path);
  } catch {
    return removed;
  }
  for (const name of names.filter((n) => n.startsWith(PARTIAL_PREFIX))) {
    const dir = path.join(dest.path, name);
    const owner = await readFile(path.join(dir, '.owner'), 'utf8')
      .then((t) => JSON.parse(t) as { host: string; pid: number })
      .catch(() => undefined);
    const alive = owner && owner.host === hostname() && processAlive(owner.pid);
    const foreign = owner && owner.host !== hostname();
    if (!alive && !foreign) {
      await removeTree(dir);
      removed.push(name);
    }
  }
  return removed;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Atomically publish a complete staging directory under its final name. */
export async function publish(dest: Destination, id: string): Promise<StoredCopy> {
  const from = stagingDir(dest, id);
  const to = publishedDir(dest, id);
  await removeTree(path.join(from, '.owner'));
  await fsyncPath(from);
  await rename(from, to);
  await fsyncPath(dest.path);
  return { destination: dest.name, id, dir: to };
}

export async function writeManifest(dir: string, manifest: Manifest, key?: string): Promise<void> {
  const text = `${JSON.stringify(manifest, null, 2)}\n`;
  await writeFileAtomic(path.join(dir, 'manifest.json'), text);
  await writeFileAtomic(path.join(dir, 'manifest.sha256'), `${sha256Hex(text)}  manifest.json\n`);
  if (key) await writeFileAtomic(path.join(dir, 'manifest.hmac'), `${hmacHex(key, text)}\n`);
}

export async function listCopies(dest: Destination): Promise<StoredCopy[]> {
  let names: string[];
  try {
    names = await readdir(dest.path);
  } catch {
    return [];
  }
  const copies: StoredCopy[] = [];
  for (const name of names.sort()) {
    if (!BACKUP_ID_PATTERN.test(name)) continue;
    const dir = path.join(dest.path, name);
    if (await exists(path.join(dir, 'manifest.json')))
      copies.push({ destination: dest.name, id: name, dir });
  }
  return copies;
}

export interface ManifestRead {
  manifest?: Manifest;
  problems: string[];
}

/** Read a copy's manifest and prove it is the one written (hash, and HMAC when keyed). */
export async function readManifest(dir: string, key?: string): Promise<ManifestRead> {
  let text: string;
  try {
    text = await readFile(path.join(dir, 'manifest.json'), 'utf8');
  } catch {
    return { problems: ['manifest.json is missing'] };
  }
  const problems: string[] = [];
  const recorded = await readFile(path.join(dir, 'manifest.sha256'), 'utf8').catch(() => undefined);
  if (recorded === undefined) problems.push('manifest.sha256 is missing');
  else if (recorded.trim().split(/\s+/)[0] !== sha256Hex(text))
    problems.push('manifest.json does not match manifest.sha256 (the manifest was changed)');
  if (key) {
    const mac = await readFile(path.join(dir, 'manifest.hmac'), 'utf8').catch(() => undefined);
    if (mac === undefined)
      problems.push('manifest.hmac is missing but a signing key is configured');
    else if (!hmacMatches(key, text, mac))
      problems.push('manifest.json is not signed by the configured key (manifest.hmac differs)');
  }
  try {
    const manifest = JSON.parse(text) as Manifest;
    return { manifest, problems };
  } catch {
    return { problems: [...problems, 'manifest.json is not valid JSON'] };
  }
}

/** Compare the files on disk with the manifest: missing, extra, resized and changed files. */
export async function checkFiles(
  dir: string,
  manifest: Manifest,
  onFile?: (done: number, total: number) => void,
): Promise<string[]> {
  const problems: string[] = [];
  const expected = new Map(manifest.files.map((f) => [f.path, f]));
  const present = (await listFiles(dir)).filter(
    (f) =>
      !METADATA_FILES.has(f) &&
      !f.startsWith(`${VERIFICATIONS_DIR}/`) &&
      !f.startsWith(`${REHEARSALS_DIR}/`) &&
      !f.includes('.tmp-'),
  );
  for (const f of present)
    if (!expected.has(f)) problems.push(`${f}: extra file not in the manifest`);
  let done = 0;
  for (const entry of manifest.files) {
    const file = path.join(dir, entry.path);
    const info = await stat(file).catch(() => undefined);
    if (!info) problems.push(`${entry.path}: missing`);
    else if (info.size !== entry.size)
      problems.push(`${entry.path}: size ${info.size} bytes, manifest says ${entry.size}`);
    else if ((await hashFile(file)).sha256 !== entry.sha256)
      problems.push(`${entry.path}: SHA-256 differs from the manifest (content changed)`);
    onFile?.(++done, manifest.files.length);
  }
  return problems;
}

/** Records kept beside a manifest, one JSON file each (signed when a key is configured). */
export type RecordFolder = typeof VERIFICATIONS_DIR | typeof REHEARSALS_DIR;

export async function writeRecord(
  dir: string,
  folder: RecordFolder,
  record: { at: string },
  key?: string,
): Promise<void> {
  const where = path.join(dir, folder);
  await mkdir(where, { recursive: true });
  const name = `${record.at.replace(/[-:.]/g, '')}-${process.pid}`;
  const text = `${JSON.stringify(record, null, 2)}\n`;
  await writeFileAtomic(path.join(where, `${name}.json`), text);
  if (key) await writeFileAtomic(path.join(where, `${name}.hmac`), `${hmacHex(key, text)}\n`);
}

/** Records of one kind, oldest first; a record whose signature fails is left out. */
export async function readRecords<T extends { at: string }>(
  dir: string,
  folder: RecordFolder,
  key?: string,
): Promise<T[]> {
  const where = path.join(dir, folder);
  let names: string[];
  try {
    names = (await readdir(where)).filter((n) => n.endsWith('.json')).sort();
  } catch {
    return [];
  }
  const out: T[] = [];
  for (const name of names) {
    try {
      const text = await readFile(path.join(where, name), 'utf8');
      if (key) {
        const mac = await readFile(path.join(where, name.replace(/\.json$/, '.hmac')), 'utf8');
        if (!hmacMatches(key, text, mac)) continue;
      }
      out.push(JSON.parse(text) as T);
    } catch {
      // An unreadable or unsigned record proves nothing; it is ignored.
    }
  }
  return out.sort((a, b) => a.at.localeCompare(b.at));
}

export function writeVerification(
  dir: string,
  record: VerificationRecord,
  key?: string,
): Promise<void> {
  return writeRecord(dir, VERIFICATIONS_DIR, record, key);
}

export function readVerifications(dir: string, key?: string): Promise<VerificationRecord[]> {
  return readRecords<VerificationRecord>(dir, VERIFICATIONS_DIR, key);
}

export async function removeCopy(copy: StoredCopy): Promise<void> {
  // Rename first so a crash mid-delete never leaves a listed, half-deleted backup.
  const doomed = path.join(path.dirname(copy.dir), `${PARTIAL_PREFIX}deleting-${copy.id}`);
  await rename(copy.dir, doomed);
  await removeTree(doomed);
}
