import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import * as z from 'zod';
import type { ClusterNeeds } from '../cluster-needs.js';
import type { Difference, Fingerprints } from '../fingerprint.js';
import { isCopyFile } from './copy-paths.js';
import type { TargetIdentity, WriteCounters } from '../identity.js';

export const MANIFEST_FORMAT = 'lifeboat-backup/1';

export interface FileEntry {
  /** Relative to the backup directory, with forward slashes. */
  path: string;
  size: number;
  sha256: string;
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  id: string;
  createdAt: string;
  completedAt: string;
  target: TargetIdentity & { described: string };
  snapshot: { id: string; xmin: string; xmax: string; counters: WriteCounters };
  tools: { pgDump: { path: string; version: string }; lifeboat: string };
  dump: {
    format: 'directory';
    jobs: number;
    durationMs: number;
    bytes: number;
    /** The --compress level asked of pg_dump; absent: its default. */
    compression?: number;
    /** Table data in the database when it was dumped (what each phase's time grows with). */
    sourceBytes?: number;
  };
  fingerprintMs: number;
  files: FileEntry[];
  fingerprints: Fingerprints;
  /** What the database needs from its cluster (absent in manifests written before it was recorded). */
  needs?: ClusterNeeds;
}

/** The result of one verification, stored beside the manifest in every copy verified. */
export interface VerificationRecord extends BoundRecord {
  at: string;
  /** The destination whose copy was restored. */
  restoredFrom: string;
  ok: boolean;
  durationMs: number;
  restoreMs: number;
  /** Fingerprinting the restored copy (absent in records written before it was kept). */
  fingerprintMs?: number;
  /** Where the copy was restored, and the role that restored it. */
  scratch: { server: string; database: string; role?: string };
  /** Every comparison made, so a reviewer can see what was proved. */
  compared: { tables: number; sequences: number; largeObjects: number; schema: boolean };
  differences: { kind: string; object: string; expected: string; found: string }[];
  error?: string;
}

/**
 * What binds a record (a verification, a rehearsal) to its backup: the id and
 * the manifest's SHA-256, inside the signed text. A record copied beside
 * another backup's manifest proves nothing there.
 */
export interface BoundRecord {
  backupId: string;
  manifestSha256: string;
}

/**
 * A dress rehearsal: the runbook's steps, then its whole rollback, on a copy
 * restored from the verified backup, before the real database is touched.
 * Each step's duration and the locks it took forecast the real run; the
 * rollback must bring the copy back to the backup's fingerprints.
 */
export interface RehearsalRecord extends BoundRecord {
  at: string;
  runbook: string;
  runbookChecksum: string;
  passed: boolean;
  failedStep?: string;
  error?: string;
  steps: {
    id: string;
    outcome: 'applied' | 'already-applied' | 'failed' | 'not-run';
    durationMs?: number;
    locks?: string[];
  }[];
  rollback: { complete: boolean; undone: string[]; differences: Difference[] };
  /** How the real target changed while the rehearsal ran (it must not): a step reached it. */
  targetChanged?: string;
  durationMs: number;
}

/**
 * A disaster-recovery drill: the backup restored from one destination alone,
 * as if the source and every other copy were gone, and proved. Its times are
 * the recovery time a real disaster would take; the backup's age is the data
 * it would lose.
 */
export interface DrillRecord extends BoundRecord {
  at: string;
  passed: boolean;
  /** The destination restored from, and whether it is off-site. */
  from: { destination: string; remote: boolean };
  /** For an encrypted copy, the recipients it is encrypted to and where the key came from (never the key). */
  encryption?: { recipients: string[]; identityFrom: string };
  /** The server the copy was restored onto, without credentials, and the database there. */
  onto: { server: string; database: string };
  /** What the source looked like: its database and server as the manifest names them. */
  source: string;
  /** How old the backup was when the drill started: the writes a real disaster would lose. */
  backupAgeMs: number;
  /** Recovery time, from the first read of the copy to the proof. */
  durationMs: number;
  phases: { name: string; ms: number }[];
  differences: VerificationRecord['differences'];
  error?: string;
}

/** manifest.json as lifeboat writes it; its SHA-256 is what manifest.sha256 holds. */
export function manifestText(manifest: Manifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

export function manifestDigest(manifest: Manifest): string {
  return sha256Hex(manifestText(manifest));
}

export function bindingOf(manifest: Manifest): BoundRecord {
  return { backupId: manifest.id, manifestSha256: manifestDigest(manifest) };
}

/** A record counts for a backup only when it names it and its manifest, and was made after it. */
export function isBoundTo(
  record: Partial<BoundRecord> & { at?: unknown },
  manifest: Manifest,
): boolean {
  return (
    record.backupId === manifest.id &&
    record.manifestSha256 === manifestDigest(manifest) &&
    typeof record.at === 'string' &&
    Date.parse(record.at) >= Date.parse(manifest.createdAt)
  );
}

const fileEntry = z.object({
  path: z.string(),
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

/** The parts of a manifest that decide what is read and written; the rest is only compared. */
const manifestShape = z.looseObject({
  format: z.literal(MANIFEST_FORMAT),
  id: z.string(),
  createdAt: z.iso.datetime(),
  tools: z.looseObject({ pgDump: z.looseObject({ version: z.string().regex(/^\d+(\.\d+)*/) }) }),
  files: z.array(fileEntry),
});

/** Why parsed JSON is not a manifest lifeboat could have written; undefined when it is. */
export function manifestShapeProblem(parsed: unknown): string | undefined {
  const shape = manifestShape.safeParse(parsed);
  if (shape.success) return undefined;
  const issue = shape.error.issues[0]!;
  return `manifest.json is not a lifeboat manifest (${issue.path.join('.') || 'top level'}: ${issue.message})`;
}

/**
 * Why a manifest read from a store cannot be trusted to name its files:
 * another backup's id, or a file name that is not a plain file of the copy.
 */
export function manifestProblems(manifest: Manifest, storedAs: string): string[] {
  const problems: string[] = [];
  if (manifest.id !== storedAs)
    problems.push(`manifest.json is of backup ${manifest.id}, but it is stored as ${storedAs}`);
  for (const f of manifest.files)
    if (!isCopyFile(f.path))
      problems.push(`manifest.json names a file outside the copy: ${f.path}`);
  return problems;
}

export function sha256Hex(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

/** `sha256sum -c` reads this, so a copy can be checked without lifeboat. */
export function checksumLine(sha256: string, file: string): string {
  return `${sha256}  ${file}\n`;
}

export function hmacHex(key: string, text: string | Buffer): string {
  return createHmac('sha256', key).update(text).digest('hex');
}

export function hmacMatches(key: string, text: string | Buffer, expectedHex: string): boolean {
  const actual = Buffer.from(hmacHex(key, text), 'hex');
  const expected = Buffer.from(expectedHex.trim(), 'hex');
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** Ids sort by time, to the millisecond: 20261121T234400123Z-appdb-3f9a1c. */
export function newBackupId(now: Date, database: string, random: string): string {
  const stamp = now.toISOString().replace(/[-:.]/g, '');
  const db = database.replace(/[^A-Za-z0-9_]+/g, '_').slice(0, 40) || 'db';
  return `${stamp}-${db}-${random}`;
}
