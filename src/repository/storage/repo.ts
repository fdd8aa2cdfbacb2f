import type { Readable } from 'node:stream';

/**
 * One destination's storage, as the backup code sees it: copies named by
 * backup id, each a set of files addressed by relative path. A local
 * directory and an S3 bucket implement it; everything above this interface
 * (manifests, checksums, records, encryption) is shared.
 */
/** The names copies have in a store; anything else there is not a copy. */
export const BACKUP_ID_PATTERN = /^\d{8}T\d{6}(\d{3})?Z-[A-Za-z0-9_]+-[0-9a-f]{4,}$/;

export interface FileStat {
  /** Relative to the copy, with forward slashes. */
  path: string;
  size: number;
  /** The store's own checksum of the object (S3 ETag), when it keeps one. */
  etag?: string;
}

/** What the store holds after a write: read back, or confirmed by the store's checksum. */
export interface StoredBytes {
  size: number;
  sha256: string;
  etag?: string;
}

/**
 * A copy being written. Nothing is listed until `commit`; `abort` removes
 * what was written (and, for S3, every unfinished multipart upload).
 */
export interface CopyWriter {
  /** The staging directory, when the copy is written on this machine (pg_dump writes into it). */
  readonly dir?: string;
  /** `sizeHint`: about how many bytes will come (an object store sizes its upload parts by it). */
  put(
    rel: string,
    body: Readable,
    sizeHint?: number,
    onBytes?: (n: number) => void,
  ): Promise<StoredBytes>;
  putText(rel: string, text: string): Promise<void>;
  /** Make the copy visible to `listIds`; returns its printable location. */
  commit(): Promise<string>;
  abort(): Promise<void>;
}

export interface Repo {
  /** The destination's name in the config. */
  readonly name: string;
  /** An object store elsewhere, as opposed to a directory on this machine. */
  readonly remote: boolean;
  /** Printable, never with credentials: a path or s3://bucket/prefix/. */
  readonly location: string;
  /** Bytes per upload part, for a store that uploads a file in parts. */
  readonly uploadPartSize?: number;
  copyLocation(id: string): string;
  /** Ids of complete (published) copies, sorted. */
  listIds(): Promise<string[]>;
  /** Start writing a copy; first removes what crashed writers left behind. */
  begin(id: string): Promise<CopyWriter>;
  /** Every file of a copy (or below `under`, a folder ending in '/'), sorted by path; never the store's own bookkeeping. */
  list(id: string, under?: string): Promise<FileStat[]>;
  head(id: string, rel: string): Promise<FileStat | undefined>;
  read(id: string, rel: string): Promise<Readable>;
  readText(id: string, rel: string): Promise<string | undefined>;
  /** Small files beside a published copy (verification records); atomic where the store allows. */
  writeText(id: string, rel: string, text: string): Promise<void>;
  /** Remove a copy so that a crash midway never leaves it listed. */
  remove(id: string): Promise<void>;
  /** The copy's directory when it is on this machine, so pg_restore can read it in place. */
  localDir(id: string): string | undefined;
  /** Remove what writers that are gone left behind; returns what was removed. */
  cleanStale(): Promise<string[]>;
}
