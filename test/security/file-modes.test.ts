import { spawn } from 'node:child_process';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { smallDatabase } from '../support/backups.js';
import { CLI, runCli, workspace } from '../support/cli.js';
import type { TestDatabase } from '../support/db.js';

/**
 * A backup holds every row: whatever the user's umask, only the user running
 * lifeboat may read what it writes.
 */
function runWithUmask(
  umask: string,
  args: string[],
  cwd: string,
): Promise<{ code: number | null; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, CI: 'true', NO_COLOR: '1' };
  for (const k of ['DATABASE_URL', 'PGHOST', 'PGPORT', 'PGUSER', 'PGPASSWORD', 'PGDATABASE'])
    delete env[k];
  const child = spawn(
    'sh',
    ['-c', `umask ${umask} && exec "$0" "$@"`, process.execPath, CLI, ...args],
    { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
}

/** Every directory and file below `root` (itself included) whose mode is not private. */
async function notPrivate(root: string): Promise<string[]> {
  const out: string[] = [];
  const rootMode = (await stat(root)).mode & 0o777;
  if (rootMode !== 0o700) out.push(`${root} ${rootMode.toString(8)}`);
  for (const e of await readdir(root, { withFileTypes: true, recursive: true })) {
    const p = path.join(e.parentPath, e.name);
    const mode = (await stat(p)).mode & 0o777;
    const want = e.isDirectory() ? 0o700 : 0o600;
    if (mode !== want) out.push(`${path.relative(root, p)} ${mode.toString(8)}`);
  }
  return out;
}

describe('what lifeboat writes', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await smallDatabase('sec_modes', 300);
  });
  afterAll(async () => {
    await db.drop();
  });

  it('is private (0700 directories, 0600 files) under umask 000: dumps in both destinations, manifests, records, reports', async () => {
    const ws = await workspace({
      destinations: [
        { name: 'first', path: 'first' },
        { name: 'second', path: 'second' },
      ],
      policy: { copies: 2 },
    });
    try {
      const backup = await runWithUmask('000', ['backup', '--database-url', db.url], ws.dir);
      expect(backup.code, backup.stderr).toBe(0);
      const verify = await runWithUmask('000', ['verify', '--database-url', db.url], ws.dir);
      expect(verify.code, verify.stderr).toBe(0);
      expect(await notPrivate(path.join(ws.dir, 'first'))).toEqual([]);
      expect(await notPrivate(path.join(ws.dir, 'second'))).toEqual([]);
    } finally {
      await ws.cleanup();
    }
  });

  it("a step's own files keep the user's umask: lifeboat's privacy is its own, not the step's", async () => {
    const ws = await workspace();
    try {
      await writeFile(
        path.join(ws.dir, 'touch.yaml'),
        'name: touch\nsteps:\n  - id: t\n    shell: { up: "touch made-by-step", down: "rm -f made-by-step" }\n',
      );
      const run = await runWithUmask(
        '022',
        ['run', 'touch.yaml', '--database-url', db.url],
        ws.dir,
      );
      expect(run.code, run.stderr).toBe(0);
      expect((await stat(path.join(ws.dir, 'made-by-step'))).mode & 0o777).toBe(0o644);
    } finally {
      await ws.cleanup();
    }
  });

  it("a step's shell does not run the user's ~/.bashrc, however lifeboat was started", async () => {
    const ws = await workspace();
    try {
      const home = path.join(ws.dir, 'home');
      await mkdir(home);
      // bash runs ~/.bashrc for a non-interactive command whose stdin is a socket (as if
      // started by sshd) at shell level 1: what a step got from a pipe and no SHLVL.
      await writeFile(path.join(home, '.bashrc'), 'touch "$HOME/bashrc-was-read"\n');
      await writeFile(
        path.join(ws.dir, 'quiet.yaml'),
        'name: quiet\nsteps:\n  - id: q\n    shell: { up: "true", down: "true" }\n',
      );
      const run = await runCli(['run', 'quiet.yaml', '--database-url', db.url], {
        cwd: ws.dir,
        env: { HOME: home, SHLVL: undefined },
      });
      expect(run.code, run.stderr).toBe(0);
      expect(await readdir(home)).toEqual(['.bashrc']);
    } finally {
      await ws.cleanup();
    }
  });

  it('the default destination and its reports are private too', async () => {
    const ws = await workspace();
    try {
      const backup = await runWithUmask('022', ['backup', '--database-url', db.url], ws.dir);
      expect(backup.code, backup.stderr).toBe(0);
      expect(await notPrivate(path.join(ws.dir, '.lifeboat'))).toEqual([]);
    } finally {
      await ws.cleanup();
    }
  });
});
