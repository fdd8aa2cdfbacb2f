import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compareFingerprints, type Fingerprints } from '../src/fingerprint.js';
import { fingerprintDatabase } from '../src/fingerprint-session.js';
import { sha256Hex, type Manifest } from '../src/repository/manifest.js';
import { lockKey } from '../src/marked-database.js';
import { splitSettingList } from '../src/restore/database-properties.js';
import { suffixedName } from '../src/restore/databases.js';
import { connectionString, resolveTarget } from '../src/target.js';
import { backupDirs, largestDataFile, smallDatabase } from './support/backups.js';
import { runCli, runJson, startPaused, workspace, type CliResult } from './support/cli.js';
import { adminUrl, urlFor, type TestDatabase } from './support/db.js';

/**
 * `lifeboat restore` against a real server, through the built CLI: a restore
 * never overwrites, proves what it restored, swaps names only atomically and
 * only when no one is connected (or when told to end them), and a crash at
 * any point leaves the target's name on exactly one database: the original.
 */
describe('lifeboat restore', () => {
  let db: TestDatabase;
  let ws: Awaited<ReturnType<typeof workspace>>;
  let admin: pg.Client;
  let backupId: string;
  let backupDir: string;
  let manifest: Manifest;
  const outputs: CliResult[] = [];

  const cli = async (args: string[]): Promise<CliResult> => {
    const r = await runCli([...args, '--database-url', db.url], { cwd: ws.dir });
    outputs.push(r);
    return r;
  };
  const json = async (args: string[]): Promise<CliResult & { doc: Record<string, unknown> }> => {
    const r = await runJson([...args, '--database-url', db.url], { cwd: ws.dir });
    outputs.push(r);
    return r;
  };

  /** Every database whose name starts with the test database's (its restored and replaced copies). */
  async function family(): Promise<{ name: string; oid: number; comment: string | null }[]> {
    const res = await admin.query<{ name: string; oid: number; comment: string | null }>(
      `select datname as name, oid::int as oid, shobj_description(oid, 'pg_database') as comment
         from pg_database where left(datname, length($1)) = $1 order by datname`,
      [db.name],
    );
    return res.rows;
  }

  /** Hashed as `like` was (the manifest's method), to compare with it. */
  const fingerprintOf = (name: string, like?: Fingerprints): Promise<Fingerprints> =>
    fingerprintDatabase(resolveTarget(urlFor(name)), { contentMethod: like?.contentMethod });

  async function count(name: string, sql: string): Promise<number> {
    const client = new pg.Client({ connectionString: urlFor(name) });
    await client.connect();
    try {
      return Number((await client.query<{ n: string }>(sql)).rows[0]!.n);
    } finally {
      await client.end();
    }
  }

  beforeEach(async () => {
    db = await smallDatabase('restore', 2000);
    ws = await workspace();
    admin = new pg.Client({ connectionString: adminUrl() });
    admin.on('error', () => undefined);
    await admin.connect();
    outputs.length = 0;
    const r = await cli(['backup', '--no-verify']);
    expect(r.code, r.stderr).toBe(0);
    [backupDir] = (await backupDirs(path.join(ws.dir, '.lifeboat/backups'))) as [string];
    backupId = path.basename(backupDir);
    manifest = JSON.parse(
      await readFile(path.join(backupDir, 'manifest.json'), 'utf8'),
    ) as Manifest;
  });

  afterEach(async () => {
    for (const { name } of await family()) {
      await admin.query(`drop database if exists ${pg.escapeIdentifier(name)} with (force)`);
    }
    await admin.end();
    await ws.cleanup();
    // The password of the test server's URL never reaches any output.
    const password = decodeURIComponent(new URL(db.url).password);
    if (password) {
      for (const r of outputs) expect(`${r.stdout}\n${r.stderr}`).not.toContain(password);
    }
  });

  it('restores beside the target, proves it, and leaves the target untouched', async () => {
    await db.query(`alter database ${pg.escapeIdentifier(db.name)} set work_mem = '7MB'`);
    const before = await fingerprintOf(db.name);
    const [original] = await family();

    const r = await json(['restore', backupId]);
    expect(r.code, r.stderr).toBe(0);
    const restore = r.doc.restore as {
      database: string;
      proved: boolean;
      connection: string;
      properties: string[];
      swapped?: unknown;
    };
    expect(restore.database).toMatch(new RegExp(`^${db.name}__restored_\\d{14}_[0-9a-f]{8}$`));
    expect(restore.proved).toBe(true);
    expect(restore.swapped).toBeUndefined();
    expect(restore.connection).toMatch(
      /^postgresql:\/\/[^:@]+@[^@]+\/lb_restore_\w+__restored_\d+_[0-9a-f]{8}$/,
    );
    expect(restore.properties).toContain('setting work_mem');

    // Proved by the test itself: the new database holds what the manifest recorded.
    expect(
      compareFingerprints(
        manifest.fingerprints,
        await fingerprintOf(restore.database, manifest.fingerprints),
      ),
    ).toEqual([]);
    expect(compareFingerprints(before, await fingerprintOf(db.name))).toEqual([]);
    const dbs = await family();
    expect(dbs.map((d) => d.name)).toEqual([db.name, restore.database]);
    expect(dbs[0]).toEqual(original);
    expect(dbs[1]!.comment).toMatch(new RegExp(`^lifeboat restored backup ${backupId} at `));
    const settings = await admin.query<{ setconfig: string[] }>(
      `select setconfig from pg_db_role_setting s join pg_database d on d.oid = s.setdatabase
        where d.datname = $1`,
      [restore.database],
    );
    expect(settings.rows[0]?.setconfig).toEqual(['work_mem=7MB']);

    // The human output says how to switch, without the password.
    const again = await cli(['restore', backupId, '--as', `${db.name}_second`]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/connect: postgresql:\/\/\S+@\S+\/lb_restore_\w+_second/);
    expect(again.stdout).toContain(`lifeboat restore ${backupId} --swap`);
    expect(again.stdout).toMatch(/BEGIN; ALTER DATABASE .* RENAME TO .*; COMMIT;/);
  });

  it('refuses a name that exists (exit 2) and changes nothing', async () => {
    const taken = `${db.name}_taken`;
    await admin.query(`create database ${pg.escapeIdentifier(taken)}`);
    const before = await family();
    const r = await json(['restore', backupId, '--as', taken]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/already exists; a restore never overwrites anything/);
    expect(await family()).toEqual(before);
    expect(await count(taken, `select count(*) as n from pg_class where relname = 'items'`)).toBe(
      0,
    );

    const self = await cli(['restore', backupId, '--as', db.name]);
    expect(self.code).toBe(2);
    expect(await family()).toEqual(before);
  });

  it('keeps owners by default; a role missing on the server is bad input unless --no-owner', async () => {
    const role = `${db.name}_owner`;
    await admin.query(`create role ${pg.escapeIdentifier(role)}`);
    try {
      await db.query(`alter table items owner to ${pg.escapeIdentifier(role)}`);
      expect((await cli(['backup', '--no-verify'])).code).toBe(0);
      const ids = (await backupDirs(path.join(ws.dir, '.lifeboat/backups'))).map((d) =>
        path.basename(d),
      );
      const owned = ids.find((id) => id !== backupId)!;

      const kept = await json(['restore', owned, '--as', `${db.name}_owned`]);
      expect(kept.code, kept.stderr).toBe(0);
      const owner = `select count(*) as n from pg_tables where tablename = 'items' and tableowner = '${role}'`;
      expect(await count(`${db.name}_owned`, owner)).toBe(1);

      await admin.query(`drop database ${pg.escapeIdentifier(`${db.name}_owned`)}`);
      await db.query(`reassign owned by ${pg.escapeIdentifier(role)} to current_user`);
      await admin.query(`drop role ${pg.escapeIdentifier(role)}`);
      const before = await family();
      const missing = await cli(['restore', owned]);
      expect(missing.code, missing.stderr).toBe(2);
      expect(missing.stderr).toContain(`names role "${role}"`);
      expect(missing.stderr).toMatch(/--no-owner/);
      expect(await family()).toEqual(before);

      const without = await json(['restore', owned, '--no-owner', '--as', `${db.name}_noowner`]);
      expect(without.code, without.stderr).toBe(0);
      expect((without.doc.restore as { proved: boolean }).proved).toBe(true);
    } finally {
      await admin.query(`drop role if exists ${pg.escapeIdentifier(role)}`).catch(() => undefined);
    }
  });

  it('refuses a damaged backup (exit 4) and creates nothing', async () => {
    const file = await largestDataFile(backupDir);
    const bytes = await readFile(file);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
    await writeFile(file, bytes);
    const before = await family();
    const r = await cli(['restore', backupId]);
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toMatch(/no intact copy/);
    expect(r.stderr).toMatch(/SHA-256 differs from the manifest/);
    expect(await family()).toEqual(before);
  });

  it('keeps a restore whose content differs (exit 4) for inspection, marked unproven', async () => {
    const file = path.join(backupDir, 'manifest.json');
    const edited = { ...manifest };
    edited.fingerprints.tables[0]!.rows += 1;
    const text = JSON.stringify(edited, null, 2);
    await writeFile(file, text);
    await writeFile(path.join(backupDir, 'manifest.sha256'), `${sha256Hex(text)}  manifest.json\n`);
    const r = await json(['restore', backupId, '--swap', '--yes']);
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toMatch(/table public\.items: expected 2001 rows?, found 2000 rows?/);
    const dbs = await family();
    expect(dbs).toHaveLength(2);
    expect(dbs[0]!.name).toBe(db.name);
    expect(dbs[1]!.comment).toMatch(/^lifeboat-restored-unproven /);
    expect((r.doc.result as { database: string }).database).toBe(dbs[1]!.name);
    // The next restore does not take it for a crashed one.
    const next = await cli(['restore', backupId, '--as', `${db.name}_x`]);
    expect(next.code).toBe(4);
    expect((await family()).map((d) => d.name)).toContain(dbs[1]!.name);
  });

  it('--swap refuses (exit 2) while a session is connected to the target, naming it', async () => {
    const session = new pg.Client({
      connectionString: db.url,
      application_name: 'someones-report',
    });
    session.on('error', () => undefined);
    await session.connect();
    try {
      const res = await session.query<{ pid: number }>('select pg_backend_pid() as pid');
      const pid = res.rows[0]!.pid;
      const before = await family();
      const r = await cli(['restore', backupId, '--swap', '--yes']);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/Cannot swap: 1 session\(s\) are connected/);
      expect(r.stderr).toContain(`pid ${pid}`);
      expect(r.stderr).toContain('application "someones-report"');
      expect(r.stderr).toMatch(/--terminate/);
      expect(await family()).toEqual(before);
      // The session was left alone.
      expect((await session.query<{ one: number }>('select 1 as one')).rows[0]!.one).toBe(1);
    } finally {
      await session.end().catch(() => undefined);
    }
  });

  it('--swap --terminate puts the backup under the target name and keeps the replaced one', async () => {
    await db.query(`insert into items (name, qty) values ('written after the backup', 1)`);
    const [original] = await family();
    const session = new pg.Client({ connectionString: db.url, application_name: 'long-report' });
    session.on('error', () => undefined);
    await session.connect();
    try {
      const r = await json(['restore', backupId, '--swap', '--terminate', '--yes']);
      expect(r.code, r.stderr).toBe(0);
      const restore = r.doc.restore as {
        database: string;
        restoredAs: string;
        swapped: { replacedAs: string; terminated: { application: string }[] };
      };
      expect(restore.database).toBe(db.name);
      expect(restore.swapped.replacedAs).toMatch(new RegExp(`^${db.name}__replaced_\\d{14}$`));
      expect(restore.swapped.terminated.map((s) => s.application)).toEqual(['long-report']);

      const dbs = await family();
      expect(dbs.map((d) => d.name).sort()).toEqual([db.name, restore.swapped.replacedAs].sort());
      const now = dbs.find((d) => d.name === db.name)!;
      const replaced = dbs.find((d) => d.name === restore.swapped.replacedAs)!;
      expect(replaced.oid).toBe(original!.oid);
      expect(now.oid).not.toBe(original!.oid);
      expect(now.comment).toMatch(/^lifeboat restored backup /);

      const late = `select count(*) as n from items where name = 'written after the backup'`;
      expect(await count(db.name, late)).toBe(0);
      expect(await count(restore.swapped.replacedAs, late)).toBe(1);
      expect(
        compareFingerprints(
          manifest.fingerprints,
          await fingerprintOf(db.name, manifest.fingerprints),
        ),
      ).toEqual([]);
    } finally {
      await session.end().catch(() => undefined);
    }
  });

  /** Whether no live restore holds `name`'s lock, taken in the database it restores from. */
  async function lockFree(name: string, maintenanceDb: string): Promise<boolean> {
    const client = new pg.Client({ connectionString: urlFor(maintenanceDb) });
    await client.connect();
    try {
      const key = lockKey('lifeboat-restoring');
      const res = await client.query<{ ok: boolean }>(`select pg_try_advisory_lock(${key}) as ok`, [
        name,
      ]);
      return res.rows[0]?.ok === true;
    } finally {
      await client.end();
    }
  }

  it('SIGKILL after pg_restore leaves a marked database that the next restore drops', async () => {
    const lookAlike = `${db.name}__restored_20000101000000`;
    await admin.query(`create database ${pg.escapeIdentifier(lookAlike)}`);
    // Restored from a maintenance database of its own: the restores of other test files, which
    // drop any abandoned restore marked from theirs, cannot take this one's leftover first.
    const maintenanceDb = `lb_maint_${db.name.slice(-12)}`;
    await admin.query(`create database ${pg.escapeIdentifier(maintenanceDb)}`);
    const from = ['--maintenance-db', maintenanceDb];
    try {
      const run = await startPaused(
        ['restore', backupId, ...from, '--database-url', db.url],
        'restore:restored',
        { cwd: ws.dir },
      );
      await run.reached();
      const marked = (await family()).filter((d) => d.comment?.startsWith('lifeboat-restoring '));
      expect(marked).toHaveLength(1);
      const leftover = marked[0]!.name;
      // While its process lives, its lock keeps another restore's hands off it.
      const during = await json(['restore', backupId, ...from, '--as', `${db.name}_during`]);
      expect(during.code, during.stderr).toBe(0);
      expect((during.doc.restore as { cleaned: string[] }).cleaned).toEqual([]);
      outputs.push(await run.kill9());
      expect((await family()).map((d) => d.name)).toContain(leftover);
      // The killed process's server session ends a moment after it does, freeing the lock.
      await expect.poll(() => lockFree(leftover, maintenanceDb), { timeout: 10_000 }).toBe(true);

      const again = await json(['restore', backupId, ...from, '--as', `${db.name}_again`]);
      expect(again.code, again.stderr).toBe(0);
      expect((again.doc.restore as { cleaned: string[] }).cleaned).toEqual([leftover]);
      expect((await family()).map((d) => d.name).sort()).toEqual(
        [db.name, `${db.name}_again`, `${db.name}_during`, lookAlike].sort(),
      );
    } finally {
      await admin.query(
        `drop database if exists ${pg.escapeIdentifier(maintenanceDb)} with (force)`,
      );
    }
  });

  it('SIGKILL between the two renames of a swap leaves the original under the target name', async () => {
    const before = await fingerprintOf(db.name);
    const [original] = await family();
    const run = await startPaused(
      ['restore', backupId, '--swap', '--yes', '--database-url', db.url],
      'restore:swap-between-renames',
      { cwd: ws.dir },
    );
    await run.reached();
    // Paused inside the transaction, after the first rename: it holds the target's name.
    expect(await busy([db.name])).toBe(true);
    outputs.push(await run.kill9());
    // The server rolls the killed session's transaction back once it sees the socket close.
    let dbs = await family();
    for (let i = 0; i < 200 && (await busy(dbs.map((d) => d.name))); i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      dbs = await family();
    }
    const named = dbs.filter((d) => d.name === db.name);
    expect(named).toHaveLength(1);
    expect(named[0]!.oid).toBe(original!.oid);
    expect(compareFingerprints(before, await fingerprintOf(db.name))).toEqual([]);
    const others = dbs.filter((d) => d.name !== db.name);
    expect(others).toHaveLength(1);
    expect(others[0]!.name).toMatch(new RegExp(`^${db.name}__restored_\\d{14}_[0-9a-f]{8}$`));
    expect(others[0]!.comment).toMatch(/^lifeboat restored backup /);
    expect(dbs.some((d) => d.name.includes('__replaced_'))).toBe(false);
  });

  /** True while a lifeboat session still holds a transaction open on the server. */
  async function busy(names: string[]): Promise<boolean> {
    const res = await admin.query(
      `select 1 from pg_locks l join pg_database d on d.oid = l.objid
        where l.locktype = 'object' and l.classid = 'pg_database'::regclass
          and d.datname = any($1::text[])`,
      [names],
    );
    return (res.rowCount ?? 0) > 0;
  }
});

describe('restore names and strings', () => {
  it('fits generated names into 63 bytes by shortening the target part', () => {
    expect(suffixedName('app', '__restored_20261121101500')).toBe('app__restored_20261121101500');
    const long = suffixedName('ä'.repeat(40), '__replaced_20261121101500');
    expect(Buffer.byteLength(long)).toBeLessThanOrEqual(63);
    expect(long.endsWith('__replaced_20261121101500')).toBe(true);
    expect(long.startsWith('ää')).toBe(true);
  });

  it('reads list settings as PostgreSQL stores them', () => {
    expect(splitSettingList('"$user", public, "Odd ""Schema"""')).toEqual([
      '$user',
      'public',
      'Odd "Schema"',
    ]);
    expect(splitSettingList('')).toEqual([]);
  });

  it('writes connection strings without the password', () => {
    const tcp = resolveTarget('postgres://ann:s3cret-pw@db.example:6543/app?sslmode=require');
    expect(connectionString(tcp)).toBe('postgresql://ann@db.example:6543/app?sslmode=require');
    const socket = { ...tcp, host: '/var/run/postgresql', sslmode: undefined, database: 'a b' };
    expect(connectionString(socket)).toBe(
      'postgresql://ann@/a%20b?host=%2Fvar%2Frun%2Fpostgresql&port=6543',
    );
  });
});
