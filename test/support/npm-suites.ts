import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Real-world knex migration suites, as their applications ship them: the
 * `migrations` directory of a published npm package at a pinned version,
 * fetched with `npm pack` (nothing of theirs is copied into this repository)
 * into a cache, the tarball checked against the integrity the registry
 * publishes for that version before anything is unpacked.
 */
export interface Suite {
  name: string;
  version: string;
}

/** Backstage's catalog: 30 migrations at 1.24.0, 47 at 4.0.5 (sqlite/pg branches, empty downs, CONCURRENTLY). */
export const CATALOG_OLD: Suite = { name: '@backstage/plugin-catalog-backend', version: '1.24.0' };
export const CATALOG_NEW: Suite = { name: '@backstage/plugin-catalog-backend', version: '4.0.5' };
/** Backstage's auth backend: 5 migrations at 0.20.3, 13 at 0.31.0. */
export const AUTH_OLD: Suite = { name: '@backstage/plugin-auth-backend', version: '0.20.3' };
export const AUTH_NEW: Suite = { name: '@backstage/plugin-auth-backend', version: '0.31.0' };

const CACHE =
  process.env.LIFEBOAT_TEST_SUITES_CACHE ?? path.join(os.tmpdir(), 'lifeboat-test-suites');

/** The package's `migrations` directory, fetched and checked once, then from the cache. */
export async function suiteMigrations(suite: Suite): Promise<string> {
  const dir = path.join(CACHE, `${suite.name.replace(/[@/]/g, '_')}-${suite.version}`);
  const migrations = path.join(dir, 'package', 'migrations');
  if (await exists(path.join(dir, 'verified'))) return migrations;
  await mkdir(CACHE, { recursive: true });
  const work = await mkdirTemp(`${dir}.partial-`);
  try {
    const spec = `${suite.name}@${suite.version}`;
    const { stdout: published } = await run('npm', ['view', spec, 'dist.integrity']);
    const { stdout } = await run('npm', ['pack', spec, '--json', '--pack-destination', work]);
    const [packed] = JSON.parse(stdout) as { filename: string }[];
    const tarball = path.join(work, packed!.filename);
    const integrity = `sha512-${createHash('sha512')
      .update(await readFile(tarball))
      .digest('base64')}`;
    if (integrity !== published.trim()) {
      throw new Error(
        `${spec}: the tarball's ${integrity} is not the registry's ${published.trim()}`,
      );
    }
    await run('tar', ['-xzf', tarball, '-C', work]);
    await writeFile(path.join(work, 'verified'), `${spec} ${integrity}\n`);
    await rm(dir, { recursive: true, force: true });
    await rename(work, dir);
  } catch (err) {
    await rm(work, { recursive: true, force: true });
    throw err;
  }
  return migrations;
}

async function mkdirTemp(prefix: string): Promise<string> {
  const dir = `${prefix}${process.pid}-${Date.now()}`;
  await mkdir(dir, { recursive: true });
  return dir;
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}
