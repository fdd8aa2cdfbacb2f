import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { runCli, workspace } from './support/cli.js';
import { adminUrl, urlFor } from './support/db.js';

/** What an application's own role, owning its database, can do with lifeboat. */
describe('as a role that is not a superuser', () => {
  it('backs up, verifies and runs with rollback; --freeze is refused with a clear sentence', async () => {
    const suffix = Date.now().toString(16);
    const role = `lb_app_${suffix}`;
    const database = `lb_appdb_${suffix}`;
    const admin = new pg.Client({ connectionString: adminUrl() });
    await admin.connect();
    const ws = await workspace();
    try {
      await admin.query(
        `create role ${pg.escapeIdentifier(role)} login createdb password 'app-pass-4711'`,
      );
      await admin.query(
        `create database ${pg.escapeIdentifier(database)} owner ${pg.escapeIdentifier(role)}`,
      );
      const url = new URL(urlFor(database));
      url.username = role;
      url.password = 'app-pass-4711';
      const app = new pg.Client({ connectionString: url.toString() });
      await app.connect();
      await app.query(
        'create table items (id serial primary key, n int); insert into items (n) select g from generate_series(1, 50) g',
      );
      await app.end();
      await writeFile(
        path.join(ws.dir, 'rb.yaml'),
        'name: app\nsteps:\n  - id: add\n    sql: { up: "ALTER TABLE items ADD COLUMN x int", down: "ALTER TABLE items DROP COLUMN x" }\n  - id: boom\n    sql: { up: "SELECT 1/0" }\n',
      );
      const env = { DATABASE_URL: url.toString() };
      const backup = await runCli(['backup'], { cwd: ws.dir, env });
      expect(backup.code, backup.stderr).toBe(0);
      const run = await runCli(['run', 'rb.yaml'], { cwd: ws.dir, env });
      expect(run.code, run.stderr).toBe(5);
      const frozen = await runCli(['run', 'rb.yaml', '--freeze'], { cwd: ws.dir, env });
      expect(frozen.code).toBe(2);
      expect(frozen.stderr).toMatch(/^error: --freeze needs a superuser/m);
      const settings = await admin.query(
        `select 1 from pg_db_role_setting s join pg_database d on d.oid = s.setdatabase where d.datname = $1`,
        [database],
      );
      expect(settings.rowCount).toBe(0);
      expect(`${backup.stdout}${backup.stderr}${run.stdout}${run.stderr}`).not.toContain(
        'app-pass-4711',
      );
    } finally {
      await admin.query(`drop database if exists ${pg.escapeIdentifier(database)} with (force)`);
      await admin.query(`drop role if exists ${pg.escapeIdentifier(role)}`);
      await admin.end();
      await ws.cleanup();
    }
  });
});
