import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  exists,
  fsyncPath,
  fsyncTree,
  hashFile,
  inside,
  listFiles,
  removeTree,
  writeFileAtomic,
  PRIVATE_DIR,
  PRIVATE_FILE,
} from '../../files.js';
import { parseWriterMarker, writerIsGone, writerMarker } from './writer-marker.js';
import type { CopyWriter, FileStat, Repo, StoredBytes } from './repo.js';
import { BACKUP_ID_PATTERN } from './repo.js';

/**
 * A destination that is a directory: `<root>/<id>/...`. A copy is written
 * under `.partial-<id>` and renamed into place only when complete and synced,
 * so a listed copy is never partial.
 */
const PARTIAL_PREFIX = '.partial-';

export class LocalRepo implements Repo {
  readonly remote = false;
  constructor(
    readonly name: string,
    readonly root: string,
  ) {}

  get location(): string {
    return this.root;
  }

  copyLocation(id: string): string {
    return path.join(this.root, id);
  }

  localDir(id: string): string {
    return path.join(this.root, id);
  }

  /** A file of a copy; a name that would lead outside the copy is refused. */
  private file(id: string, rel: string): string {
    return inside(this.localDir(id), rel);
  }

  async listIds(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.root);
    } catch {
      return [];
    }
    const ids: string[] = [];
    for (const name of names.sort()) {
      if (
        BACKUP_ID_PATTERN.test(name) &&
        (await exists(path.join(this.root, name, 'manifest.json')))
      )
        ids.push(name);
    }
    return ids;
  }

  async begin(id: string): Promise<CopyWriter> {
    await mkdir(this.root, { recursive: true, mode: PRIVATE_DIR });
    await this.cleanStale();
    const dir = path.join(this.root, `${PARTIAL_PREFIX}${id}`);
    await mkdir(dir, { mode: PRIVATE_DIR });
    await writeFile(path.join(dir, '.owner'), JSON.stringify(writerMarker()), {
      mode: PRIVATE_FILE,
    });
    return new LocalCopyWriter(dir, this.copyLocation(id), this.root);
  }

  async list(id: string, under = ''): Promise<FileStat[]> {
    const dir = this.localDir(id);
    const out: FileStat[] = [];
    for (const name of await listFiles(path.join(dir, under)).catch(() => [])) {
      const rel = `${under}${name}`;
      const info = await stat(path.join(dir, rel)).catch(() => undefined);
      if (info) out.push({ path: rel, size: info.size });
    }
    return out;
  }

  async head(id: string, rel: string): Promise<FileStat | undefined> {
    const info = await stat(this.file(id, rel)).catch(() => undefined);
    return info?.isFile() ? { path: rel, size: info.size } : undefined;
  }

  read(id: string, rel: string): Promise<Readable> {
    const stream = createReadStream(this.file(id, rel), { highWaterMark: 1 << 20 });
    // Surface ENOENT here rather than on the first read.
    return new Promise((resolve, reject) => {
      stream.once('open', () => resolve(stream));
      stream.once('error', reject);
    });
  }

  readText(id: string, rel: string): Promise<string | undefined> {
    return readFile(this.file(id, rel), 'utf8').catch(() => undefined);
  }

  async writeText(id: string, rel: string, text: string): Promise<void> {
    const file = this.file(id, rel);
    await mkdir(path.dirname(file), { recursive: true, mode: PRIVATE_DIR });
    await writeFileAtomic(file, text);
  }

  async remove(id: string): Promise<void> {
    // Rename first so a crash mid-delete never leaves a listed, half-deleted backup.
    const doomed = path.join(this.root, `${PARTIAL_PREFIX}deleting-${id}`);
    await rename(this.localDir(id), doomed);
    await removeTree(doomed);
  }

  /** Remove `.partial-*` directories left by a backup process on this host that is gone. */
  async cleanStale(): Promise<string[]> {
    const removed: string[] = [];
    let names: string[];
    try {
      names = await readdir(this.root);
    } catch {
      return removed;
    }
    for (const name of names.filter((n) => n.startsWith(PARTIAL_PREFIX))) {
      const dir = path.join(this.root, name);
      const owner = await readFile(path.join(dir, '.owner'), 'utf8').catch(() => undefined);
      if (writerIsGone(parseWriterMarker(owner))) {
        await removeTree(dir);
        removed.push(name);
      }
    }
    return removed;
  }
}

class LocalCopyWriter implements CopyWriter {
  constructor(
    readonly dir: string,
    private readonly final: string,
    private readonly root: string,
  ) {}

  /** Write, fsync, then read the file back: what is returned is what the disk holds. */
  async put(
    rel: string,
    body: Readable,
    _sizeHint?: number,
    onBytes?: (n: number) => void,
  ): Promise<StoredBytes> {
    const file = path.join(this.dir, rel);
    await mkdir(path.dirname(file), { recursive: true, mode: PRIVATE_DIR });
    if (onBytes) body.on('data', (chunk: Buffer) => onBytes(chunk.length));
    await pipeline(body, createWriteStream(file, { mode: PRIVATE_FILE }));
    await fsyncPath(file);
    return hashFile(file);
  }

  async putText(rel: string, text: string): Promise<void> {
    await mkdir(path.dirname(path.join(this.dir, rel)), { recursive: true, mode: PRIVATE_DIR });
    await writeFileAtomic(path.join(this.dir, rel), text);
  }

  async commit(): Promise<string> {
    await removeTree(path.join(this.dir, '.owner'));
    await fsyncTree(this.dir);
    await rename(this.dir, this.final);
    await fsyncPath(this.root);
    return this.final;
  }

  abort(): Promise<void> {
    return removeTree(this.dir);
  }
}
