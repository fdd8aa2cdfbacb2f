import { spawn } from 'node:child_process';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CLI, workspace } from './support/cli.js';
import { createTestDatabase } from './support/db.js';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The ```sh blocks under a README heading, in order. */
async function blocksUnder(heading: string): Promise<string[]> {
  const text = await readFile(path.join(root, 'README.md'), 'utf8');
  const start = text.indexOf(`\n## ${heading}`);
  const end = text.indexOf('\n## ', start + 1);
  const section = text.slice(start, end === -1 ? undefined : end);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/** Run README lines as a user would, with `npx lifeboat` being the built CLI and the example URL a test database. */
function bash(
  script: string,
  cwd: string,
  url: string,
): Promise<{ code: number | null; out: string }> {
  const bin = path.join(cwd, 'bin');
  const prepared = script.replace(/^export DATABASE_URL=\S+/m, `export DATABASE_URL='${url}'`);
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', prepared], {
      cwd,
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, CI: 'true', DATABASE_URL: url },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => resolve({ code, out }));
  });
}

describe('the README quick starts, run as written', () => {
  it('a verified backup; damaged, it is refused by verify (4) and gate (3); then a guarded upgrade', async () => {
    const db = await createTestDatabase('readme');
    const ws = await workspace();
    try {
      // The user's own data; the upgrade below loads the demo's shop, which the example fits.
      await db.query(
        `create table notes (id serial primary key, body text);
         insert into notes (body) select 'note ' || g from generate_series(1, 300) g;`,
      );
      // `npx lifeboat` resolves to this checkout's build, as it does after `npm ci`.
      await mkdir(path.join(ws.dir, 'bin'));
      await writeFile(
        path.join(ws.dir, 'bin/npx'),
        `#!/bin/sh\n[ "$1" = lifeboat ] && shift\nexec node ${CLI} "$@"\n`,
        {
          mode: 0o755,
        },
      );
      await symlink(path.join(root, 'runbooks'), path.join(ws.dir, 'runbooks'));
      await symlink(path.join(root, 'scripts'), path.join(ws.dir, 'scripts'));

      const [backup, damage] = await blocksUnder('Quick start: a verified backup');
      const first = await bash(backup!, ws.dir, db.url);
      expect(first.code, first.out).toBe(0);
      expect(first.out).toMatch(/ok {4}server: /);
      expect(first.out).toMatch(/verified yes: restored from local/);
      expect(first.out).toMatch(/Gate passed for/);
      expect(first.out).toMatch(/safe to deploy/);

      for (const round of ['the only backup', 'a newer backup beside a damaged one']) {
        // The recipe damages the newest backup, the one verify and the gate look at first.
        const second = await bash(damage!, ws.dir, db.url);
        expect(second.out, round).toMatch(/SHA-256 differs from the manifest/);
        expect(second.out, round).toMatch(/exit 4/);
        expect(second.out, round).toMatch(/held intact in 0 destination\(s\); 1 required/);
        expect(second.out, round).toMatch(/exit 3/);
        expect((await bash('npx lifeboat backup', ws.dir, db.url)).code).toBe(0);
      }

      const [upgrade] = await blocksUnder('Quick start: a guarded upgrade');
      const third = await bash(upgrade!, ws.dir, db.url);
      expect(third.out).toMatch(/6 steps: 6 pending; every pending step can be undone/);
      expect(third.out).toMatch(/status: succeeded/);
      expect(third.out).toMatch(/last run: run-\S+ of add-order-status .*succeeded/);
      expect(third.out).toMatch(/status: rolled-back/);
      expect(third.code, third.out).toBe(0);
    } finally {
      await db.drop();
      await ws.cleanup();
    }
  });
});
