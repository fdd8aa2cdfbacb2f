import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Manifest } from './manifest.js';
import { DUMP_DIR, readLayout, type StoredCopy } from './copies.js';
import { AGE_SUFFIX, decryptStream, loadIdentities } from './age.js';
import { HashTap, PRIVATE_DIR, PRIVATE_FILE, inside, removeTree } from '../files.js';
import { formatBytes } from '../units.js';

/**
 * pg_restore reads a directory-format dump from a directory. A plain local
 * copy is read in place; a remote or encrypted one is streamed (and
 * decrypted) into a private temporary directory first, every file checked
 * against the manifest on the way, and that directory is removed afterwards.
 */
export async function withDumpDir<T>(
  copy: StoredCopy,
  manifest: Manifest,
  key: string | undefined,
  update: (detail: string) => void,
  use: (dumpDir: string) => Promise<T>,
): Promise<T> {
  const { layout, problems } = await readLayout(copy, manifest, key);
  if (!layout) throw new Error(`the copy in ${copy.destination}: ${problems.join('; ')}`);
  const local = copy.repo.localDir(copy.id);
  if (local && !layout.encryption) return use(path.join(local, DUMP_DIR));

  const identities = layout.encryption ? await loadIdentities(process.env) : [];
  const tmp = await mkdtemp(path.join(os.tmpdir(), `lifeboat-restore-${manifest.id}-`));
  try {
    let fetched = 0;
    for (const file of manifest.files) {
      const stored = layout.encryption ? `${file.path}${AGE_SUFFIX}` : file.path;
      const raw = await copy.repo.read(copy.id, stored);
      const plain = layout.encryption
        ? await decryptStream(identities, raw, `${copy.destination}: ${stored}`)
        : raw;
      const hash = new HashTap();
      const into = inside(tmp, file.path);
      await mkdir(path.dirname(into), { recursive: true, mode: PRIVATE_DIR });
      await pipeline(plain, hash, createWriteStream(into, { mode: PRIVATE_FILE }));
      if (hash.sha256() !== file.sha256)
        throw new Error(`${copy.destination}: ${stored} does not match the manifest once fetched`);
      fetched += file.size;
      update(
        `fetched ${formatBytes(fetched)} of ${formatBytes(manifest.dump.bytes)} from ${copy.destination}`,
      );
    }
    return await use(path.join(tmp, DUMP_DIR));
  } finally {
    await removeTree(tmp);
  }
}
