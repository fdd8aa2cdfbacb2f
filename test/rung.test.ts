import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compareFingerprints } from '../src/fingerprint.js';
import { fingerprintDatabase } from '../src/fingerprint-session.js';
import { resolveTarget } from '../src/target.js';
import { smallDatabase } from './support/backups.js';
import { runCli, runJson, startPaused, workspace } from './support/cli.js';
import { adminUrl, urlFor, type TestDatabase } from './support/db.js';
import { rewriteManifest } from './security/support.js';

/** A destructive step with no down, then a failure. */
const destructive = `name: destructive
steps:
  - id: add-archive
    sql:
      up: CREATE TABLE archive (id int)
      down: DROP TABLE archive
  - id: drop-qty
    sql:
      up: ALTER TABLE items DROP COLUMN qty
  - id: boom
    sql:
      up: SELECT 1/0
`;

async function databasesLike(prefix: string): Promise<string[]> {
  const admin = new pg.Client({ connectionString: adminUrl() });
  await admin.connect();
  try {
    const res = await admin.query<{ datname: string }>(
      `select datname from pg_database where datname like $1 order by 1`,
      [`${prefix}%`],
    );
    return res.rows.map((r) => r.datname);
  } finally {
    await admin.end();
  }
}

async function dropAll(names: string[]): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl() });
  await admin.connect();
  try {
    for (const n of names)
      await admin.query(`drop database if exists ${pg.escapeIdentifier(n)} with (force)`);
  } finally {
    await admin.end();
  }
}

const fingerprintsOf = (db: TestDatabase) =>
  fingerprintDatabase(resolveTarget(db.url), { excludeSchemas: ['lifeboat_journal'] });

describe('the last rung: rollback by restoring the backup', () => {
  let db: TestDatabase;
  let ws: Awaited<ReturnType<typeof workspace>>;
  beforeEach(async () => {
    db = await smallDatabase('rung');
    ws = await workspace();
    await writeFile(path.join(ws.dir, 'destructive.yaml'), destructive);
  });
  afterEach(async () => {
    await dropAll((await databasesLike(db.name)).filter((n) => n !== db.name));
    await db.drop();
    await ws.cleanup();
  });

  it('with --freeze: the database ends as before (fingerprints), unfrozen, the failed copy kept, the run remembered', async () => {
    const before = await fingerprintsOf(db);
    const r = await runJson(['run', 'destructive.yaml', '--freeze', '--database-url', db.url], {
      cwd: ws.dir,
    });
    expect(r.code, r.stderr).toBe(5);
    expect(r.stderr).toMatch(/rolled back by restoring its verified backup .* nothing is lost/);
    expect(compareFingerprints(before, await fingerprintsOf(db))).toEqual([]);
    const replaced = (await databasesLike(`${db.name}__replaced_`))[0]!;
    expect(replaced).toBeDefined();
    // The failed database holds the half-done upgrade: qty is gone there.
    const failed = new pg.Client({ connectionString: urlFor(replaced) });
    await failed.connect();
    try {
      const cols = await failed.query(
        `select count(*)::int as n from information_schema.columns where table_name = 'items' and column_name = 'qty'`,
      );
      expect(cols.rows[0]).toEqual({ n: 0 });
    } finally {
      await failed.end();
    }
    // Writable again, and the journal of the restored database knows the run.
    await db.query(`insert into items (name, qty) values ('after', 1)`);
    const status = await runJson(['status', '--database-url', db.url], { cwd: ws.dir });
    const last = (status.doc.status as { lastRun: { status: string; error: string } }).lastRun;
    expect(last.status).toBe('rolled-back');
    expect(last.error).toMatch(/rolled back by restoring backup .*kept as/);
  });

  it('without freeze and with a concurrent writer: nothing is restored, exit 6, no write is lost', async () => {
    const run = await startPaused(
      ['run', 'destructive.yaml', '--database-url', db.url],
      'step:boom:before',
      { cwd: ws.dir },
    );
    await run.reached();
    await db.query(`insert into items (name) values ('written during the run')`);
    await run.resume();
    const r = await run.done;
    expect(r.code).toBe(6);
    expect(r.stderr).toMatch(/Step drop-qty cannot be undone: it has no down/);
    expect(r.stderr).toMatch(/lifeboat restore \S+ --swap --terminate/);
    expect(r.stderr).toMatch(/which loses at least \d+ row write\(s\)/);
    expect(await databasesLike(`${db.name}__`)).toEqual([]);
    const row = await db.query(
      `select count(*)::int as n from items where name = 'written during the run'`,
    );
    expect(row.rows[0]).toEqual({ n: 1 });
  });

  it('SIGKILL during the restore of a frozen run: rollback finishes the job; one database under the name, unfrozen', async () => {
    const before = await fingerprintsOf(db);
    const run = await startPaused(
      ['run', 'destructive.yaml', '--freeze', '--database-url', db.url],
      'restore:restored',
      {
        cwd: ws.dir,
      },
    );
    await run.reached();
    await run.kill9();
    const status = await runJson(['status', '--database-url', db.url], { cwd: ws.dir });
    expect((status.doc.status as { frozen: unknown }).frozen, status.stdout).not.toBeNull();
    const r = await runCli(['rollback', '--yes', '--database-url', db.url], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(0);
    // The half-restored copy of the killed run was cleaned up; the failed database is kept.
    const names = await databasesLike(db.name);
    expect(names).toHaveLength(2);
    expect(names[0]).toBe(db.name);
    expect(names[1]).toMatch(/__replaced_\d+$/);
    expect(compareFingerprints(before, await fingerprintsOf(db))).toEqual([]);
    await db.query(`insert into items (name, qty) values ('writable again', 1)`);
  });

  it('refuses, restoring nothing, when the only pg_restore cannot read the backup', async () => {
    const run = await startPaused(
      ['run', 'destructive.yaml', '--freeze', '--database-url', db.url],
      'step:boom:before',
      { cwd: ws.dir },
    );
    await run.reached();
    // The run's backup now reads as written by a pg_dump newer than any pg_restore here.
    const root = path.join(ws.dir, '.lifeboat/backups');
    for (const id of (await readdir(root)).filter((n) => /^\d{8}T/.test(n))) {
      await rewriteManifest(path.join(root, id), (m) => {
        m.tools.pgDump.version = '99.0';
      });
    }
    await run.resume();
    const r = await run.done;
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toMatch(
      /pg_restore \d+(\.\d+)? cannot read an archive written by pg_dump 99\.0; install client tools 99 or newer/,
    );
    expect(await databasesLike(`${db.name}__`)).toEqual([]);
  });
});
