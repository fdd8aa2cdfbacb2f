import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Streaming file helpers: nothing here holds a whole file in memory. */

/** What lifeboat writes is its user's alone: a backup holds every row. */
export const PRIVATE_FILE = 0o600;
export const PRIVATE_DIR = 0o700;

export function hashFile(file: string): Promise<{ size: number; sha256: string }> {
  return hashStream(createReadStream(file, { highWaterMark: 1 << 20 }));
}

export async function hashStream(stream: Readable): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  await pipeline(stream, async (source) => {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      size += chunk.length;
      hash.update(chunk);
    }
  });
  return { size, sha256: hash.digest('hex') };
}

/** Every regular file below `dir`, as paths relative to it with forward slashes, sorted. */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(rel: string): Promise<void> {
    const entries = await readdir(path.join(dir, rel), { withFileTypes: true });
    for (const e of entries) {
      const child = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(child);
      else out.push(child);
    }
  }
  await walk('');
  return out.sort();
}

/**
 * Passes bytes on while hashing them (SHA-256); `onTotal`, given the bytes so
 * far, may hold the stream back (a pause point) before each chunk goes on.
 */
export class HashTap extends Transform {
  private readonly hash = createHash('sha256');
  private total = 0;

  constructor(private readonly onTotal?: (total: number) => Promise<void>) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.total += chunk.length;
    if (!this.onTotal) return done(null, chunk);
    this.onTotal(this.total).then(
      () => done(null, chunk),
      (err: unknown) => done(err as Error),
    );
  }

  /** The SHA-256 of everything that passed, once the stream has ended. */
  sha256(): string {
    return this.hash.digest('hex');
  }
}

export async function fsyncPath(p: string): Promise<void> {
  const handle = await open(p, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** fsync every file and directory below `dir`, then `dir` itself. */
export async function fsyncTree(dir: string): Promise<void> {
  for (const rel of await listFiles(dir)) await fsyncPath(path.join(dir, rel));
  const dirs = new Set<string>();
  for (const rel of await listFiles(dir)) {
    let d = path.dirname(rel);
    while (d !== '.' && d !== '') {
      dirs.add(d);
      d = path.dirname(d);
    }
  }
  for (const d of dirs) await fsyncPath(path.join(dir, d));
  await fsyncPath(dir);
}

/** Write a small file so that a crash leaves either the old or the new content. */
export async function writeFileAtomic(file: string, content: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, content, { mode: PRIVATE_FILE });
  await fsyncPath(tmp);
  await rename(tmp, file);
  await fsyncPath(path.dirname(file));
}

export async function directorySize(dir: string): Promise<number> {
  let total = 0;
  for (const rel of await listFiles(dir).catch(() => [])) {
    total += (await stat(path.join(dir, rel)).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

export async function removeTree(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

export async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * `dir` joined with a relative name, refused unless it stays inside `dir`:
 * the last guard before a read or a write, whatever checked the name before.
 */
export function inside(dir: string, name: string): string {
  const root = path.resolve(dir);
  const full = path.resolve(root, name);
  if (path.isAbsolute(name) || name.includes('\\') || !full.startsWith(`${root}${path.sep}`))
    throw new Error(`${JSON.stringify(name)} is not a name inside ${root}`);
  return full;
}
