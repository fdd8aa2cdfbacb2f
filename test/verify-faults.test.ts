import { appendFile, readFile, truncate, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Manifest } from '../src/repository/manifest.js';
import { sha256Hex } from '../src/repository/manifest.js';
import { backupDirs, largestDataFile, smallDatabase } from './support/backups.js';
import { runCli, runJson, startPaused, workspace } from './support/cli.js';
import { adminUrl, type TestDatabase } from './support/db.js';
import pg from 'pg';

/** Each case: a fresh verified backup, one kind of damage, then verify (exit 4) and gate (exit 3). */
describe('a damaged backup is refused by verify and gate', () => {
  let db: TestDatabase;
  let ws: Awaited<ReturnType<typeof workspace>>;
  let dir: string;

  beforeEach(async () => {
    db = await smallDatabase('damage', 3000);
    ws = await workspace();
    const r = await runCli(['backup', '--database-url', db.url], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(0);
    [dir] = (await backupDirs(path.join(ws.dir, '.lifeboat/backups'))) as [string];
    expect((await runCli(['gate', '--database-url', db.url], { cwd: ws.dir })).code).toBe(0);
  });
  afterEach(async () => {
    await db.drop();
    await ws.cleanup();
  });

  async function expectRefused(reason: RegExp): Promise<void> {
    const verify = await runJson(['verify', '--database-url', db.url], { cwd: ws.dir });
    expect(verify.code, verify.stderr).toBe(4);
    expect(verify.stderr).toMatch(reason);
    expect(verify.stderr).not.toMatch(/at .*\.js:\d+/); // no stack trace
    const gate = await runCli(['gate', '--database-url', db.url], { cwd: ws.dir });
    expect(gate.code).toBe(3);
  }

  it('a flipped byte', async () => {
    const file = await largestDataFile(dir);
    const bytes = await readFile(file);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
    await writeFile(file, bytes);
    await expectRefused(/\.dat\.gz: SHA-256 differs from the manifest/);
  });

  it('a truncated file', async () => {
    const file = await largestDataFile(dir);
    await truncate(file, 100);
    await expectRefused(/\.dat\.gz: size 100 bytes, manifest says \d+/);
  });

  it('a missing file', async () => {
    await unlink(path.join(dir, 'dump', 'toc.dat'));
    await expectRefused(/dump\/toc\.dat: missing/);
  });

  it('an extra file', async () => {
    await writeFile(path.join(dir, 'dump', '9999.dat.gz'), 'not from pg_dump');
    await expectRefused(/dump\/9999\.dat\.gz: extra file not in the manifest/);
  });

  it('a manifest whose figures were edited', async () => {
    const file = path.join(dir, 'manifest.json');
    const manifest = JSON.parse(await readFile(file, 'utf8')) as Manifest;
    manifest.fingerprints.tables[0]!.rows += 1;
    await writeFile(file, JSON.stringify(manifest, null, 2));
    await expectRefused(/manifest\.json does not match manifest\.sha256/);
  });

  it('a manifest edited with its hash recomputed: the restore disagrees with the edited figures', async () => {
    const file = path.join(dir, 'manifest.json');
    const manifest = JSON.parse(await readFile(file, 'utf8')) as Manifest;
    manifest.fingerprints.tables[0]!.rows += 1;
    const text = JSON.stringify(manifest, null, 2);
    await writeFile(file, text);
    await writeFile(path.join(dir, 'manifest.sha256'), `${sha256Hex(text)}  manifest.json\n`);
    await expectRefused(/table public\.items: expected 3001 rows?, found 3000 rows?/);
  });

  it('a backup whose rows a newer version hashed by a method this one does not know: exit 2 before anything is restored', async () => {
    const file = path.join(dir, 'manifest.json');
    const manifest = JSON.parse(await readFile(file, 'utf8')) as Manifest;
    Object.assign(manifest.fingerprints, { contentMethod: 'sketched' });
    const text = JSON.stringify(manifest, null, 2);
    await writeFile(file, text);
    await writeFile(path.join(dir, 'manifest.sha256'), `${sha256Hex(text)}  manifest.json\n`);
    const verify = await runJson(['verify', '--database-url', db.url], { cwd: ws.dir });
    expect(verify.code, verify.stderr).toBe(2);
    expect(verify.doc.error).toMatchObject({
      kind: 'tools',
      message:
        'These fingerprints were hashed by the "sketched" method, which this version of lifeboat does not know; use the version that wrote them, or a newer one.',
    });
    expect(verify.stderr).not.toMatch(/Restore the copy/);
    // The failure's report has no result to render, and says so without a warning.
    expect(verify.stderr).not.toMatch(/report could not be written/);
  });

  it('a manifest appended to (truncated JSON is caught the same way)', async () => {
    await appendFile(path.join(dir, 'manifest.json'), '\n');
    await expectRefused(/manifest\.json does not match manifest\.sha256/);
  });
});

describe('a verify killed with SIGKILL', () => {
  it('leaves a marked scratch database that the next verify drops; unmarked look-alikes survive', async () => {
    const db = await smallDatabase('verify_kill');
    const ws = await workspace();
    const admin = new pg.Client({ connectionString: adminUrl() });
    await admin.connect();
    const lookAlike = `lifeboat_verify_20000101000000_${Date.now().toString(16).slice(-6)}`;
    try {
      await admin.query(`create database ${pg.escapeIdentifier(lookAlike)}`);
      const backup = await runJson(['backup', '--no-verify', '--database-url', db.url], {
        cwd: ws.dir,
      });
      expect(backup.code, backup.stderr).toBe(0);
      const run = await startPaused(['verify', '--database-url', db.url], 'verify:restored', {
        cwd: ws.dir,
      });
      await run.reached();
      // This verify's scratch database only: other files verify on the same server meanwhile.
      const scratch = await admin.query<{ datname: string }>(
        `select datname from pg_database where shobj_description(oid, 'pg_database') like 'lifeboat-scratch %' and shobj_description(oid, 'pg_database') like $1`,
        [`%${(backup.doc.backup as { id: string }).id}%`],
      );
      expect(scratch.rows).toHaveLength(1);
      const leftover = scratch.rows[0]!.datname;
      await run.kill9();
      const still = await admin.query(`select 1 from pg_database where datname = $1`, [leftover]);
      expect(still.rowCount).toBe(1);

      const again = await runCli(['verify', '--database-url', db.url], { cwd: ws.dir });
      expect(again.code, again.stderr).toBe(0);
      const after = await admin.query(`select datname from pg_database where datname in ($1, $2)`, [
        leftover,
        lookAlike,
      ]);
      expect(after.rows.map((r: { datname: string }) => r.datname)).toEqual([lookAlike]);
    } finally {
      await admin.query(`drop database if exists ${pg.escapeIdentifier(lookAlike)}`);
      await admin.end();
      await db.drop();
      await ws.cleanup();
    }
  });
});
