import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { smallDatabase } from '../support/backups.js';
import { runCli, workspace } from '../support/cli.js';
import type { TestDatabase } from '../support/db.js';
import { adminQuery, rewriteVerifiedManifest } from './support.js';

/**
 * Every restore chooses its pg_restore the same way: the server's version,
 * and able to read the backup's archive. When the only one cannot (a backup
 * written by a newer pg_dump), verify, restore and a rehearsal refuse.
 */
const TOO_OLD =
  /pg_restore \d+(\.\d+)? cannot read an archive written by pg_dump 99\.0; install client tools 99 or newer/;

describe('a backup that the only pg_restore cannot read', () => {
  let db: TestDatabase;
  let ws: Awaited<ReturnType<typeof workspace>>;
  beforeAll(async () => {
    db = await smallDatabase('sec_restore_tool', 20);
    ws = await workspace();
    const backup = await runCli(['backup', '--database-url', db.url], { cwd: ws.dir });
    expect(backup.code, backup.stderr).toBe(0);
    const root = path.join(ws.dir, '.lifeboat/backups');
    const [id] = (await readdir(root)).filter((n) => /^\d{8}T/.test(n));
    await rewriteVerifiedManifest(path.join(root, id!), (m) => {
      m.tools.pgDump.version = '99.0';
    });
  });
  afterAll(async () => {
    await db?.drop();
    await ws?.cleanup();
  });

  const databasesLike = async (pattern: string): Promise<string[]> =>
    (
      await adminQuery<{ datname: string }>(
        'select datname from pg_database where datname like $1',
        [pattern],
      )
    ).rows.map((r) => r.datname);

  it('is refused by verify (exit 2)', async () => {
    const r = await runCli(['verify', 'latest', '--database-url', db.url], { cwd: ws.dir });
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toMatch(TOO_OLD);
  });

  it('is refused by restore (exit 2), and nothing is created', async () => {
    const r = await runCli(['restore', 'latest', '--database-url', db.url], { cwd: ws.dir });
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toMatch(TOO_OLD);
    expect(await databasesLike(`${db.name}\\_\\_%`)).toEqual([]);
  });

  it('is refused by a rehearsal (exit 2)', async () => {
    await writeFile(
      path.join(ws.dir, 'rb.yaml'),
      'name: rb\nsteps:\n  - id: add\n    sql: { up: "ALTER TABLE items ADD COLUMN x int", down: "ALTER TABLE items DROP COLUMN x" }\n',
    );
    const r = await runCli(
      ['rehearse', 'rb.yaml', '--backup', 'existing', '--database-url', db.url],
      { cwd: ws.dir },
    );
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toMatch(TOO_OLD);
  });
});
