import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupDirs } from './support/backups.js';
import { runCli, runJson, workspace } from './support/cli.js';
import { adminUrl, createTestDatabase, type TestDatabase } from './support/db.js';

/** No stack trace, one sentence, and the statement that fixes it. */
function expectPrivilegeError(r: { code: number | null; stderr: string }, fix: RegExp): void {
  expect(r.code, r.stderr).toBe(2);
  expect(r.stderr).not.toMatch(/internal error|\n\s+at .*:\d+:\d+/);
  expect(r.stderr).toMatch(/needs (a privilege|privileges) the role lacks; nothing was changed/);
  expect(r.stderr).toMatch(fix);
}

describe('a role with fewer rights', () => {
  let db: TestDatabase;
  let admin: pg.Client;
  let ws: Awaited<ReturnType<typeof workspace>>;
  const role = `lb_few_${Date.now().toString(16)}`;
  let url: string;
  const cli = (args: string[]) => runCli([...args, '--database-url', url], { cwd: ws.dir });
  const backups = (): Promise<string[]> => backupDirs(path.join(ws.dir, '.lifeboat/backups'));

  beforeAll(async () => {
    db = await createTestDatabase('privileges');
    await db.query(
      `create table items (id serial primary key, name text);
       insert into items (name) select 'item ' || g from generate_series(1, 20) g;`,
    );
    admin = new pg.Client({ connectionString: adminUrl() });
    await admin.connect();
    const r = pg.escapeIdentifier(role);
    await admin.query(`create role ${r} login password 'few-rights-pw'`);
    await db.query(`grant select on items to ${r}`);
    const u = new URL(db.url);
    u.username = role;
    u.password = 'few-rights-pw';
    url = u.toString();
    ws = await workspace();
    await writeFile(
      path.join(ws.dir, 'rb.yaml'),
      'name: few\nsteps:\n  - id: add\n    sql: { up: "ALTER TABLE items ADD COLUMN x int", down: "ALTER TABLE items DROP COLUMN x" }\n',
    );
  });
  afterAll(async () => {
    await db.drop();
    await admin.query(`drop role if exists ${pg.escapeIdentifier(role)}`);
    await admin.end();
    await ws.cleanup();
  });

  it('without SELECT on a sequence: backup and doctor name the GRANT; nothing is written', async () => {
    const r = await cli(['backup', '--quiet']);
    expectPrivilegeError(r, /GRANT SELECT ON ALL SEQUENCES IN SCHEMA "public" TO "lb_few_\w+";/);
    expect(r.stderr).toMatch(/no SELECT on public\.items_id_seq/);
    expect(await backups()).toEqual([]);

    const doctor = await runJson(['doctor', '--database-url', url], { cwd: ws.dir });
    expect(doctor.code).toBe(2);
    const checks = (
      doctor.doc.result as { checks: { name: string; ok: boolean; detail: string }[] }
    ).checks;
    const read = checks.find(
      (c) => c.name === 'privileges: read everything (backup, fingerprints)',
    );
    expect(read).toMatchObject({ ok: false });
    expect(read!.detail).toMatch(/GRANT SELECT ON ALL SEQUENCES IN SCHEMA "public"/);
  });

  it('without CREATE on the database: run names the GRANT and changes nothing', async () => {
    await db.query(`grant select on sequence items_id_seq to ${pg.escapeIdentifier(role)}`);
    const r = await cli(['run', 'rb.yaml']);
    expectPrivilegeError(r, /GRANT CREATE ON DATABASE "lb_privileges_\w+" TO "lb_few_\w+";/);
    const journal = await db.query(
      `select count(*)::int as n from pg_namespace where nspname = 'lifeboat_journal'`,
    );
    expect(journal.rows[0]).toEqual({ n: 0 });
    expect(await backups()).toEqual([]);
    const doctor = await cli(['doctor']);
    expect(doctor.stdout).toMatch(
      /^FAIL {2}privileges: run journal \(run, rollback\): no CREATE on database .*GRANT CREATE ON DATABASE/m,
    );
    // What only one feature needs is reported, and does not fail doctor by itself.
    expect(doctor.stdout).toMatch(/^warn {2}privileges: run --freeze: .*not a superuser/m);
  });

  it('without CREATEDB: the backup is stored but unverified (exit 2), never recorded as failed', async () => {
    const r = await runJson(['backup', '--database-url', url], { cwd: ws.dir });
    expectPrivilegeError(r, /ALTER ROLE "lb_few_\w+" CREATEDB;/);
    expect(r.stderr).toMatch(
      /^error: Backup \S+ is stored but unverified: a scratch database needs/m,
    );
    const result = r.doc.result as { backup: { id: string }; unverified: { reason: string } };
    expect(result.unverified.reason).toMatch(/A scratch database needs a privilege/);
    const [dir] = await backups();
    expect(path.basename(dir!)).toBe(result.backup.id);
    // No verification record: the backup is not "failed", it is not verified yet.
    expect(await readdir(path.join(dir!, 'verifications')).catch(() => [])).toEqual([]);
    const gate = await cli(['gate']);
    expect(gate.code).toBe(3);
    expect(gate.stderr).toMatch(/has never been verified/);
    expect(gate.stderr).not.toMatch(/verification .* failed/);
    const verify = await cli(['verify']);
    expectPrivilegeError(verify, /ALTER ROLE "lb_few_\w+" CREATEDB;/);
    expect(await readdir(path.join(dir!, 'verifications')).catch(() => [])).toEqual([]);
  });
});
