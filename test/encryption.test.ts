import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { backupDirs, smallDatabase } from './support/backups.js';
import { runCli, runJson, workspace } from './support/cli.js';
import type { TestDatabase } from './support/db.js';

/**
 * An encrypted local destination and nothing else: the dump is staged in a
 * private temporary directory, every destination receives age ciphertext,
 * and the staging is gone afterwards.
 */
const exec = promisify(execFile);

describe('a local destination encrypted with age', () => {
  let db: TestDatabase;
  let ws: Awaited<ReturnType<typeof workspace>>;
  let keyFile: string;
  let tmp: string;
  beforeAll(async () => {
    db = await smallDatabase('encrypted_local', 300);
    ws = await workspace();
    keyFile = path.join(ws.dir, 'key.txt');
    await exec('age-keygen', ['-o', keyFile]);
    const recipient = (await exec('age-keygen', ['-y', keyFile])).stdout.trim();
    await writeFile(
      path.join(ws.dir, 'lifeboat.config.json'),
      JSON.stringify({
        destinations: [{ name: 'vault', path: 'vault', encrypt: { recipients: [recipient] } }],
      }),
    );
    tmp = path.join(ws.dir, 'tmp');
    await mkdir(tmp);
  });
  afterAll(async () => {
    await db.drop();
    await ws.cleanup();
  });

  it('stores only ciphertext, removes its staging, and verifies with the key', async () => {
    const env = { TMPDIR: tmp, LIFEBOAT_AGE_IDENTITY_FILE: keyFile };
    const r = await runJson(['backup', '--database-url', db.url], { cwd: ws.dir, env });
    expect(r.code, r.stderr).toBe(0);
    expect((r.doc.verification as { ok: boolean; restoredFrom: string }).ok).toBe(true);
    expect(await readdir(tmp)).toEqual([]);

    const [dir] = await backupDirs(path.join(ws.dir, 'vault'));
    const dump = await readdir(path.join(dir!, 'dump'));
    expect(dump.length).toBeGreaterThan(1);
    expect(dump.every((f) => f.endsWith('.age'))).toBe(true);
    const layout = JSON.parse(await readFile(path.join(dir!, 'copy.json'), 'utf8')) as {
      encryption: { format: string };
    };
    expect(layout.encryption.format).toBe('age');
    // The ciphertext can be checked without the key, as the operator runbook does.
    const { stdout } = await exec('sha256sum', ['-c', 'copy.sha256sums'], { cwd: dir! });
    expect(stdout).not.toMatch(/FAILED/);
    expect(stdout).toMatch(/dump\/toc\.dat\.age: OK/);

    const gate = await runCli(['gate', '--database-url', db.url], { cwd: ws.dir });
    expect(gate.code, gate.stderr).toBe(0);
    const noKey = await runCli(['verify', '--database-url', db.url], {
      cwd: ws.dir,
      env: { TMPDIR: tmp },
    });
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toMatch(/no age identity is configured/);
    expect(await readdir(tmp)).toEqual([]);
  });

  it('a recipients file that cannot be read fails the copy with its name', async () => {
    const config = await loadConfig({}, ws.dir, {});
    expect(config.destinations[0]).toMatchObject({
      kind: 'local',
      encrypt: { recipients: [expect.any(String)] },
    });
    const other = await workspace({
      destinations: [
        { path: 'plain' },
        { name: 'vault', path: 'vault', encrypt: { recipientsFile: 'missing.txt' } },
      ],
    });
    try {
      const r = await runCli(['backup', '--database-url', db.url], { cwd: other.dir });
      // The plain copy is kept and verified; the destination without its copy fails the backup.
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(
        /is missing from 1 of 2 destinations; the copies in local were kept/,
      );
      expect(r.stderr).toMatch(/vault: .*Cannot read the recipients file .*missing\.txt/);
    } finally {
      await other.cleanup();
    }
  });
});
