import { execFile } from 'node:child_process';
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findTools } from '../../src/pg-programs/find.js';
import { smallDatabase } from '../support/backups.js';
import { runCli, runJson, workspace } from '../support/cli.js';
import { adminUrl, type TestDatabase } from '../support/db.js';
import { adminQuery, loginRole } from './support.js';

/**
 * Secrets never reach output, reports, the journal or the server log, and
 * steps never see lifeboat's own keys unless they ask for one by name.
 */
const exec = promisify(execFile);

/** Every file below `dir`, concatenated: what a reviewer of reports/ would read. */
async function allText(dir: string): Promise<string> {
  let out = '';
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out += await readFile(path.join(entry.parentPath, entry.name), 'utf8');
  }
  return out;
}

/** The throwaway server's log (test/support/globalSetup.ts starts it with pg_ctl -l <dir>/server.log). */
async function serverLog(): Promise<string> {
  const res = await adminQuery<{ log: string }>(
    `select pg_read_file(current_setting('data_directory') || '/../server.log') as log`,
  );
  return res.rows[0]!.log;
}

describe('a connection string in libpq key=value form', () => {
  let db: TestDatabase;
  let role: Awaited<ReturnType<typeof loginRole>>;
  let ws: Awaited<ReturnType<typeof workspace>>;
  beforeAll(async () => {
    db = await smallDatabase('sec_kv', 20);
    role = await loginRole('lb_kv', db.name, 'superuser');
    ws = await workspace();
  });
  afterAll(async () => {
    await db.drop();
    await role.drop();
    await ws.cleanup();
  });

  function keyValue(password: string): string {
    const url = new URL(adminUrl());
    return `host=${url.hostname} port=${url.port} user=${role.name} password='${password.replace(/'/g, "\\'")}' dbname=${db.name}`;
  }

  it('is read by libpq rules and works; the password is nowhere', async () => {
    const r = await runJson(['backup', '--database-url', keyValue(role.password)], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(0);
    expect((r.doc.backup as { target: { database: string } }).target.database).toBe(db.name);
    expect(r.stdout + r.stderr).not.toContain(role.password);
    expect(await allText(ws.dir)).not.toContain(role.password);
  });

  it('with a wrong password: one sentence, exit 2, and the password is nowhere', async () => {
    const wrong = "Wr0ng 'quoted' pass";
    const r = await runJson(['gate', '--database-url', keyValue(wrong)], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/authentication failed for user/);
    for (const piece of [wrong, 'Wr0ng', 'quoted']) {
      expect(r.stdout + r.stderr).not.toContain(piece);
      expect(await allText(ws.dir)).not.toContain(piece);
    }
  });

  it('a keyword lifeboat does not read is refused by name, never echoing values', async () => {
    const r = await runCli(
      ['gate', '--database-url', `service=prod password=S3rvice-Secret dbname=${db.name}`],
      { cwd: ws.dir },
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: .*"service"/m);
    expect(r.stdout + r.stderr).not.toContain('S3rvice-Secret');
  });
});

describe('secrets in the environment of a run', () => {
  const secrets = {
    LIFEBOAT_SIGNING_KEY: 'signing-key-e8f1c2a9b7d3',
    LIFEBOAT_AGE_IDENTITY:
      'AGE-SECRET-KEY-1QQPQQ5XQDMU2Q2J0CN6HCF4YD6WY4DCGM7P9U2TNG3YSF0EHLDASQX4RL8N',
    AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE7Q2W9',
    AWS_SECRET_ACCESS_KEY: 'aws-secret-3b9d1f7e5c2a',
  };
  let db: TestDatabase;
  let ws: Awaited<ReturnType<typeof workspace>>;
  let identityFile: string;
  let fileIdentity: string;
  beforeAll(async () => {
    db = await smallDatabase('sec_env', 20);
    ws = await workspace();
    identityFile = path.join(ws.dir, 'identity.txt');
    await exec('age-keygen', ['-o', identityFile]);
    fileIdentity = (await readFile(identityFile, 'utf8'))
      .split('\n')
      .find((l) => l.startsWith('AGE-SECRET-KEY-'))!;
    // Every statement the target receives, with its parameters, goes to the server log.
    await adminQuery(`alter database ${pg.escapeIdentifier(db.name)} set log_statement = 'all'`);
  });
  afterAll(async () => {
    await db.drop();
    await ws.cleanup();
  });

  const env = (): Record<string, string> => ({
    ...secrets,
    LIFEBOAT_AGE_IDENTITY_FILE: identityFile,
  });

  async function everywhere(): Promise<string> {
    const errors = await db.query(
      `select coalesce(string_agg(error, ' '), '') as e from
         (select error from lifeboat_journal.steps union all select error from lifeboat_journal.runs) x`,
    );
    return [
      (errors.rows[0] as { e: string }).e,
      await allText(path.join(ws.dir, '.lifeboat')),
      await serverLog(),
    ].join('\n');
  }

  it('a step that prints its environment gets none of lifeboat’s keys, and nothing records them', async () => {
    await writeFile(
      path.join(ws.dir, 'leak.yaml'),
      `name: leak
steps:
  - id: show
    shell:
      up: |
        env > seen-env.txt
        env
        echo "key:$LIFEBOAT_SIGNING_KEY age:$LIFEBOAT_AGE_IDENTITY aws:$AWS_SECRET_ACCESS_KEY" >&2
        exit 1
      down: "true"
`,
    );
    const r = await runCli(['run', 'leak.yaml', '--database-url', db.url], {
      cwd: ws.dir,
      env: env(),
    });
    expect(r.code, r.stdout + r.stderr).toBe(5);
    const seen = await readFile(path.join(ws.dir, 'seen-env.txt'), 'utf8');
    expect(seen).toMatch(/^PGDATABASE=/m);
    for (const name of [...Object.keys(secrets), 'LIFEBOAT_AGE_IDENTITY_FILE'])
      expect(seen).not.toMatch(new RegExp(`^${name}=`, 'm'));
    const recorded = `${r.stdout}\n${r.stderr}\n${await everywhere()}`;
    for (const value of [...Object.values(secrets), fileIdentity])
      expect(recorded).not.toContain(value);
  });

  it('a step may ask for one by name (secrets:); what it prints is still redacted wherever recorded', async () => {
    await writeFile(
      path.join(ws.dir, 'asks.yaml'),
      `name: asks
steps:
  - id: upload
    shell:
      secrets: [AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY]
      up: |
        env > asked-env.txt
        echo "using $AWS_SECRET_ACCESS_KEY and $LIFEBOAT_SIGNING_KEY" >&2
        exit 1
      down: "true"
`,
    );
    const r = await runJson(['run', 'asks.yaml', '--database-url', db.url], {
      cwd: ws.dir,
      env: env(),
    });
    expect(r.code, r.stdout + r.stderr).toBe(5);
    const seen = await readFile(path.join(ws.dir, 'asked-env.txt'), 'utf8');
    expect(seen).toContain(`AWS_SECRET_ACCESS_KEY=${secrets.AWS_SECRET_ACCESS_KEY}`);
    expect(seen).not.toContain(secrets.LIFEBOAT_SIGNING_KEY);
    expect(r.stderr).toContain('using ***');
    const recorded = `${r.stdout}\n${r.stderr}\n${await everywhere()}`;
    for (const value of [...Object.values(secrets), fileIdentity])
      expect(recorded).not.toContain(value);
  });

  it('a step asking for something that is not one of lifeboat’s secrets is a runbook problem', async () => {
    await writeFile(
      path.join(ws.dir, 'odd.yaml'),
      'name: odd\nsteps:\n  - id: s\n    shell:\n      secrets: [HOME]\n      up: "true"\n',
    );
    const r = await runCli(['plan', 'odd.yaml', '--offline'], { cwd: ws.dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/HOME is not one of lifeboat's own secrets/);
  });
});

describe('passwords and the PostgreSQL tools', () => {
  it('never travel in the argv of pg_dump or pg_restore', async () => {
    const db = await smallDatabase('sec_argv', 20);
    const ws = await workspace();
    try {
      const bin = path.join(ws.dir, 'bin');
      const log = path.join(ws.dir, 'argv.log');
      await mkdir(bin);
      for (const name of ['pg_dump', 'pg_restore']) {
        const [real] = await findTools(name);
        await writeFile(
          path.join(bin, name),
          `#!/bin/sh\nprintf '%s\\n' "${name} $*" >> '${log}'\nexec '${real!.path}' "$@"\n`,
        );
        await chmod(path.join(bin, name), 0o755);
      }
      const password = new URL(db.url).password;
      expect(password.length).toBeGreaterThan(8);
      const r = await runCli(['backup', '--database-url', db.url], {
        cwd: ws.dir,
        env: { LIFEBOAT_PG_BINDIR: bin },
      });
      expect(r.code, r.stderr).toBe(0);
      const argv = await readFile(log, 'utf8');
      expect(argv).toMatch(/^pg_dump .*--format=directory/m);
      expect(argv).toMatch(/^pg_restore .*--exit-on-error/m);
      expect(argv).not.toContain(password);
      expect(argv).not.toContain(encodeURIComponent(password));
    } finally {
      await db.drop();
      await ws.cleanup();
    }
  });
});

describe('connection errors', () => {
  it('name the place and the reason, never the password, whatever failed', async () => {
    const db = await smallDatabase('sec_conn', 5);
    const ws = await workspace();
    try {
      const bad = new URL(db.url);
      bad.password = 'Err0r-Path-Secret';
      const cases: [string[], Record<string, string>][] = [
        [['gate', '--database-url', bad.toString()], {}],
        [['gate', '--database-url', 'postgres://u:Err0r-Path-Secret@127.0.0.1:1/x'], {}],
        [['gate', '--database-url', 'postgres://u:Err0r-Path-Secret@no-such-host.invalid/x'], {}],
        [
          ['gate', '--database-url', 'postgres://u@127.0.0.1:1/x'],
          { PGPASSWORD: 'Err0r-Path-Secret' },
        ],
        [['verify', '--scratch-url', bad.toString(), '--database-url', db.url], {}],
      ];
      for (const [args, env] of cases) {
        const r = await runJson(args, { cwd: ws.dir, env });
        expect(r.code, args.join(' ')).toBe(2);
        expect(r.stderr).toMatch(/^error: /m);
        expect(r.stdout + r.stderr).not.toContain('Err0r-Path-Secret');
      }
    } finally {
      await db.drop();
      await ws.cleanup();
    }
  });
});

describe('--help', () => {
  it('examples name the target through the environment, never a password-bearing flag value', async () => {
    const ws = await workspace();
    try {
      const top = await runCli(['--help'], { cwd: ws.dir });
      const commands = [...top.stdout.matchAll(/^ {2}lifeboat (\w+)/gm)].map((m) => m[1]!);
      expect(commands.length).toBeGreaterThan(10);
      for (const command of [...commands, 'backups prune']) {
        const r = await runCli([...command.split(' '), '--help'], { cwd: ws.dir });
        // No example expands a variable into an argument, where `ps` would show its value.
        expect(r.stdout, command).not.toMatch(/"\$[A-Z_]+"|--(database|scratch)-url[ =]\$/);
      }
    } finally {
      await ws.cleanup();
    }
  });
});

describe('parseConnection, by libpq rules', () => {
  it('reads quoted values with escapes, and percent-decodes a URL database', async () => {
    const { parseConnection, resolveTarget } = await import('../../src/target.js');
    expect(
      parseConnection(
        `host=db.internal port=6543 user=app password='it\\'s a \\\\ secret' dbname=shop`,
      ),
    ).toEqual({
      host: 'db.internal',
      port: '6543',
      user: 'app',
      password: "it's a \\ secret",
      database: 'shop',
    });
    expect(resolveTarget('postgres://u@h/--file%3D%2Ftmp%2Fx', {}).database).toBe('--file=/tmp/x');
    expect(resolveTarget('postgres://u:p%2541@h/d', {}).password).toBe('p%41');
  });

  it('refuses several hosts, and keywords it does not read, naming only the keyword', async () => {
    const { parseConnection } = await import('../../src/target.js');
    expect(() => parseConnection('host=a,b dbname=x')).toThrow(/several hosts/);
    expect(() => parseConnection('postgres://a,b/x')).toThrow(/several hosts/);
    expect(() => parseConnection('sslkey=/k password=Sekret-1 dbname=x')).toThrow(/"sslkey"/);
    expect(() => parseConnection('sslkey=/k password=Sekret-1 dbname=x')).not.toThrow(/Sekret-1/);
    expect(() => parseConnection('mysql://u@h/d')).toThrow(/postgres:\/\//);
  });
});
