import { execFile } from 'node:child_process';
import { access, constants, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { CLI } from './support/cli.js';

const exec = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));

describe('lifeboat as a package', () => {
  it('the built CLI stays executable', async () => {
    await access(CLI, constants.X_OK);
    expect((await stat(CLI)).mode & 0o111).toBe(0o111);
  });

  it('installs from a packed tarball into a project of its own, where npx lifeboat runs its demo', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'lifeboat-package-'));
    const env = { ...process.env, CI: 'true', NO_COLOR: '1', npm_config_update_notifier: 'false' };
    try {
      // The tarball of what is built now (`npm test` has just built dist/).
      await exec('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], {
        cwd: root,
        env,
      });
      const [tarball] = (await readdir(dir)).filter((f) => f.endsWith('.tgz'));
      const project = path.join(dir, 'app');
      await exec('mkdir', [project]);
      await writeFile(
        path.join(project, 'package.json'),
        JSON.stringify({ name: 'app', version: '1.0.0', private: true }),
      );
      await exec(
        'npm',
        [
          'install',
          '--save-dev',
          '--prefer-offline',
          '--no-audit',
          '--no-fund',
          path.join(dir, tarball!),
        ],
        { cwd: project, env, timeout: 240_000 },
      );
      const version = await exec('npx', ['lifeboat', '--version'], { cwd: project, env });
      expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
      const demo = await exec('npx', ['lifeboat', 'demo'], { cwd: project, env, timeout: 180_000 });
      expect(demo.stdout).toMatch(/lifeboat demo: a failed upgrade, undone with proof/);
      expect(demo.stdout).toMatch(
        /proof: every table, sequence, large object and the schema match/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 420_000);
});
