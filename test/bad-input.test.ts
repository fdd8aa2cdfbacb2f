import { execFile } from 'node:child_process';
import { chmod, mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupDirs, partialDirs, smallDatabase } from './support/backups.js';
import { runCli, runJson, workspace } from './support/cli.js';
import { adminUrl, urlFor, type TestDatabase } from './support/db.js';
import pg from 'pg';

const exec = promisify(execFile);

/** One sentence, no stack trace: what a user error must look like. */
function expectPlainError(stderr: string): void {
  // The task list may show the failed task above; the error itself is one plain line.
  expect(stderr).toMatch(/^error: [^\n]+$/m);
  expect(stderr).not.toMatch(/\n\s+at .*:\d+:\d+/);
}

describe('bad input is refused with exit 2 and changes nothing', () => {
  let db: TestDatabase;
  let ws: Awaited<ReturnType<typeof workspace>>;
  beforeAll(async () => {
    db = await smallDatabase('bad_input');
    ws = await workspace();
  });
  afterAll(async () => {
    await db.drop();
    await ws.cleanup();
  });

  it('an unreachable server', async () => {
    const r = await runCli(
      ['backup', '--database-url', 'postgres://nobody:pw-unreachable@127.0.0.1:1/x'],
      { cwd: ws.dir },
    );
    expect(r.code).toBe(2);
    expectPlainError(r.stderr);
    expect(r.stderr).toMatch(/Cannot connect to nobody@127\.0\.0\.1:1\/x: connection refused/);
    expect(r.stderr + r.stdout).not.toContain('pw-unreachable');
  });

  it('a wrong password, which never appears in any output', async () => {
    const role = `lb_pw_${Date.now().toString(16)}`;
    const admin = new pg.Client({ connectionString: adminUrl() });
    await admin.connect();
    try {
      await admin.query(
        `create role ${pg.escapeIdentifier(role)} login password 'Right-Pass-9137'`,
      );
      const url = new URL(urlFor(db.name));
      url.username = role;
      url.password = 'Wr0ng-Secret-Pass';
      for (const cmd of [['backup'], ['gate'], ['doctor'], ['verify']]) {
        const r = await runJson([...cmd, '--database-url', url.toString()], { cwd: ws.dir });
        expect(r.code, cmd.join(' ')).toBe(2);
        expect(r.stderr).toMatch(/authentication failed for user/);
        const everything = r.stdout + r.stderr;
        expect(everything).not.toContain('Wr0ng-Secret-Pass');
        expect(everything).not.toContain('Right-Pass-9137');
      }
      // The same through PGPASSWORD rather than the URL.
      url.password = '';
      const r = await runCli(['backup', '--database-url', url.toString()], {
        cwd: ws.dir,
        env: { PGPASSWORD: 'Wr0ng-Secret-Pass' },
      });
      expect(r.code).toBe(2);
      expect(r.stdout + r.stderr).not.toContain('Wr0ng-Secret-Pass');
    } finally {
      await admin.query(`drop role if exists ${pg.escapeIdentifier(role)}`);
      await admin.end();
    }
  });

  it('pg_dump missing', async () => {
    const empty = path.join(ws.dir, 'no-tools');
    await mkdir(empty, { recursive: true });
    const r = await runCli(['backup', '--database-url', db.url], {
      cwd: ws.dir,
      env: { LIFEBOAT_PG_BINDIR: empty },
    });
    expect(r.code).toBe(2);
    expectPlainError(r.stderr);
    expect(r.stderr).toMatch(
      /pg_dump was not found in .*no-tools, the directory LIFEBOAT_PG_BINDIR names; point LIFEBOAT_PG_BINDIR at/,
    );
    expect(await backupDirs(path.join(ws.dir, '.lifeboat/backups'))).toEqual([]);
  });

  it('LIFEBOAT_PG_BINDIR naming a directory that does not exist', async () => {
    const r = await runCli(['backup', '--database-url', db.url], {
      cwd: ws.dir,
      env: { LIFEBOAT_PG_BINDIR: '/nowhere/pg/bin' },
    });
    expect(r.code).toBe(2);
    expectPlainError(r.stderr);
    expect(r.stderr).toMatch(
      /^error: LIFEBOAT_PG_BINDIR names \/nowhere\/pg\/bin, which does not exist; point it at the directory holding pg_dump/m,
    );
  });

  it('a password with an unencoded @ or #, and an unknown sslmode', async () => {
    const url = new URL(db.url);
    const r = await runCli(
      ['gate', '--database-url', `postgres://app:se@cret#word@${url.host}/${db.name}`],
      { cwd: ws.dir },
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: The user name or password in the database URL holds an @/m);
    expect(r.stderr).not.toMatch(/cret/);
    const bogus = new URL(db.url);
    bogus.searchParams.set('sslmode', 'bogus');
    const ssl = await runCli(['gate', '--database-url', bogus.toString()], { cwd: ws.dir });
    expect(ssl.code).toBe(2);
    expect(ssl.stderr).toMatch(/sslmode="bogus" is not an sslmode/);
    expect(ssl.stderr).not.toMatch(/does not support SSL/);
  });

  it('pg_dump older than the server', async () => {
    const old = path.join(ws.dir, 'old-tools');
    await mkdir(old, { recursive: true });
    for (const tool of ['pg_dump', 'pg_restore']) {
      await writeFile(path.join(old, tool), `#!/bin/sh\necho "${tool} (PostgreSQL) 12.4"\n`);
      await chmod(path.join(old, tool), 0o755);
    }
    const r = await runCli(['backup', '--database-url', db.url], {
      cwd: ws.dir,
      env: { LIFEBOAT_PG_BINDIR: old },
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/pg_dump 12\.4 .* is older than the server \(PostgreSQL \d+\)/);
    const doctor = await runCli(['doctor', '--database-url', db.url], {
      cwd: ws.dir,
      env: { LIFEBOAT_PG_BINDIR: old },
    });
    expect(doctor.code).toBe(2);
    expect(doctor.stdout).toMatch(/FAIL {2}pg_dump: pg_dump 12\.4/);
    expect(doctor.stdout).toMatch(/ok {4}server: /);
  });

  it('a destination that is not writable', async () => {
    const blocker = path.join(ws.dir, 'a-file');
    await writeFile(blocker, 'not a directory');
    const cfgWs = await workspace({ destinations: [{ path: path.join(blocker, 'backups') }] });
    try {
      const r = await runCli(['backup', '--database-url', db.url], { cwd: cfgWs.dir });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/No destination can be written to/);
      expect(r.stderr).toMatch(/a-file\/backups/);
      const doctor = await runCli(['doctor', '--database-url', db.url], { cwd: cfgWs.dir });
      expect(doctor.code).toBe(2);
      expect(doctor.stdout).toMatch(/FAIL {2}destination local: .*is not writable/);
    } finally {
      await cfgWs.cleanup();
    }
  });

  it('a config with several problems names them all', async () => {
    const cfgWs = await workspace({
      policy: { maxAge: 'whenever', copies: 0 },
      jobs: 0,
      colour: 'blue',
    });
    try {
      const r = await runCli(['backup', '--database-url', db.url], { cwd: cfgWs.dir });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/The configuration lifeboat\.config\.json has 4 problems\./);
      expect(r.stderr).toMatch(
        /lifeboat\.config\.json:\d+:\d+: policy\.maxAge: write a duration with its unit.*\(got "whenever"\)/,
      );
      expect(r.stderr).toMatch(/lifeboat\.config\.json:\d+:\d+: colour: unknown key "colour"/);
    } finally {
      await cfgWs.cleanup();
    }
  });

  it('an unknown command or flag', async () => {
    const r = await runCli(['bakcup'], { cwd: ws.dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: Unknown argument bakcup; did you mean backup\?/m);
  });

  it('doctor passes on a healthy setup, one line per check', async () => {
    const r = await runJson(['doctor', '--database-url', db.url], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(0);
    const checks = (r.doc.doctor as { checks: { name: string; ok: boolean }[] }).checks;
    expect(checks.map((c) => c.name)).toEqual([
      'config',
      'server',
      'privileges: read everything (backup, fingerprints)',
      'privileges: run journal (run, rollback)',
      'privileges: create scratch database (verify, rehearse, restore)',
      'privileges: restore --swap',
      'privileges: run --freeze',
      'privileges: restore owners and privileges',
      'restore role',
      'pg_dump',
      'pg_restore',
      'next backup',
      'destination local',
    ]);
    expect(checks.every((c) => c.ok)).toBe(true);
  });
});

describe('the disk filling up', () => {
  let db: TestDatabase;
  let ws: Awaited<ReturnType<typeof workspace>>;
  const mounts: string[] = [];
  beforeAll(async () => {
    db = await smallDatabase('disk_full', 10);
    // About 6 MB of incompressible bytes: more than the small file systems below can hold.
    await db.query(
      `create table blobs as select g as id, decode(string_agg(md5(g::text || ':' || i), ''), 'hex') as b
         from generate_series(1, 3000) g, generate_series(1, 128) i group by g`,
    );
    ws = await workspace();
  });
  afterAll(async () => {
    for (const m of mounts) await exec('umount', [m]).catch(() => undefined);
    await db.drop();
    await ws.cleanup();
  });

  /** A tiny file system (tmpfs) to fill; the suite runs as root in CI. */
  async function smallDisk(name: string): Promise<string> {
    const dir = path.join(ws.dir, name);
    await mkdir(dir, { recursive: true });
    await exec('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]);
    mounts.push(dir);
    return dir;
  }

  it('during the dump: no partial backup is listed, and the error says what happened', async () => {
    const disk = await smallDisk('full1');
    const cfg = await workspace({ destinations: [{ path: disk }] });
    try {
      const r = await runCli(['backup', '--database-url', db.url], { cwd: cfg.dir });
      expect(r.code).toBe(2);
      expectPlainError(r.stderr);
      expect(r.stderr).toMatch(
        /filled up during the dump \(no space left on device\); the partial backup was removed/,
      );
      // Only the failed backup's report may be there; no backup, whole or partial.
      expect((await readdir(disk)).filter((n) => n !== 'reports')).toEqual([]);
      expect((await runJson(['backups', 'list'], { cwd: cfg.dir })).doc.backups).toEqual([]);
    } finally {
      await cfg.cleanup();
    }
  });

  it('while storing a second copy: that copy is dropped and the shortfall reported', async () => {
    const disk = await smallDisk('full2');
    const cfg = await workspace({
      destinations: [
        { name: 'near', path: 'near' },
        { name: 'small', path: disk },
      ],
      policy: { copies: 2 },
    });
    try {
      const r = await runCli(['backup', '--database-url', db.url], { cwd: cfg.dir });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/held in 1 destination\(s\) but the policy requires 2/);
      expect(r.stderr).toMatch(/small: .*ran out of space/);
      // Only the failed backup's report may be there; no backup, whole or partial.
      expect((await readdir(disk)).filter((n) => n !== 'reports')).toEqual([]);
      expect(await partialDirs(disk)).toEqual([]);
      // The near copy is complete and listed; the gate refuses for want of a second copy.
      expect(await backupDirs(path.join(cfg.dir, 'near'))).toHaveLength(1);
      expect((await runCli(['gate', '--database-url', db.url], { cwd: cfg.dir })).code).toBe(3);
    } finally {
      await cfg.cleanup();
    }
  });
});
