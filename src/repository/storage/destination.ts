/**
 * Where copies go, as the config names it: a directory, or a bucket and
 * prefix in an S3-compatible store. The config is parsed into these once;
 * the stores are opened from them (see open.ts).
 */
export type Destination = LocalDestination | S3Destination;

interface DestinationBase {
  name: string;
  /** Encrypt this destination's copies to these age recipients (recipientsFile is read at backup time). */
  encrypt?: { recipients: string[]; recipientsFile?: string };
  /** Retention for this destination; default retention.keep. */
  keep?: number;
}

export interface LocalDestination extends DestinationBase {
  kind: 'local';
  path: string;
}

export interface S3Destination extends DestinationBase {
  kind: 's3';
  s3: S3Location;
}

/** An S3-compatible store: `s3://bucket/prefix/<id>/...`. */
export interface S3Location {
  bucket: string;
  /** '' or a prefix ending in '/'. */
  prefix: string;
  endpoint?: string;
  region?: string;
  forcePathStyle?: boolean;
  /** How long a connection may stay silent before the request fails (default 60 s). */
  timeoutMs?: number;
}

export function parseS3Url(url: string): { bucket: string; prefix: string } | undefined {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url);
  if (!m || !m[1]) return undefined;
  const prefix = m[2]!.replace(/^\/+|\/+$/g, '');
  return { bucket: m[1], prefix: prefix ? `${prefix}/` : '' };
}

/** Where a destination is, for people: a directory or an s3:// URL (never credentials). */
export function describeDestination(dest: Destination): string {
  return dest.kind === 's3' ? `s3://${dest.s3.bucket}/${dest.s3.prefix}` : dest.path;
}
