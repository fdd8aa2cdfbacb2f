import * as z from 'zod';
import {
  hmacHex,
  hmacMatches,
  isBoundTo,
  manifestProblems,
  manifestShapeProblem,
  manifestText,
  sha256Hex,
  type FileEntry,
  type Manifest,
  type VerificationRecord,
} from './manifest.js';
import { AGE_SUFFIX } from './age.js';
import { isStoredFile } from './copy-paths.js';
import { hashStream } from '../files.js';
import type { Destination } from './storage/destination.js';
import { openRepo } from './storage/open.js';
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
 *   <id>/drills/            one JSON record per disaster-recovery drill from this copy
 *
 * A copy is listed only once complete: see LocalRepo and S3Repo for how each
 * store guarantees that.
 */
export const DUMP_DIR = 'dump';
export const VERIFICATIONS_DIR = 'verifications';
export const REHEARSALS_DIR = 'rehearsals';
export const DRILLS_DIR = 'drills';
const METADATA_FILES = new Set([
  'manifest.json',
  'manifest.sha256',
  'manifest.hmac',
  'copy.json',
  'copy.sha256sums',
  'copy.hmac',
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
  const text = manifestText(manifest);
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
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { problems: [...problems, 'manifest.json is not valid JSON'] };
  }
  const shape = manifestShapeProblem(parsed);
  if (shape) return { problems: [...problems, shape] };
  const manifest = parsed as Manifest;
  // Returned with its problems, so errors can name the backup; never trusted then.
  return { manifest, problems: [...problems, ...manifestProblems(manifest, copy.id)] };
}

const layoutShape = z.object({
  format: z.literal('lifeboat-copy/1'),
  encryption: z.object({ format: z.literal('age'), recipients: z.array(z.string()) }).optional(),
  files: z.array(
    z.object({
      path: z.string(),
      size: z.number().int().nonnegative(),
      sha256: z.string().regex(/^[0-9a-f]{64}$/),
      etag: z.string().optional(),
    }),
  ),
});

/**
 * copy.json must list exactly the manifest's files, as stored (`.age` when
 * encrypted; the same sizes and checksums when not): the manifest says what
 * the backup is, copy.json only how this copy holds it.
 */
function layoutProblems(layout: CopyLayout, manifest: Manifest): string[] {
  const encrypted = layout.encryption !== undefined;
  const problems: string[] = [];
  const expected = new Map(
    manifest.files.map((f) => [encrypted ? `${f.path}${AGE_SUFFIX}` : f.path, f]),
  );
  const listed = new Set<string>();
  for (const f of layout.files) {
    if (!isStoredFile(f.path, encrypted)) {
      problems.push(`copy.json names a file outside the copy: ${f.path}`);
      continue;
    }
    listed.add(f.path);
    const named = expected.get(f.path);
    if (!named) problems.push(`copy.json lists ${f.path}, which the manifest does not name`);
    else if (!encrypted && (named.size !== f.size || named.sha256 !== f.sha256))
      problems.push(`copy.json describes ${f.path} otherwise than the manifest`);
  }
  for (const name of expected.keys())
    if (!listed.has(name))
      problems.push(`copy.json does not list ${name}, which the manifest names`);
  return problems;
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
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { problems: ['copy.json is not valid JSON'] };
  }
  const shape = layoutShape.safeParse(parsed);
  if (!shape.success) return { problems: ['copy.json is not a lifeboat copy layout'] };
  const layout: CopyLayout = shape.data;
  const problems = layoutProblems(layout, manifest);
  return problems.length > 0 ? { problems } : { layout, problems };
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
          !f.path.startsWith(`${DRILLS_DIR}/`) &&
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
export type RecordFolder = typeof VERIFICATIONS_DIR | typeof REHEARSALS_DIR | typeof DRILLS_DIR;

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

/**
 * Records of one kind about the backup whose manifest is given, oldest first.
 * A record whose signature fails, or that is bound to another backup or
 * manifest (see isBoundTo), is left out.
 */
export async function readRecords<T extends { at: string }>(
  copy: StoredCopy,
  folder: RecordFolder,
  manifest: Manifest,
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
      const record = JSON.parse(text) as T;
      if (isBoundTo(record, manifest)) out.push(record);
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

export function readVerifications(
  copy: StoredCopy,
  manifest: Manifest,
  key?: string,
): Promise<VerificationRecord[]> {
  return readRecords<VerificationRecord>(copy, VERIFICATIONS_DIR, manifest, key);
}

export function removeCopy(copy: StoredCopy): Promise<void> {
  return copy.repo.remove(copy.id);
}
