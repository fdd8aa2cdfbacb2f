import type { Destination } from './config.js';
import {
  hmacHex,
  hmacMatches,
  sha256Hex,
  type FileEntry,
  type Manifest,
  type VerificationRecord,
} from './manifest.js';
import { hashStream } from './storage/files.js';
import { openRepo } from './storage/open.js';
import { WRITER_MARKER } from './storage/s3-repo.js';
import type { CopyWriter, Repo } from './storage/repo.js';

/**
 * The layout of a backup copy, the same in a directory and in an object store:
 *
 *   <id>/manifest.json      what was dumped, files with SHA-256, fingerprints
 *   <id>/manifest.sha256    `sha256sum -c` line for manifest.json
 *   <id>/manifest.hmac      HMAC-SHA256 of manifest.json, when a key is configured
 *   <id>/SHA256SUMS         every dump file, for `sha256sum -c`
 *   <id>/dump/              pg_dump --format=directory
 *   <id>/copy.json          how this copy is stored, when not as the manifest says
 *                           (encrypted: each file as <path>.age; the stored files'
 *                           sizes, SHA-256 and the store's ETags)
 *   <id>/copy.sha256sums    `sha256sum -c` lines for the stored files of such a copy
 *   <id>/copy.hmac          HMAC-SHA256 of copy.json, when a key is configured
 *   <id>/verifications/     one JSON record per verification
 *   <id>/rehearsals/        one JSON record per rehearsal of a runbook on this backup
 *
 * A copy is listed only once complete: see LocalRepo and S3Repo for how each
 * store guarantees that.
 */
export const DUMP_DIR = 'dump';
export const VERIFICATIONS_DIR = 'verifications';
export const REHEARSALS_DIR = 'rehearsals';
const METADATA_FILES = new Set([
  'manifest.json',
  'manifest.sha256',
  'manifest.hmac',
  'copy.json',
  'copy.sha256sums',
  'copy.hmac',
  WRITER_MARKER,
]);

export interface StoredCopy {
  destination: string;
  id: string;
  /** Printable: a directory or an s3:// URL. */
  location: string;
  remote: boolean;
  repo: Repo;
}

/** How a copy holds its files, from copy.json; a copy without one holds them as the manifest says. */
export interface CopyLayout {
  format: 'lifeboat-copy/1';
  encryption?: { format: 'age'; recipients: string[] };
  /** The stored files: paths as stored, with their stored sizes and SHA-256. */
  files: (FileEntry & { etag?: string })[];
}

export async function listCopies(dest: Destination): Promise<StoredCopy[]> {
  const repo = openRepo(dest);
  return (await repo.listIds()).map((id) => copyOf(repo, id));
}

export function copyOf(repo: Repo, id: string): StoredCopy {
  return {
    destination: repo.name,
    id,
    location: repo.copyLocation(id),
    remote: repo.remote,
    repo,
  };
}

/** manifest.json goes last: in an object store it is what makes the copy listed. */
export async function writeManifest(
  writer: Pick<CopyWriter, 'putText'>,
  manifest: Manifest,
  key?: string,
): Promise<void> {
  const text = `${JSON.stringify(manifest, null, 2)}\n`;
  await writer.putText('manifest.sha256', `${sha256Hex(text)}  manifest.json\n`);
  if (key) await writer.putText('manifest.hmac', `${hmacHex(key, text)}\n`);
  await writer.putText('manifest.json', text);
}

export async function writeLayout(
  writer: Pick<CopyWriter, 'putText'>,
  layout: CopyLayout,
  key?: string,
): Promise<void> {
  const text = `${JSON.stringify(layout, null, 2)}\n`;
  await writer.putText(
    'copy.sha256sums',
    layout.files.map((f) => `${f.sha256}  ${f.path}\n`).join(''),
  );
  if (key) await writer.putText('copy.hmac', `${hmacHex(key, text)}\n`);
  await writer.putText('copy.json', text);
}

export interface ManifestRead {
  manifest?: Manifest;
  problems: string[];
}

/** Read a copy's manifest and prove it is the one written (hash, and HMAC when keyed). */
export async function readManifest(copy: StoredCopy, key?: string): Promise<ManifestRead> {
  const text = await copy.repo.readText(copy.id, 'manifest.json');
  if (text === undefined) return { problems: ['manifest.json is missing'] };
  const problems: string[] = [];
  const recorded = await copy.repo.readText(copy.id, 'manifest.sha256');
  if (recorded === undefined) problems.push('manifest.sha256 is missing');
  else if (recorded.trim().split(/\s+/)[0] !== sha256Hex(text))
    problems.push('manifest.json does not match manifest.sha256 (the manifest was changed)');
  if (key) {
    const mac = await copy.repo.readText(copy.id, 'manifest.hmac');
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

/** The copy's layout: its copy.json (checked against copy.hmac when keyed), or the manifest's files. */
export async function readLayout(
  copy: StoredCopy,
  manifest: Manifest,
  key?: string,
): Promise<{ layout?: CopyLayout; problems: string[] }> {
  const text = await copy.repo.readText(copy.id, 'copy.json');
  if (text === undefined)
    return { layout: { format: 'lifeboat-copy/1', files: manifest.files }, problems: [] };
  if (key) {
    const mac = await copy.repo.readText(copy.id, 'copy.hmac');
    if (mac === undefined || !hmacMatches(key, text, mac))
      return { problems: ['copy.json is not signed by the configured key (copy.hmac)'] };
  }
  try {
    return { layout: JSON.parse(text) as CopyLayout, problems: [] };
  } catch {
    return { problems: ['copy.json is not valid JSON'] };
  }
}

/**
 * Compare the stored files with the layout: missing, extra and resized files,
 * then either every byte (`full`) or, for an object store, the store's own
 * checksum (ETag) recorded when the copy was confirmed (`quick`).
 */
export async function checkFiles(
  copy: StoredCopy,
  layout: CopyLayout,
  depth: 'full' | 'quick',
  onFile?: (done: number, total: number) => void,
): Promise<string[]> {
  const problems: string[] = [];
  const expected = new Map(layout.files.map((f) => [f.path, f]));
  const stored = new Map(
    (await copy.repo.list(copy.id))
      .filter(
        (f) =>
          !METADATA_FILES.has(f.path) &&
          !f.path.startsWith(`${VERIFICATIONS_DIR}/`) &&
          !f.path.startsWith(`${REHEARSALS_DIR}/`) &&
          !f.path.includes('.tmp-'),
      )
      .map((f) => [f.path, f]),
  );
  for (const f of stored.keys())
    if (!expected.has(f)) problems.push(`${f}: extra file not in the manifest`);
  let done = 0;
  for (const entry of layout.files) {
    const info = stored.get(entry.path);
    if (!info) problems.push(`${entry.path}: missing`);
    else if (info.size !== entry.size)
      problems.push(`${entry.path}: size ${info.size} bytes, manifest says ${entry.size}`);
    else if (depth === 'quick' && copy.remote && entry.etag) {
      if (info.etag !== entry.etag)
        problems.push(
          `${entry.path}: the store's checksum (ETag) differs from the one confirmed when it was written`,
        );
    } else if (
      (await hashStream(await copy.repo.read(copy.id, entry.path))).sha256 !== entry.sha256
    )
      problems.push(`${entry.path}: SHA-256 differs from the manifest (content changed)`);
    onFile?.(++done, layout.files.length);
  }
  return problems;
}

/** Records kept beside a manifest, one JSON file each (signed when a key is configured). */
export type RecordFolder = typeof VERIFICATIONS_DIR | typeof REHEARSALS_DIR;

export async function writeRecord(
  copy: StoredCopy,
  folder: RecordFolder,
  record: { at: string },
  key?: string,
): Promise<void> {
  const name = `${folder}/${record.at.replace(/[-:.]/g, '')}-${process.pid}`;
  const text = `${JSON.stringify(record, null, 2)}\n`;
  if (key) await copy.repo.writeText(copy.id, `${name}.hmac`, `${hmacHex(key, text)}\n`);
  await copy.repo.writeText(copy.id, `${name}.json`, text);
}

/** Records of one kind, oldest first; a record whose signature fails is left out. */
export async function readRecords<T extends { at: string }>(
  copy: StoredCopy,
  folder: RecordFolder,
  key?: string,
): Promise<T[]> {
  const names = (await copy.repo.list(copy.id, `${folder}/`))
    .map((f) => f.path)
    .filter((n) => n.endsWith('.json'))
    .sort();
  const out: T[] = [];
  for (const name of names) {
    try {
      const text = await copy.repo.readText(copy.id, name);
      if (text === undefined) continue;
      if (key) {
        const mac = await copy.repo.readText(copy.id, name.replace(/\.json$/, '.hmac'));
        if (mac === undefined || !hmacMatches(key, text, mac)) continue;
      }
      out.push(JSON.parse(text) as T);
    } catch {
      // An unreadable or unsigned record proves nothing; it is ignored.
    }
  }
  return out.sort((a, b) => a.at.localeCompare(b.at));
}

export function writeVerification(
  copy: StoredCopy,
  record: VerificationRecord,
  key?: string,
): Promise<void> {
  return writeRecord(copy, VERIFICATIONS_DIR, record, key);
}

export function readVerifications(copy: StoredCopy, key?: string): Promise<VerificationRecord[]> {
  return readRecords<VerificationRecord>(copy, VERIFICATIONS_DIR, key);
}

export function removeCopy(copy: StoredCopy): Promise<void> {
  return copy.repo.remove(copy.id);
}
