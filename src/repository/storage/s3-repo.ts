import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ListObjectsV2CommandOutput, S3Client } from '@aws-sdk/client-s3';
import { hashStream } from '../../files.js';
import type { S3Location } from './destination.js';
import type { CopyWriter, FileStat, Repo, StoredBytes } from './repo.js';
import { BACKUP_ID_PATTERN } from './repo.js';
import { parseWriterMarker, writerIsGone, writerMarker } from './writer-marker.js';

/**
 * A destination in an S3-compatible object store: `s3://bucket/prefix/<id>/...`.
 * S3 has no rename, so a copy becomes listed by its last object: every file
 * is uploaded and confirmed first, then `manifest.json`. A marker object names
 * the writer until then, so a crashed writer's objects (and its unfinished
 * multipart uploads) are cleaned by the next backup to this destination.
 */
const WRITER_MARKER = '.lifeboat-writing';
/**
 * Part size of multipart uploads, S3's smallest: memory stays at about
 * (queue + 2) × part, the part being filled and its copy included.
 */
export const PART_SIZE = 5 << 20;
/** S3 allows 10,000 parts per object; keep a margin for a size that was only an estimate. */
const MAX_PARTS = 9_000;

/**
 * 5 MiB parts, larger only for a file that would otherwise need more parts
 * than S3 allows (above about 44 GiB): then memory grows with the file, by a
 * part size of file size / 9,000.
 */
export function partSizeFor(bytes: number | undefined): number {
  const needed = Math.ceil((bytes ?? 0) / MAX_PARTS);
  return Math.max(PART_SIZE, Math.ceil(needed / (1 << 20)) * (1 << 20));
}
const QUEUE_SIZE = 2;
const DEFAULT_TIMEOUT_MS = 60_000;

type Sdk = typeof import('@aws-sdk/client-s3');

export class S3Repo implements Repo {
  readonly remote = true;
  readonly uploadPartSize = PART_SIZE;
  private sdk?: Promise<{ sdk: Sdk; client: S3Client }>;

  constructor(
    readonly name: string,
    private readonly where: S3Location,
  ) {}

  get location(): string {
    return `s3://${this.where.bucket}/${this.where.prefix}`;
  }

  copyLocation(id: string): string {
    return `${this.location}${id}/`;
  }

  localDir(): undefined {
    return undefined;
  }

  /** The SDK is loaded only when an S3 destination is used: it is large. */
  private connect(): Promise<{ sdk: Sdk; client: S3Client }> {
    // The SDK warns on every start about Node versions its future releases need;
    // the version lifeboat ships with is pinned and supports this one.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.sdk ??= import('@aws-sdk/client-s3').then((sdk) => ({
      sdk,
      client: new sdk.S3Client({
        ...(this.where.endpoint ? { endpoint: this.where.endpoint } : {}),
        region: this.where.region ?? process.env.AWS_REGION ?? 'us-east-1',
        forcePathStyle: this.where.forcePathStyle ?? false,
        // Many S3-compatible stores do not know the newer CRC checksum headers.
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        maxAttempts: 3,
        // A store that stops answering must fail the copy, not hang the backup.
        requestHandler: {
          connectionTimeout: Math.min(this.where.timeoutMs ?? DEFAULT_TIMEOUT_MS, 10_000),
          socketTimeout: this.where.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        },
      }),
    }));
    return this.sdk;
  }

  key(id: string, rel = ''): string {
    return `${this.where.prefix}${id}/${rel}`;
  }

  /** Every page of a listing below a prefix (optionally cut at a delimiter). */
  private async *listPages(
    prefix: string,
    delimiter?: string,
  ): AsyncGenerator<ListObjectsV2CommandOutput> {
    const { sdk, client } = await this.connect();
    let token: string | undefined;
    do {
      const page = await client.send(
        new sdk.ListObjectsV2Command({
          Bucket: this.where.bucket,
          Prefix: prefix,
          Delimiter: delimiter,
          ContinuationToken: token,
        }),
      );
      yield page;
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /** Every key below a prefix, with sizes and ETags. */
  async listKeys(prefix: string): Promise<{ key: string; size: number; etag?: string }[]> {
    const out: { key: string; size: number; etag?: string }[] = [];
    for await (const page of this.listPages(prefix))
      for (const o of page.Contents ?? [])
        if (o.Key) out.push({ key: o.Key, size: o.Size ?? 0, etag: unquote(o.ETag) });
    return out.sort((a, b) => a.key.localeCompare(b.key));
  }

  /** Ids that have at least one object below them, complete or not. */
  private async allIds(): Promise<string[]> {
    const ids: string[] = [];
    for await (const page of this.listPages(this.where.prefix, '/'))
      for (const p of page.CommonPrefixes ?? []) {
        const id = p.Prefix?.slice(this.where.prefix.length).replace(/\/$/, '');
        if (id && BACKUP_ID_PATTERN.test(id)) ids.push(id);
      }
    return ids.sort();
  }

  async listIds(): Promise<string[]> {
    const ids: string[] = [];
    for (const id of await this.allIds()) if (await this.head(id, 'manifest.json')) ids.push(id);
    return ids;
  }

  async begin(id: string): Promise<CopyWriter> {
    await this.cleanStale();
    await this.putObject(this.key(id, WRITER_MARKER), JSON.stringify(writerMarker()));
    return new S3CopyWriter(this, id);
  }

  /** The copy's files; the writer marker is this store's own bookkeeping, never one of them. */
  async list(id: string, under = ''): Promise<FileStat[]> {
    const base = this.key(id);
    return (await this.listKeys(this.key(id, under)))
      .filter((o) => o.key !== this.markerKey(id))
      .map((o) => ({
        path: o.key.slice(base.length),
        size: o.size,
        ...(o.etag ? { etag: o.etag } : {}),
      }));
  }

  async head(id: string, rel: string): Promise<FileStat | undefined> {
    const { sdk, client } = await this.connect();
    try {
      const h = await client.send(
        new sdk.HeadObjectCommand({ Bucket: this.where.bucket, Key: this.key(id, rel) }),
      );
      return {
        path: rel,
        size: h.ContentLength ?? 0,
        ...(h.ETag ? { etag: unquote(h.ETag) } : {}),
      };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async read(id: string, rel: string): Promise<Readable> {
    return this.getObject(this.key(id, rel));
  }

  async getObject(key: string): Promise<Readable> {
    const { sdk, client } = await this.connect();
    const got = await client.send(
      new sdk.GetObjectCommand({ Bucket: this.where.bucket, Key: key }),
    );
    return got.Body as Readable;
  }

  async readText(id: string, rel: string): Promise<string | undefined> {
    const { sdk, client } = await this.connect();
    try {
      const got = await client.send(
        new sdk.GetObjectCommand({ Bucket: this.where.bucket, Key: this.key(id, rel) }),
      );
      return await got.Body!.transformToString('utf8');
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  writeText(id: string, rel: string, text: string): Promise<void> {
    return this.putObject(this.key(id, rel), text);
  }

  async putObject(key: string, text: string): Promise<void> {
    const { sdk, client } = await this.connect();
    await client.send(
      new sdk.PutObjectCommand({
        Bucket: this.where.bucket,
        Key: key,
        Body: text,
        ContentMD5: createHash('md5').update(text).digest('base64'),
      }),
    );
  }

  /**
   * Stream one object up in parts, hashing as it goes, then confirm it: the
   * store's ETag must be the MD5 (or multipart MD5) of what was sent, else the
   * object is read back and hashed.
   */
  async upload(
    key: string,
    body: Readable,
    sizeHint: number | undefined,
    onBytes?: (n: number) => void,
  ): Promise<StoredBytes> {
    const { client } = await this.connect();
    const { Upload } = await import('@aws-sdk/lib-storage');
    const partSize = partSizeFor(sizeHint);
    const digests = new PartDigests(partSize, onBytes);
    const upload = new Upload({
      client,
      params: { Bucket: this.where.bucket, Key: key, Body: digests },
      partSize,
      queueSize: QUEUE_SIZE,
      leavePartsOnError: false,
    });
    // pipeline() destroys the Body when the source fails, which fails the
    // upload too (and lib-storage then aborts the multipart upload).
    const [source, uploaded] = await Promise.allSettled([pipeline(body, digests), upload.done()]);
    if (uploaded.status === 'rejected') {
      // A broken stream is only the symptom when the source failed first.
      throw source.status === 'rejected' && isStreamAbort(uploaded.reason)
        ? source.reason
        : uploaded.reason;
    }
    if (source.status === 'rejected') throw source.reason;
    const done = uploaded.value;
    const sent = digests.result();
    const etag = unquote(done.ETag);
    if (etag && sent.etags.includes(etag)) return { size: sent.size, sha256: sent.sha256, etag };
    const back = await hashStream(await this.getObject(key));
    if (back.sha256 !== sent.sha256 || back.size !== sent.size)
      throw new Error(`${key} read back differently from what was uploaded`);
    return { size: sent.size, sha256: sent.sha256, ...(etag ? { etag } : {}) };
  }

  async deleteKeys(keys: string[]): Promise<void> {
    const { sdk, client } = await this.connect();
    // One by one: not every S3-compatible store takes multi-object delete.
    for (const key of keys)
      await client.send(new sdk.DeleteObjectCommand({ Bucket: this.where.bucket, Key: key }));
  }

  /** Abort every unfinished multipart upload below a prefix. */
  async abortUploads(prefix: string): Promise<void> {
    const { sdk, client } = await this.connect();
    let keyMarker: string | undefined;
    let idMarker: string | undefined;
    do {
      const page = await client.send(
        new sdk.ListMultipartUploadsCommand({
          Bucket: this.where.bucket,
          Prefix: prefix,
          KeyMarker: keyMarker,
          UploadIdMarker: idMarker,
        }),
      );
      for (const u of page.Uploads ?? []) {
        await client.send(
          new sdk.AbortMultipartUploadCommand({
            Bucket: this.where.bucket,
            Key: u.Key,
            UploadId: u.UploadId,
          }),
        );
      }
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      idMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (keyMarker);
  }

  async remove(id: string): Promise<void> {
    // The manifest goes first: from then on the copy is no longer listed.
    await this.deleteKeys([this.key(id, 'manifest.json')]);
    await this.removeEverything(id);
  }

  async removeEverything(id: string): Promise<void> {
    await this.abortUploads(this.key(id));
    await this.deleteKeys((await this.listKeys(this.key(id))).map((o) => o.key));
  }

  /** Copies with no manifest whose writer is gone: objects and multipart uploads both go. */
  async cleanStale(): Promise<string[]> {
    const removed: string[] = [];
    for (const id of await this.allIds()) {
      if (await this.head(id, 'manifest.json')) continue;
      if (writerIsGone(parseWriterMarker(await this.readText(id, WRITER_MARKER)))) {
        await this.removeEverything(id);
        removed.push(id);
      }
    }
    return removed;
  }

  markerKey(id: string): string {
    return this.key(id, WRITER_MARKER);
  }
}

class S3CopyWriter implements CopyWriter {
  constructor(
    private readonly repo: S3Repo,
    private readonly id: string,
  ) {}

  put(
    rel: string,
    body: Readable,
    sizeHint?: number,
    onBytes?: (n: number) => void,
  ): Promise<StoredBytes> {
    return this.repo.upload(this.repo.key(this.id, rel), body, sizeHint, onBytes);
  }

  putText(rel: string, text: string): Promise<void> {
    return this.repo.putObject(this.repo.key(this.id, rel), text);
  }

  async commit(): Promise<string> {
    // The caller writes manifest.json last; the marker then goes.
    await this.repo.deleteKeys([this.repo.markerKey(this.id)]);
    return this.repo.copyLocation(this.id);
  }

  abort(): Promise<void> {
    return this.repo.removeEverything(this.id);
  }
}

/**
 * Passes bytes through while computing their SHA-256 and the ETags an S3
 * store gives them: the MD5 for one part, the MD5 of part MD5s for many.
 */
class PartDigests extends Transform {
  // Not `size` or `length`: lib-storage reads those from a Body to guess its byte count.
  private readonly sha = createHash('sha256');
  private part = createHash('md5');
  private partBytes = 0;
  private readonly partDigests: Buffer[] = [];
  private bytesSeen = 0;

  constructor(
    private readonly partSize: number,
    private readonly onBytes?: (n: number) => void,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.sha.update(chunk);
    this.bytesSeen += chunk.length;
    this.onBytes?.(chunk.length);
    let rest = chunk;
    while (rest.length > 0) {
      const take = Math.min(rest.length, this.partSize - this.partBytes);
      this.part.update(rest.subarray(0, take));
      this.partBytes += take;
      rest = rest.subarray(take);
      if (this.partBytes === this.partSize) this.closePart();
    }
    this.push(chunk);
    done();
  }

  private closePart(): void {
    this.partDigests.push(this.part.digest());
    this.part = createHash('md5');
    this.partBytes = 0;
  }

  result(): { size: number; sha256: string; etags: string[] } {
    if (this.partBytes > 0 || this.partDigests.length === 0) this.closePart();
    const multipart = (parts: Buffer[]): string =>
      `${createHash('md5').update(Buffer.concat(parts)).digest('hex')}-${parts.length}`;
    const etags = [multipart(this.partDigests)];
    if (this.partDigests.length === 1) etags.push(this.partDigests[0]!.toString('hex'));
    return { size: this.bytesSeen, sha256: this.sha.digest('hex'), etags };
  }
}

function isStreamAbort(err: unknown): boolean {
  const e = err as { name?: string; code?: string };
  return e.name === 'AbortError' || e.code === 'ERR_STREAM_PREMATURE_CLOSE';
}

function unquote(etag: string | undefined): string | undefined {
  return etag?.replace(/^"|"$/g, '');
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
}
