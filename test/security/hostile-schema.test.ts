import { readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { richDatabase } from '../support/backups.js';
import { runCli, runJson, startPaused, workspace } from '../support/cli.js';
import { urlFor } from '../support/db.js';
import { adminQuery, clientOf, loginRole } from './support.js';

/**
 * A table owner is not trusted with more than its own rights. Its code in a
 * dump (an index expression, a check constraint) must never run with the
 * rights of the superuser lifeboat connects as, when lifeboat proves a backup.
 */

/** Functions a table owner can write that make it a superuser when a superuser runs them. */
function hostileSchema(owner: string): string {
  const role = pg.escapeIdentifier(owner);
  return `
    create function public.do_escalate() returns void language plpgsql as $$
    begin
      if (select rolsuper from pg_roles where rolname = current_user) then
        execute 'alter role ${role.replace(/'/g, "''")} superuser';
      end if;
    end $$;
    -- An index expression must be IMMUTABLE; one that calls a volatile function still runs it.
    create function public.escalate(int) returns int language plpgsql immutable as $$
    begin
      perform public.do_escalate();
      return $1;
    end $$;
    create function public.harmless(int) returns boolean language plpgsql as $$
    begin
      begin perform public.do_escalate(); exception when others then null; end;
      return true;
    end $$;
    create table public.t (x int);
    insert into public.t select g from generate_series(1, 20) g;
    create index t_escalate on public.t (public.escalate(x));
    -- A check constraint runs while the rows are loaded, as whoever loads them.
    create table public.c (x int check (public.harmless(x)));
    insert into public.c select g from generate_series(1, 20) g;`;
}

async function isSuperuser(role: string): Promise<boolean> {
  const res = await adminQuery<{ rolsuper: boolean }>(
    'select rolsuper from pg_roles where rolname = $1',
    [role],
  );
  return res.rows[0]!.rolsuper;
}

/** Roles lifeboat made to restore the backups in `dir` (other suites run verifies beside this one). */
async function restoreRolesFor(dir: string): Promise<string[]> {
  const ids = await readdir(path.join(dir, '.lifeboat/backups')).catch(() => [] as string[]);
  const res = await adminQuery<{ rolname: string; comment: string | null }>(
    `select rolname, shobj_description(oid, 'pg_authid') as comment
       from pg_roles where rolname like 'lifeboat\\_restore\\_%' order by 1`,
  );
  return res.rows
    .filter((r) => ids.some((id) => /^\d{8}T/.test(id) && r.comment?.includes(id)))
    .map((r) => r.rolname);
}

describe("a table owner's code in the dump", () => {
  let owner: Awaited<ReturnType<typeof loginRole>>;
  let database: string;
  let url: string;
  let ws: Awaited<ReturnType<typeof workspace>>;

  beforeAll(async () => {
    database = `lb_hostile_${Date.now().toString(16)}`;
    owner = await loginRole('lb_owner', database);
    await adminQuery(
      `create database ${pg.escapeIdentifier(database)} owner ${pg.escapeIdentifier(owner.name)}`,
    );
    const asOwner = new pg.Client({ connectionString: owner.url });
    await asOwner.connect();
    await asOwner.query(hostileSchema(owner.name));
    await asOwner.end();
    // lifeboat connects as the server's superuser.
    url = urlFor(database);
    ws = await workspace();
    await writeFile(
      path.join(ws.dir, 'rb.yaml'),
      'name: widen\nsteps:\n  - id: add\n    sql: { up: "ALTER TABLE t ADD COLUMN y int", down: "ALTER TABLE t DROP COLUMN y" }\n',
    );
    await writeFile(
      path.join(ws.dir, 'no-way-back.yaml'),
      'name: nowayback\nsteps:\n  - id: add\n    sql: { up: "ALTER TABLE t ADD COLUMN z int" }\n  - id: boom\n    sql: { up: "SELECT 1/0" }\n',
    );
  });
  afterAll(async () => {
    const leftovers = await adminQuery<{ datname: string }>(
      `select datname from pg_database where datname like $1`,
      [`${database}%`],
    );
    for (const { datname } of leftovers.rows)
      await adminQuery(`drop database if exists ${pg.escapeIdentifier(datname)} with (force)`);
    await owner.drop();
    await ws.cleanup();
  });
  beforeEach(async () => {
    await adminQuery(`alter role ${pg.escapeIdentifier(owner.name)} nosuperuser`);
  });
  afterEach(async () => {
    expect(await restoreRolesFor(ws.dir)).toEqual([]);
  });

  it('backup as a superuser verifies it as an unprivileged role: the owner stays unprivileged', async () => {
    const r = await runJson(['backup', '--database-url', url], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(0);
    const verification = r.doc.verification as { ok: boolean; scratch: { role: string } };
    expect(verification.ok).toBe(true);
    expect(verification.scratch.role).toMatch(/^lifeboat_restore_/);
    expect(await isSuperuser(owner.name)).toBe(false);
  });

  it('rehearse restores its copy the same way: the owner stays unprivileged', async () => {
    const r = await runCli(['rehearse', 'rb.yaml', '--backup', 'new', '--database-url', url], {
      cwd: ws.dir,
    });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(await isSuperuser(owner.name)).toBe(false);
  });

  it("the restore rung's proof (a frozen run that cannot undo a step): the owner stays unprivileged", async () => {
    // The rung restores with owners, so the index is built as its table's owner. The check
    // constraint would still run as the restoring superuser: see SECURITY.md, known limits.
    const asOwner = new pg.Client({ connectionString: owner.url });
    await asOwner.connect();
    await asOwner.query('drop table public.c');
    await asOwner.end();
    const r = await runCli(
      ['run', 'no-way-back.yaml', '--freeze', '--backup', 'new', '--database-url', url],
      { cwd: ws.dir },
    );
    expect(r.code, r.stdout + r.stderr).toBe(5);
    expect(r.stderr).toMatch(/rolled back by restoring its verified backup/);
    expect(await isSuperuser(owner.name)).toBe(false);
  });
});

describe('the unprivileged restore', () => {
  it('restores the rich schema (citext, large objects, RLS, partitions) and an extension only a superuser may create, in its own schema', async () => {
    const db = await richDatabase('sec_rich');
    const ws = await workspace();
    try {
      await db.query(`create schema extensions;
        create extension cube with schema extensions;
        create extension earthdistance with schema extensions;
        create table public.places (id int primary key, at extensions.cube);
        insert into public.places select g, extensions.cube(g) from generate_series(1, 30) g;`);
      const r = await runJson(['backup', '--database-url', db.url], { cwd: ws.dir });
      expect(r.code, r.stderr).toBe(0);
      const verification = r.doc.verification as {
        ok: boolean;
        compared: { tables: number; largeObjects: number };
      };
      expect(verification.ok).toBe(true);
      expect(verification.compared.largeObjects).toBe(3);
      expect(await restoreRolesFor(ws.dir)).toEqual([]);
    } finally {
      await db.drop();
      await ws.cleanup();
    }
  });

  it('a configured restoreRole restores instead, with its password from LIFEBOAT_RESTORE_PASSWORD', async () => {
    const db = await richDatabase('sec_configured');
    const restorer = await loginRole('lb_restorer', 'postgres');
    const ws = await workspace({ restoreRole: restorer.name });
    try {
      const r = await runJson(['backup', '--database-url', db.url], {
        cwd: ws.dir,
        env: { LIFEBOAT_RESTORE_PASSWORD: restorer.password },
      });
      expect(r.code, r.stderr).toBe(0);
      const verification = r.doc.verification as { ok: boolean; scratch: { role: string } };
      expect(verification).toMatchObject({ ok: true, scratch: { role: restorer.name } });
      expect(r.stdout + r.stderr).not.toContain(restorer.password);
    } finally {
      await db.drop();
      await restorer.drop();
      await ws.cleanup();
    }
  });

  it('a killed verify leaves its role to the next verify; a role that merely looks similar is never dropped', async () => {
    const db = await richDatabase('sec_killed');
    const ws = await workspace();
    const lookAlike = `lifeboat_restore_20000101000000_${Date.now().toString(16).slice(-6)}`;
    try {
      await adminQuery(`create role ${pg.escapeIdentifier(lookAlike)}`);
      expect(
        (await runCli(['backup', '--no-verify', '--database-url', db.url], { cwd: ws.dir })).code,
      ).toBe(0);
      const run = await startPaused(['verify', '--database-url', db.url], 'verify:restored', {
        cwd: ws.dir,
      });
      await run.reached();
      const during = await restoreRolesFor(ws.dir);
      expect(during).toHaveLength(1);
      await run.kill9();
      expect(await restoreRolesFor(ws.dir)).toEqual(during);
      const again = await runCli(['verify', '--database-url', db.url], { cwd: ws.dir });
      expect(again.code, again.stderr).toBe(0);
      expect(await restoreRolesFor(ws.dir)).toEqual([]);
      const kept = await adminQuery('select 1 from pg_roles where rolname = $1', [lookAlike]);
      expect(kept.rowCount).toBe(1);
    } finally {
      await adminQuery(`drop role if exists ${pg.escapeIdentifier(lookAlike)}`);
      await db.drop();
      await ws.cleanup();
    }
  });
});

describe('doctor', () => {
  it('says who restores scratch copies: a role of its own, or the configured one (which must exist)', async () => {
    const ws = await workspace();
    try {
      const url = urlFor('postgres');
      const r = await runJson(['doctor', '--database-url', url], { cwd: ws.dir });
      const checks = (r.doc.doctor as { checks: { name: string; ok: boolean; detail: string }[] })
        .checks;
      const line = checks.find((c) => c.name === 'restore role');
      expect(line?.ok).toBe(true);
      expect(line?.detail).toMatch(
        /^a role created for each scratch restore \(lifeboat_restore_\*/,
      );
      await writeFile(
        path.join(ws.dir, 'lifeboat.config.json'),
        JSON.stringify({ restoreRole: 'no_such_restorer' }),
      );
      const configured = await runJson(['doctor', '--database-url', url], { cwd: ws.dir });
      expect(configured.code).toBe(2);
      expect(configured.stderr).toMatch(
        /restore role: restoreRole no_such_restorer does not exist/,
      );
    } finally {
      await ws.cleanup();
    }
  });
});

describe('database names that look like something else', () => {
  it('a database named like a pg_dump option is dumped as a database, not read as an option', async () => {
    const ws = await workspace();
    const stolen = path.join(ws.dir, 'stolen');
    const name = `--file=${stolen}`;
    expect(Buffer.byteLength(name)).toBeLessThan(64);
    await adminQuery(`create database ${pg.escapeIdentifier(name)}`);
    try {
      const r = await runJson(['backup', '--database-url', urlFor(name)], { cwd: ws.dir });
      expect(r.code, r.stderr).toBe(0);
      expect((r.doc.verification as { ok: boolean }).ok).toBe(true);
      expect(
        await stat(stolen).then(
          () => true,
          () => false,
        ),
      ).toBe(false);
    } finally {
      await adminQuery(`drop database if exists ${pg.escapeIdentifier(name)} with (force)`);
      await ws.cleanup();
    }
  });

  it(`names like we"ird'; DROP DATABASE x; -- and ünïcødé are quoted everywhere: backup, verify, restore`, async () => {
    const weird = `we"ird'; DROP DATABASE lb_decoy; --`;
    const unicode = 'ünïcødé';
    const ws = await workspace();
    await adminQuery('create database lb_decoy');
    await adminQuery(`create database ${pg.escapeIdentifier(weird)}`);
    try {
      const client = clientOf(weird);
      await client.connect();
      await client.query(`create schema ${pg.escapeIdentifier(unicode)};
        create table ${pg.escapeIdentifier(unicode)}.${pg.escapeIdentifier(weird)} (${pg.escapeIdentifier(weird)} text);
        insert into ${pg.escapeIdentifier(unicode)}.${pg.escapeIdentifier(weird)} values ('a'), ('b');`);
      await client.end();
      const backup = await runJson(['backup', '--database-url', urlFor(weird)], { cwd: ws.dir });
      expect(backup.code, backup.stderr).toBe(0);
      const id = (backup.doc.backup as { id: string }).id;
      const restore = await runJson(
        ['restore', id, '--as', unicode, '--database-url', urlFor(weird)],
        { cwd: ws.dir },
      );
      expect(restore.code, restore.stderr).toBe(0);
      const restored = clientOf(unicode);
      await restored.connect();
      const rows = await restored.query(
        `select count(*)::int as n from ${pg.escapeIdentifier(unicode)}.${pg.escapeIdentifier(weird)}`,
      );
      await restored.end();
      expect(rows.rows[0]).toEqual({ n: 2 });
      const decoy = await adminQuery(`select 1 from pg_database where datname = 'lb_decoy'`);
      expect(decoy.rowCount).toBe(1);
    } finally {
      for (const n of [weird, unicode, 'lb_decoy'])
        await adminQuery(`drop database if exists ${pg.escapeIdentifier(n)} with (force)`);
      await ws.cleanup();
    }
  });
});
