import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Streaming file helpers: nothing here holds a whole file in memory. */

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

/** Copy one file, hashing what was read, then fsync the copy. */
export async function copyFileHashed(
  from: string,
  to: string,
  onBytes?: (n: number) => void,
): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      size += chunk.length;
      hash.update(chunk);
      onBytes?.(chunk.length);
      done(null, chunk);
    },
  });
  await mkdir(path.dirname(to), { recursive: true });
  await pipeline(createReadStream(from, { highWaterMark: 1 << 20 }), tap, createWriteStream(to));
  await fsyncPath(to);
  return { size, sha256: hash.digest('hex') };
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
  await writeFile(tmp, content);
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
