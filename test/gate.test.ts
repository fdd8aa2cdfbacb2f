import { cp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../src/repository/manifest.js';
import { backupDirs, largestDataFile, smallDatabase } from './support/backups.js';
import { runCli, runJson, workspace } from './support/cli.js';
import type { TestDatabase } from './support/db.js';

describe('lifeboat gate', () => {
  let db: TestDatabase;
  let other: TestDatabase;
  let ws: Awaited<ReturnType<typeof workspace>>;
  beforeAll(async () => {
    db = await smallDatabase('gate');
    other = await smallDatabase('gate_other');
    ws = await workspace();
  });
  afterAll(async () => {
    await db.drop();
    await other.drop();
    await ws.cleanup();
  });
  const gate = (...args: string[]) =>
    runJson(['gate', '--database-url', db.url, ...args], { cwd: ws.dir });

  it('refuses with exit 3 when there is no backup, and says what to run', async () => {
    const r = await gate();
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/no backup of this target .* run `lifeboat backup`/);
    expect((r.doc.result as { reasons: string[] }).reasons.length).toBeGreaterThan(0);
  });

  it("refuses another database's backup presented as this one's", async () => {
    const otherWs = await workspace();
    try {
      expect(
        (await runCli(['backup', '--database-url', other.url], { cwd: otherWs.dir })).code,
      ).toBe(0);
      // Put the other database's verified backup where this target's backups live.
      await cp(path.join(otherWs.dir, '.lifeboat'), path.join(ws.dir, '.lifeboat'), {
        recursive: true,
      });
      const r = await gate();
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/1 backup\(s\) of other databases or servers were not considered/);
    } finally {
      await otherWs.cleanup();
      await rm(path.join(ws.dir, '.lifeboat'), { recursive: true, force: true });
    }
  });

  it('refuses an unverified backup, then passes once it is verified', async () => {
    expect(
      (await runCli(['backup', '--no-verify', '--database-url', db.url], { cwd: ws.dir })).code,
    ).toBe(0);
    const refused = await gate();
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/has never been verified \(run `lifeboat verify \S+`\)/);
    expect((await runCli(['verify', '--database-url', db.url], { cwd: ws.dir })).code).toBe(0);
    const passed = await gate();
    expect(passed.code, passed.stderr).toBe(0);
  });

  it('refuses a backup older than --max-age', async () => {
    await new Promise((r) => setTimeout(r, 1500));
    const r = await gate('--max-age', '1s');
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/is \d+(\.\d)?s old; the maximum age is 1\.0s/);
  });

  it('refuses fewer copies than required', async () => {
    const r = await runJson(['gate', '--database-url', db.url, '--copies', '2'], {
      cwd: ws.dir,
    });
    // Two copies cannot come from one destination: the config check says so before anything runs.
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /--copies: 2 copies are required but only 1 destination\(s\) are configured/,
    );
  });

  it('refuses a backup whose latest verification failed', async () => {
    const [dir] = await backupDirs(path.join(ws.dir, '.lifeboat/backups'));
    // A dump file damaged while verify read it: the failure is recorded against this backup.
    const file = await largestDataFile(dir!);
    const original = await readFile(file);
    await writeFile(file, Buffer.concat([original, Buffer.from([0])]));
    expect((await runCli(['verify', '--database-url', db.url], { cwd: ws.dir })).code).toBe(4);
    await writeFile(file, original);
    const r = await gate();
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/latest verification .* failed/);
  });
});

describe('signed manifests', () => {
  it('a backup signed with a key is refused when its manifest is re-hashed by someone without the key', async () => {
    const db = await smallDatabase('gate_signed');
    const ws = await workspace();
    const env = { LIFEBOAT_SIGNING_KEY: 'test-signing-key-0123456789' };
    try {
      expect((await runCli(['backup', '--database-url', db.url], { cwd: ws.dir, env })).code).toBe(
        0,
      );
      expect((await runCli(['gate', '--database-url', db.url], { cwd: ws.dir, env })).code).toBe(0);
      const [dir] = await backupDirs(path.join(ws.dir, '.lifeboat/backups'));
      const text = (await readFile(path.join(dir!, 'manifest.json'), 'utf8')).replace(
        '"rows": 500',
        '"rows": 499',
      );
      await writeFile(path.join(dir!, 'manifest.json'), text);
      await writeFile(path.join(dir!, 'manifest.sha256'), `${sha256Hex(text)}  manifest.json\n`);
      const r = await runCli(['gate', '--database-url', db.url], { cwd: ws.dir, env });
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/not signed by the configured key/);
      const v = await runCli(['verify', '--database-url', db.url], { cwd: ws.dir, env });
      expect(v.code).toBe(4);
      expect(v.stderr).toMatch(/not signed by the configured key/);
      expect(`${r.stdout}${r.stderr}${v.stdout}${v.stderr}`).not.toContain(
        env.LIFEBOAT_SIGNING_KEY,
      );
    } finally {
      await db.drop();
      await ws.cleanup();
    }
  });
});
