import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runJson, workspace } from '../support/cli.js';
import { urlFor } from '../support/db.js';
import { adminQuery, loginRole } from './support.js';

/**
 * `restore --swap --terminate` by a role that may not end every session: it
 * says which sessions it could not end, keeps the proved database under its
 * own name, and renames nothing.
 */
describe('restore --swap --terminate as a role that is not a superuser', () => {
  let owner: Awaited<ReturnType<typeof loginRole>>;
  let database: string;
  let ws: Awaited<ReturnType<typeof workspace>>;
  beforeAll(async () => {
    database = `lb_swapper_${Date.now().toString(16)}`;
    owner = await loginRole('lb_swapper', database, 'createdb');
    await adminQuery(
      `create database ${pg.escapeIdentifier(database)} owner ${pg.escapeIdentifier(owner.name)}`,
    );
    const c = new pg.Client({ connectionString: owner.url });
    await c.connect();
    await c.query('create table items (id int primary key); insert into items values (1), (2)');
    await c.end();
    ws = await workspace();
  });
  afterAll(async () => {
    const all = await adminQuery<{ datname: string }>(
      `select datname from pg_database where datname like $1`,
      [`${database}%`],
    );
    for (const { datname } of all.rows)
      await adminQuery(`drop database if exists ${pg.escapeIdentifier(datname)} with (force)`);
    await owner.drop();
    await ws.cleanup();
  });

  it("a superuser's session it may not end: exit 2, the session named, the proved database kept", async () => {
    const backup = await runJson(['backup', '--database-url', owner.url], { cwd: ws.dir });
    expect(backup.code, backup.stderr).toBe(0);
    const id = (backup.doc.backup as { id: string }).id;
    const superuser = new pg.Client({
      connectionString: urlFor(database),
      application_name: 'dba-console',
    });
    await superuser.connect();
    try {
      const r = await runJson(
        ['restore', id, '--swap', '--terminate', '--yes', '--database-url', owner.url],
        {
          cwd: ws.dir,
        },
      );
      expect(r.code, r.stdout + r.stderr).toBe(2);
      expect(r.stderr).toMatch(
        /^error: Cannot swap: 1 session\(s\) could not be ended: the role may not end a superuser's session\./m,
      );
      expect(r.stderr).toMatch(/application "dba-console"/);
      const kept = /The proved database (\S+) is kept under its name; nothing was renamed\./.exec(
        r.stderr,
      );
      expect(kept, r.stderr).not.toBeNull();
      const names = await adminQuery<{ datname: string }>(
        `select datname from pg_database where datname like $1 order by 1`,
        [`${database}%`],
      );
      expect(names.rows.map((n) => n.datname)).toEqual([database, kept![1]]);
      expect((await superuser.query('select count(*)::int as n from items')).rows[0]).toEqual({
        n: 2,
      });
    } finally {
      await superuser.end();
    }
  });
});
