import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { Fingerprints } from './fingerprint.js';
import type { TargetIdentity, WriteCounters } from './identity.js';

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
  dump: { format: 'directory'; jobs: number; durationMs: number; bytes: number };
  fingerprintMs: number;
  files: FileEntry[];
  fingerprints: Fingerprints;
}

/** The result of one verification, stored beside the manifest in every copy verified. */
export interface VerificationRecord {
  backupId: string;
  at: string;
  /** The destination whose copy was restored. */
  restoredFrom: string;
  ok: boolean;
  durationMs: number;
  restoreMs: number;
  scratch: { server: string; database: string };
  /** Every comparison made, so a reviewer can see what was proved. */
  compared: { tables: number; sequences: number; largeObjects: number; schema: boolean };
  differences: { kind: string; object: string; expected: string; found: string }[];
  error?: string;
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

export const BACKUP_ID_PATTERN = /^\d{8}T\d{6}(\d{3})?Z-[A-Za-z0-9_]+-[0-9a-f]{4,}$/;
