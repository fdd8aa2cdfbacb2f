import { createReadStream } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pausePoint } from '../faults.js';
import type { Manifest } from './manifest.js';
import { writeLayout, writeManifest, type CopyLayout } from './copies.js';
import { AGE_SUFFIX, encryptStream, readRecipientsFile } from './age.js';
import { HashTap } from '../files.js';
import { openRepo } from './storage/open.js';
import type { Destination } from './storage/destination.js';
import type { CopyWriter } from './storage/repo.js';
import { s3Reason, storageReason } from './storage/reasons.js';
import { formatBytes } from '../units.js';

/** What became of one destination's copy: where it is, or why it is not. */
export interface CopyOutcome {
  destination: string;
  ok: boolean;
  location?: string;
  error?: string;
}

/**
 * Stream a complete dump into one destination, encrypting each file when the
 * destination says so, and publish it there only when every file is stored
 * and confirmed (read back, or the store's checksum matches what was sent).
 */
export async function storeCopy(p: {
  sourceDir: string;
  dest: Destination;
  manifest: Manifest;
  key: string | undefined;
  update: (detail: string) => void;
  warn: (message: string) => void;
  /** An interrupt stops the copy between files; the unfinished copy is removed. */
  signal?: AbortSignal;
}): Promise<CopyOutcome> {
  const { dest, manifest } = p;
  const repo = openRepo(dest);
  let writer: CopyWriter | undefined;
  try {
    const recipients = await recipientsOf(dest);
    writer = await repo.begin(manifest.id);
    const stored: CopyLayout['files'] = [];
    let copied = 0;
    let paused = false;
    for (const file of manifest.files) {
      p.signal?.throwIfAborted();
      const read = new HashTap(async (total) => {
        // A named point in the middle of a multipart upload, for the fault tests.
        const part = repo.uploadPartSize;
        if (!paused && part !== undefined && total > part * 1.5) {
          paused = true;
          await pausePoint('backup:uploading');
        }
      });
      const source = createReadStream(path.join(p.sourceDir, file.path), {
        highWaterMark: 1 << 20,
      });
      // A failure on either side destroys both; the store's upload then fails with it.
      pipeline(source, read).catch(() => undefined);
      const body: Readable = recipients.length > 0 ? await encryptStream(recipients, read) : read;
      const name = recipients.length > 0 ? `${file.path}${AGE_SUFFIX}` : file.path;
      const put = await writer.put(name, body, file.size, (n) => {
        copied += n;
      });
      if (read.sha256() !== file.sha256) throw new Error(`${file.path} changed while copying`);
      if (recipients.length === 0 && put.sha256 !== file.sha256)
        throw new Error(`${file.path} was stored differently from what was sent`);
      stored.push({
        path: name,
        size: put.size,
        sha256: put.sha256,
        ...(put.etag ? { etag: put.etag } : {}),
      });
      p.update(`${formatBytes(copied)} of ${formatBytes(manifest.dump.bytes)}`);
    }
    if (recipients.length > 0 || repo.remote) {
      await writeLayout(
        writer,
        {
          format: 'lifeboat-copy/1',
          ...(recipients.length > 0 ? { encryption: { format: 'age', recipients } } : {}),
          files: stored,
        },
        p.key,
      );
    }
    await writeManifest(writer, manifest, p.key);
    return { destination: dest.name, ok: true, location: await writer.commit() };
  } catch (err) {
    const reason = storageReason(dest, err);
    if (writer) {
      await writer.abort().catch((cleanup: unknown) => {
        p.warn(
          `${dest.name}: the unfinished copy could not be removed now (${s3Reason(cleanup)}); the next backup to ${dest.name} removes it`,
        );
      });
    }
    return { destination: dest.name, ok: false, error: reason };
  }
}

async function recipientsOf(dest: Destination): Promise<string[]> {
  if (!dest.encrypt) return [];
  const fromFile = dest.encrypt.recipientsFile
    ? await readRecipientsFile(dest.encrypt.recipientsFile)
    : [];
  return [...dest.encrypt.recipients, ...fromFile];
}
