import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterNeeds } from '../src/cluster-needs.js';
import { sha256Hex, type Manifest } from '../src/repository/manifest.js';
import { backupDirs } from './support/backups.js';
import { runCli, runJson, workspace } from './support/cli.js';
import { adminUrl, createTestDatabase, type TestDatabase } from './support/db.js';

describe('a backup records what the database needs from its cluster', () => {
  let db: TestDatabase;
  let admin: pg.Client;
  let ws: Awaited<ReturnType<typeof workspace>>;
  const tag = `lb_needs_${Date.now().toString(16)}`;
  const [owner, writer, reader, auditor, group] = [
    'owner',
    'writer',
    'reader',
    'auditor',
    'group',
  ].map((r) => `${tag}_${r}`) as [string, string, string, string, string];
  const q = pg.escapeIdentifier;
  let adminRole: string;

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: adminUrl() });
    await admin.connect();
    adminRole = (await admin.query<{ u: string }>('select current_user as u')).rows[0]!.u;
    await admin.query(
      `create role ${q(group)} nologin;
       create role ${q(owner)} login createdb password 'Owner-Secret-5521' in role ${q(group)};
       create role ${q(writer)} nologin connection limit 3;
       create role ${q(reader)} login valid until '2031-01-01 00:00:00+00';
       create role ${q(auditor)} nologin bypassrls`,
    );
    db = await createTestDatabase('needs');
    await db.query(
      `create extension if not exists citext;
       create schema app authorization ${q(owner)};
       create table app.items (id serial primary key, name citext not null);
       alter table app.items owner to ${q(owner)};
       insert into app.items (name) select 'item ' || g from generate_series(1, 20) g;
       create function app.touch() returns int language sql as 'select 1';
       alter function app.touch() owner to ${q(writer)};
       grant usage on schema app to ${q(reader)}, ${q(writer)};
       grant select on app.items to ${q(reader)};
       grant insert, update on app.items to ${q(writer)};
       alter table app.items enable row level security;
       create policy audit_all on app.items for select to ${q(auditor)} using (true);
       alter database ${q(db.name)} set work_mem = '12MB';
       alter role ${q(reader)} in database ${q(db.name)} set search_path = app, public`,
    );
    ws = await workspace();
  });
  afterAll(async () => {
    await db?.drop();
    for (const role of [owner, writer, reader, auditor, group])
      await admin.query(`drop role if exists ${q(role)}`).catch(() => undefined);
    await admin?.end();
    await ws?.cleanup();
  });

  it('names the roles with their attributes, the settings and the extensions; shown by backups show', async () => {
    const backup = await runCli(['backup', '--no-verify', '--database-url', db.url], {
      cwd: ws.dir,
    });
    expect(backup.code, backup.stderr).toBe(0);
    const [dir] = await backupDirs(path.join(ws.dir, '.lifeboat/backups'));
    const text = await readFile(path.join(dir!, 'manifest.json'), 'utf8');
    const needs = (JSON.parse(text) as Manifest).needs!;

    const role = (name: string) => needs.roles.find((r) => r.name === name);
    expect(needs.roles.map((r) => r.name).filter((n) => n.startsWith(tag))).toEqual(
      [auditor, owner, reader, writer].sort(),
    );
    expect(role(owner)).toEqual({
      name: owner,
      attributes: ['LOGIN', 'CREATEDB'],
      memberOf: [group],
      owns: 3, // the schema, the table and its sequence
      grantedOn: 0,
      policies: 0,
    });
    expect(role(writer)).toMatchObject({
      attributes: ['NOLOGIN', 'CONNECTION LIMIT 3'],
      owns: 1,
      grantedOn: 2, // the schema and the table
    });
    expect(role(reader)).toMatchObject({
      attributes: ['LOGIN', 'VALID UNTIL 2031-01-01T00:00:00Z'],
      owns: 0,
      grantedOn: 2,
    });
    expect(role(auditor)).toMatchObject({ attributes: ['NOLOGIN', 'BYPASSRLS'], policies: 1 });
    // Whoever created the database owns it: it is needed too.
    expect(role(adminRole)?.owns).toBeGreaterThan(0);
    // A member role that owns nothing here is not needed.
    expect(role(group)).toBeUndefined();

    expect(needs.settings).toEqual([
      { name: 'work_mem', value: '12MB' },
      { role: reader, name: 'search_path', value: 'app, public' },
    ]);
    const citext = await db.query(
      `select extversion as v from pg_extension where extname = 'citext'`,
    );
    const [{ v: citextVersion }] = citext.rows as [{ v: string }];
    expect(needs.extensions).toEqual([
      { name: 'citext', version: citextVersion, schema: 'public' },
      { name: 'plpgsql', version: '1.0', schema: 'pg_catalog' },
    ]);
    expect(needs.database).toMatchObject({ encoding: 'UTF8', localeProvider: 'libc' });
    // Created by the suite's admin role, which therefore owns the database.
    const dbOwner = await db.query(
      `select pg_get_userbyid(datdba)::text as o from pg_database where datname = current_database()`,
    );
    expect(needs.owner).toBe((dbOwner.rows[0] as { o: string }).o);
    // No password, no hash.
    expect(text).not.toMatch(/Owner-Secret|SCRAM-SHA-256|md5[0-9a-f]{32}/);

    const shown = await runCli(['backups', 'show', 'latest', '--database-url', db.url], {
      cwd: ws.dir,
    });
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toContain(`${owner} (LOGIN CREATEDB; owns 3; member of ${group})`);
    expect(shown.stdout).toContain(`${writer} (NOLOGIN CONNECTION LIMIT 3; owns 1; granted on 2)`);
    expect(shown.stdout).toContain(`${auditor} (NOLOGIN BYPASSRLS; in 1 policy)`);
    expect(shown.stdout).toMatch(/ {2}extensions .*citext \d+\.\d+ \(public\)/);
    expect(shown.stdout).toContain(
      `  settings   work_mem=12MB, for ${reader}: search_path=app, public`,
    );
    expect(shown.stdout).toMatch(/ {2}locale {5}UTF8, libc, collate \S+, ctype \S+/);
    const json = await runJson(['backups', 'show', 'latest', '--database-url', db.url], {
      cwd: ws.dir,
    });
    const manifest = (json.doc.backup as { manifest: { needs: ClusterNeeds } }).manifest;
    expect(manifest.needs).toEqual(needs);
  });

  it('still shows a backup whose manifest predates the record', async () => {
    const [dir] = await backupDirs(path.join(ws.dir, '.lifeboat/backups'));
    const manifest = JSON.parse(
      await readFile(path.join(dir!, 'manifest.json'), 'utf8'),
    ) as Manifest;
    delete manifest.needs;
    const text = `${JSON.stringify(manifest, null, 2)}\n`;
    await writeFile(path.join(dir!, 'manifest.json'), text);
    await writeFile(path.join(dir!, 'manifest.sha256'), `${sha256Hex(text)}  manifest.json\n`);
    const shown = await runCli(['backups', 'show', manifest.id], { cwd: ws.dir });
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toContain('  needs      not recorded (the backup predates the record)');
    expect(shown.stdout).toContain('  content    ');
  });
});
