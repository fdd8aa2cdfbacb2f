import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from '../src/cluster.js';
import { runCli, runJson, workspace } from './support/cli.js';
import { adminUrl, createTestDatabase, type TestDatabase, rowsAt } from './support/db.js';
import { startNewerServer } from './support/newer-servers.js';
import { storeWithBucket } from './support/s3.js';

const exec = promisify(execFile);

/**
 * `lifeboat restore ID --to URL`: a backup of the suite's server (15) restored
 * onto a PostgreSQL 17 server that has never seen the database, as after the
 * loss of the source's machine: checked first for what the dump needs, then
 * restored with owners and privileges and proved.
 */
let server: Cluster;
const tag = `lb_to_${Date.now().toString(16)}`;
const [owner, reader] = [`${tag}_owner`, `${tag}_reader`];

const query = rowsAt;

function urlFor(database: string): string {
  const url = new URL(server.url);
  url.pathname = `/${encodeURIComponent(database)}`;
  return url.toString();
}

async function databases(): Promise<string[]> {
  const rows = await query<{ d: string }>(
    server.url,
    `select datname as d from pg_database where not datistemplate and datname <> 'postgres' order by 1`,
  );
  return rows.map((r) => r.d);
}

beforeAll(async () => {
  server = await startNewerServer(17);
});
afterAll(async () => {
  await server?.stop();
  for (const role of [reader, owner])
    await query(adminUrl(), `drop role if exists ${pg.escapeIdentifier(role)}`);
});

describe('a backup restored onto a server that has never seen the database', () => {
  let source: TestDatabase;
  let ws: Awaited<ReturnType<typeof workspace>>;
  let backupId: string;
  const password = (): string => decodeURIComponent(new URL(server.url).password);

  beforeAll(async () => {
    const [o, r] = [pg.escapeIdentifier(owner), pg.escapeIdentifier(reader)];
    await query(
      adminUrl(),
      `create role ${r} nologin; create role ${o} nologin createdb in role ${r}`,
    );
    source = await createTestDatabase('restore_to');
    const db = pg.escapeIdentifier(source.name);
    await source.query(
      `create extension citext;
       create schema app authorization ${o};
       create table app.accounts (id int primary key, email citext not null, note text);
       insert into app.accounts select g, 'User' || g || '@Example.com', repeat('x', g % 7)
         from generate_series(1, 500) g;
       alter table app.accounts owner to ${o};
       grant usage on schema app to ${r};
       grant select on app.accounts to ${r};
       select lo_from_bytea(0, 'attachment');
       alter database ${db} owner to ${o};
       alter database ${db} set work_mem = '8MB';
       alter role ${r} in database ${db} set search_path = app, public`,
    );
    ws = await workspace();
    const backup = await runJson(['backup', '--database-url', source.url], { cwd: ws.dir });
    expect(backup.code, backup.stderr).toBe(0);
    backupId = (backup.doc.backup as { id: string }).id;
  });
  afterAll(async () => {
    await source?.drop();
    await ws?.cleanup();
  });

  it('refuses before creating anything, naming each role the server lacks', async () => {
    const r = await runCli(
      ['restore', backupId, '--to', server.url, '--database-url', source.url],
      {
        cwd: ws.dir,
      },
    );
    expect(r.code, r.stdout).toBe(2);
    expect(r.stderr).toContain(`The destination server lacks 2 thing(s) backup ${backupId} needs`);
    expect(r.stderr).toContain('restore with --create-roles');
    expect(r.stderr).toContain(`role ${owner} is missing (NOLOGIN CREATEDB; owns `);
    expect(r.stderr).toContain(`role ${reader} is missing (NOLOGIN; granted on `);
    expect(await databases()).toEqual([]);
    expect(`${r.stdout}${r.stderr}`).not.toContain(password());
  });

  it('--dry-run says what would be done and what stands in the way, and creates nothing', async () => {
    const refused = await runCli(
      ['restore', backupId, '--to', server.url, '--dry-run', '--database-url', source.url],
      { cwd: ws.dir },
    );
    expect(refused.code).toBe(2);
    expect(refused.stdout).toMatch(
      new RegExp(`^Dry run: lifeboat restore ${backupId} onto \\S+ as ${source.name}$`, 'm'),
    );
    expect(refused.stdout).toContain(`  refused: role ${owner} is missing`);
    expect(refused.stdout).toContain('Nothing was changed (dry run).');
    expect(refused.stderr).toContain('It would stop before changing anything (exit 2)');

    const fine = await runCli(
      [
        'restore',
        backupId,
        '--to',
        server.url,
        '--dry-run',
        '--create-roles',
        '--database-url',
        source.url,
      ],
      { cwd: ws.dir },
    );
    expect(fine.code, fine.stderr).toBe(0);
    expect(fine.stdout).toContain(`; create roles ${owner}, ${reader}`);
    expect(fine.stdout).not.toContain('refused:');
    expect(`${fine.stdout}${refused.stdout}${refused.stderr}`).not.toContain(password());
    expect(await databases()).toEqual([]);
    const roles = await query(server.url, 'select 1 from pg_roles where rolname like $1', [
      `${tag}%`,
    ]);
    expect(roles).toEqual([]);
  });

  it('with --create-roles: restores under the source name with owners, grants and settings, proved', async () => {
    const r = await runJson(
      ['restore', backupId, '--to', server.url, '--create-roles', '--database-url', source.url],
      { cwd: ws.dir },
    );
    expect(r.code, r.stderr).toBe(0);
    const restore = r.doc.restore as {
      restoredAs: string;
      proved: boolean;
      onto: { server: string; createdRoles: string[]; phases: Record<string, number> };
    };
    expect(restore.restoredAs).toBe(source.name);
    expect(restore.proved).toBe(true);
    expect(restore.onto.createdRoles).toEqual([owner, reader]);
    expect(Object.keys(restore.onto.phases)).toEqual([
      'preflightMs',
      'restoreMs',
      'proveMs',
      'finishMs',
    ]);
    expect(r.stdout).not.toContain(password());
    expect(await databases()).toEqual([source.name]);

    const url = urlFor(source.name);
    const [roles] = await query<{ login: boolean; createdb: boolean; member: boolean }>(
      url,
      `select o.rolcanlogin as login, o.rolcreatedb as createdb,
              pg_has_role($1, $2, 'member') as member
         from pg_roles o where o.rolname = $1`,
      [owner, reader],
    );
    expect(roles).toEqual({ login: false, createdb: true, member: true });
    const [facts] = await query<Record<string, unknown>>(
      url,
      `select (select tableowner from pg_tables where schemaname = 'app') as table_owner,
              pg_get_userbyid(d.datdba)::text as db_owner,
              has_table_privilege($1, 'app.accounts', 'select') as reader_selects,
              has_table_privilege($1, 'app.accounts', 'insert') as reader_inserts,
              (select count(*)::int from app.accounts where email = 'user7@example.com') as citext_rows,
              (select count(*)::int from pg_largeobject_metadata) as large_objects,
              current_setting('server_version_num')::int / 10000 as major
         from pg_database d where d.datname = current_database()`,
      [reader],
    );
    expect(facts).toEqual({
      table_owner: owner,
      db_owner: owner,
      reader_selects: true,
      reader_inserts: false,
      citext_rows: 1,
      large_objects: 1,
      major: 17,
    });
    const settings = await query<{ role: string | null; config: string[] }>(
      url,
      `select pg_get_userbyid(nullif(setrole, 0))::text as role, setconfig as config
         from pg_db_role_setting s join pg_database d on d.oid = s.setdatabase
        where d.datname = current_database() order by setrole`,
    );
    expect(settings).toEqual([
      { role: null, config: ['work_mem=8MB'] },
      { role: reader, config: ['search_path=app, public'] },
    ]);
  });

  it('never restores over a database of that name: a second restore is refused; a new name works with the source gone', async () => {
    const again = await runCli(
      ['restore', backupId, '--to', server.url, '--database-url', source.url],
      { cwd: ws.dir },
    );
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(`"${source.name}" already exists`);

    const beside = await runCli(
      [
        'restore',
        backupId,
        '--to',
        server.url,
        '--as',
        'second_copy',
        // The source's server is gone: a backup id needs nothing of it.
        '--database-url',
        'postgres://gone@127.0.0.1:1/gone',
      ],
      { cwd: ws.dir },
    );
    expect(beside.code, beside.stderr).toBe(0);
    expect(beside.stdout).toMatch(
      new RegExp(`^Restored backup ${backupId} onto \\S+ as second_copy \\(copy from local, `, 'm'),
    );
    expect(beside.stdout).toContain(
      '  proved: 1 tables, 0 sequences, 1 large objects and the schema match the backup',
    );
    expect(beside.stdout).toMatch(
      /^ {2}phases: preflight \S+, restore \S+, proof \S+, settings \S+$/m,
    );
    expect(beside.stdout).not.toContain('created roles');
    expect(beside.stdout).not.toContain(password());
    expect(await databases()).toEqual([source.name, 'second_copy'].sort());
  });

  it('"latest" with the source down goes by the database name, and says so', async () => {
    const gone = new URL(source.url);
    gone.hostname = '127.0.0.1';
    gone.port = '1';
    const r = await runJson(
      [
        'restore',
        'latest',
        '--to',
        server.url,
        '--as',
        'latest_copy',
        '--database-url',
        gone.toString(),
      ],
      { cwd: ws.dir },
    );
    expect(r.code, r.stderr).toBe(0);
    expect((r.doc.restore as { backupId: string }).backupId).toBe(backupId);
    expect(r.stderr).toContain(`The source cannot be reached (Cannot connect to `);
    expect(r.stderr).toContain(
      `"latest" is the newest backup of a database named ${source.name}: ${backupId}`,
    );
    expect(await databases()).toContain('latest_copy');

    gone.pathname = '/never_backed_up';
    const none = await runCli(
      ['restore', 'latest', '--to', server.url, '--database-url', gone.toString()],
      {
        cwd: ws.dir,
      },
    );
    expect(none.code).toBe(2);
    expect(none.stderr).toContain(
      'The source cannot be reached and no backup of a database named never_backed_up is held',
    );
  });

  it('a role that may not be made is a refusal, and no role is left half made', async () => {
    const limited = `${tag}_limited`;
    await query(server.url, `create role ${limited} login createdb password 'limited-pw'`);
    const url = new URL(urlFor('postgres'));
    url.username = limited;
    url.password = 'limited-pw';
    const other = await createTestDatabase('restore_to_other');
    const role = `${tag}_other`;
    try {
      await query(adminUrl(), `create role ${pg.escapeIdentifier(role)} nologin`);
      await other.query(
        `create table t (id int); alter table t owner to ${pg.escapeIdentifier(role)}`,
      );
      const backup = await runJson(['backup', '--database-url', other.url], { cwd: ws.dir });
      expect(backup.code, backup.stderr).toBe(0);
      const id = (backup.doc.backup as { id: string }).id;
      const r = await runCli(
        ['restore', id, '--to', url.toString(), '--create-roles', '--database-url', other.url],
        { cwd: ws.dir },
      );
      expect(r.code, r.stdout).toBe(2);
      expect(r.stderr).toContain(
        `Could not create the missing roles ${role} on the destination: permission denied`,
      );
      expect(r.stderr).not.toContain('limited-pw');
      const made = await query(server.url, 'select 1 from pg_roles where rolname = $1', [role]);
      expect(made).toEqual([]);
      expect(await databases()).not.toContain(other.name);
    } finally {
      await other.drop();
      await query(adminUrl(), `drop role if exists ${pg.escapeIdentifier(role)}`);
    }
  });
});

describe('a backup whose extension the server does not have', () => {
  it('is refused before anything is created, naming the extension', async () => {
    const source = await createTestDatabase('restore_to_ext');
    const ws = await workspace();
    try {
      // adminpack ships with 15 and is gone from 17.
      await source.query('create extension adminpack; create table t (id int)');
      const backup = await runJson(['backup', '--database-url', source.url], { cwd: ws.dir });
      expect(backup.code, backup.stderr).toBe(0);
      const id = (backup.doc.backup as { id: string }).id;
      const before = await databases();
      const r = await runCli(
        ['restore', id, '--to', server.url, '--create-roles', '--database-url', source.url],
        { cwd: ws.dir },
      );
      expect(r.code, r.stdout).toBe(2);
      expect(r.stderr).toContain(
        `The destination server lacks 1 thing(s) backup ${id} needs; nothing was created.`,
      );
      expect(r.stderr).toMatch(
        /extension adminpack \([\d.]+ on the source\) is not installed on the destination server/,
      );
      expect(r.stderr).not.toContain('--create-roles');
      expect(await databases()).toEqual(before);
    } finally {
      await source.drop();
      await ws.cleanup();
    }
  });
});

describe('from an encrypted off-site copy alone, as after the loss of the source machine', () => {
  it('restores onto the other server from the store, decrypted, and proves it', async () => {
    const bucket = 'lifeboat-restore-to';
    const { s3, client } = await storeWithBucket(bucket);
    const keys = await workspace();
    const source = await createTestDatabase('restore_to_offsite');
    let ws: Awaited<ReturnType<typeof workspace>> | undefined;
    try {
      const keyFile = path.join(keys.dir, 'dr.key');
      await exec('age-keygen', ['-o', keyFile]);
      const recipient = (await exec('age-keygen', ['-y', keyFile])).stdout.trim();
      ws = await workspace({
        destinations: [
          { name: 'local', path: 'backups' },
          {
            name: 'offsite',
            url: `s3://${bucket}/dr`,
            endpoint: s3.endpoint,
            region: s3.region,
            forcePathStyle: true,
            encrypt: { recipients: [recipient] },
          },
        ],
        policy: { copies: 2 },
      });
      const env = {
        AWS_ACCESS_KEY_ID: s3.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
        LIFEBOAT_SIGNING_KEY: 'restore-to-signing-key',
      };
      await source.query(
        `create table ledger (id bigint primary key, amount numeric(12, 2), at timestamptz);
         insert into ledger select g, g * 1.25, '2026-01-01'::timestamptz + g * interval '1 minute'
           from generate_series(1, 2000) g`,
      );
      const backup = await runJson(['backup', '--database-url', source.url], { cwd: ws.dir, env });
      expect(backup.code, backup.stderr).toBe(0);
      const id = (backup.doc.backup as { id: string }).id;
      await rm(path.join(ws.dir, 'backups', id), { recursive: true });

      const r = await runJson(
        ['restore', id, '--to', server.url, '--as', 'from_offsite', '--database-url', source.url],
        { cwd: ws.dir, env: { ...env, LIFEBOAT_AGE_IDENTITY_FILE: keyFile } },
      );
      expect(r.code, r.stderr).toBe(0);
      expect(r.doc.restore).toMatchObject({ restoredFrom: 'offsite', proved: true });
      const [sum] = await query<{ n: number; total: string }>(
        urlFor('from_offsite'),
        'select count(*)::int as n, sum(amount)::text as total from ledger',
      );
      expect(sum).toEqual({ n: 2000, total: '2501250.00' });
      expect(r.stdout).not.toContain(s3.secretAccessKey);
    } finally {
      client.destroy();
      await s3.stop();
      await source.drop();
      await keys.cleanup();
      await ws?.cleanup();
    }
  });
});

describe('restore --to on the command line', () => {
  it('refuses --swap with --to, and --create-roles without it', async () => {
    const ws = await workspace();
    try {
      for (const args of [['--to', 'postgres://h/db', '--swap'], ['--create-roles']]) {
        const r = await runCli(['restore', 'latest', ...args], { cwd: ws.dir });
        expect(r.code, args.join(' ')).toBe(2);
        expect(r.stderr, args.join(' ')).toMatch(
          /--to cannot be combined with --swap|--create-roles is for a restore onto another server: give --to URL/,
        );
      }
    } finally {
      await ws.cleanup();
    }
  });
});
