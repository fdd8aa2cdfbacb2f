import { spawn } from 'node:child_process';
import { cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { findTool } from '../src/pg-programs/find.js';
import type { S3Server } from './support/s3-server.js';
import { storeWithBucket } from './support/s3.js';
import { backupDirs, largestDataFile, richDatabase, smallDatabase } from './support/backups.js';
import { CLI, runCli, runJson, startPaused, workspace } from './support/cli.js';
import { adminUrl, type TestDatabase } from './support/db.js';

/**
 * Every ```sh block of runbooks/operator/*.md runs here with bash, in the
 * order written, one shell per situation (variables a block sets and its `cd`
 * carry over to the next block, as in an operator's terminal). Each situation
 * is brought about for real: a damaged backup, a run that exits 6, a step left
 * in doubt by kill -9, a lock held by a frozen process, a full file system.
 * `npx lifeboat` is the built CLI. The last test checks that no block was left out.
 */
const DIR = fileURLToPath(new URL('../runbooks/operator/', import.meta.url));
const exec = promisify(execFile);

interface ShBlock {
  file: string;
  index: number;
  /** The headings above it, outermost first, joined with " > ". */
  section: string;
  code: string;
}

/** The ```sh blocks of a Markdown text, with the headings they sit under. */
function shBlocks(file: string, md: string): ShBlock[] {
  const blocks: ShBlock[] = [];
  const headings: string[] = [];
  let fence: string | undefined;
  let code: string[] = [];
  for (const line of md.split('\n')) {
    if (fence === undefined) {
      const open = /^```(.*)$/.exec(line);
      if (open) {
        fence = open[1]!.trim();
        code = [];
        continue;
      }
      const heading = /^(#+)\s+(.*)$/.exec(line);
      if (heading) {
        const level = heading[1]!.length;
        headings.length = level - 1;
        headings[level - 1] = heading[2]!;
      }
    } else if (/^```\s*$/.test(line)) {
      if (fence.split(/\s+/)[0] === 'sh') {
        const section = headings.filter(Boolean).join(' > ');
        blocks.push({ file, index: blocks.length, section, code: code.join('\n') });
      }
      fence = undefined;
    } else code.push(line);
  }
  return blocks;
}

const allBlocks = new Map<string, ShBlock>();
const executed = new Set<string>();
/** Blocks for a tool this machine lacks (jq, openssl), with the tool. */
const unavailable = new Map<string, string>();
const keyOf = (b: ShBlock): string => `${b.file}#${b.index}: ${b.section}`;

async function operatorRunbook(file: string): Promise<ShBlock[]> {
  const blocks = shBlocks(file, await readFile(path.join(DIR, file), 'utf8'));
  for (const b of blocks) allBlocks.set(keyOf(b), b);
  return blocks;
}

/** The blocks under a heading containing `heading` (and containing `text`, if given). */
function pick(blocks: ShBlock[], heading: string, text?: string): ShBlock {
  const found = blocks.filter(
    (b) => b.section.includes(heading) && (text === undefined || b.code.includes(text)),
  );
  if (found.length !== 1) {
    throw new Error(
      `expected one block under "${heading}"${text ? ` with "${text}"` : ''}, found ${found.length}`,
    );
  }
  return found[0]!;
}

/** The variables that carry from one block to the next (README.md's placeholders, and a few blocks set). */
const CARRIED = [
  'DATABASE_URL',
  'RUNBOOK',
  'BACKUP_ID',
  'DEST_DIR',
  'BACKUP_DIR',
  'NEW_DB',
  'NEW_DB_URL',
  'SCHEMA',
  'TABLE',
  'INDEX_NAME',
  'KEEP',
  'LIFEBOAT_SIGNING_KEY',
  'RUN_ID',
  'STEP_ID',
  'HOLDER_PID',
  'ENCODING',
  'SCRATCH_URL',
  'S3_COPY',
  'AWS_ENDPOINT_URL',
  'AGE_KEY_FILE',
  'DEST',
  'DR_URL',
  'NEW_SERVER_URL',
  'MOVED_URL',
];

let pgPath: string | undefined;

/** PATH with the directory of the PostgreSQL client tools lifeboat itself would use first. */
async function toolPath(): Promise<string> {
  pgPath ??= `${path.dirname((await findTool('pg_restore', undefined)).path)}${path.delimiter}${process.env.PATH ?? ''}`;
  return pgPath;
}

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr, for failure messages. */
  out: string;
}

/** One operator's bash session: blocks run one after another, sharing variables and the working directory. */
class OperatorShell {
  private vars: Record<string, string>;
  constructor(
    private cwd: string,
    vars: Record<string, string>,
  ) {
    this.vars = { ...vars };
  }

  get(name: string): string | undefined {
    return this.vars[name];
  }

  async run(block: ShBlock, extra: Record<string, string> = {}): Promise<Ran> {
    executed.add(keyOf(block));
    const state = path.join(os.tmpdir(), `lifeboat-op-state-${process.pid}-${Date.now()}`);
    const env: NodeJS.ProcessEnv = { ...process.env, CI: 'true', NO_COLOR: '1' };
    for (const k of [...CARRIED, 'PGHOST', 'PGPORT', 'PGUSER', 'PGPASSWORD', 'PGDATABASE'])
      delete env[k];
    Object.assign(env, this.vars, extra, {
      LIFEBOAT_CLI: CLI,
      LB_STATE: state,
      PATH: await toolPath(),
    });
    const script = [
      'set -euo pipefail',
      'npx() { if [ "$1" = lifeboat ]; then shift; node "$LIFEBOAT_CLI" "$@"; else echo "not in this test: npx $*" >&2; return 127; fi; }',
      `lb_save() { { for v in ${CARRIED.join(' ')}; do if [ -n "\${!v+x}" ]; then printf '%s=%s\\0' "$v" "\${!v}"; fi; done; printf 'PWD=%s\\0' "$PWD"; } > "$LB_STATE"; }`,
      'trap lb_save EXIT',
      block.code,
    ].join('\n');
    const result = await new Promise<Ran>((resolve, reject) => {
      const child = spawn('bash', ['-c', script], {
        cwd: this.cwd,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('close', (code) =>
        resolve({
          code,
          stdout,
          stderr,
          out: `${block.file} block ${block.index} (${block.section}) exited ${code}\n$ ${block.code}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`,
        }),
      );
    });
    const saved = await readFile(state, 'utf8').catch(() => '');
    await rm(state, { force: true });
    for (const pair of saved.split('\0').filter(Boolean)) {
      const eq = pair.indexOf('=');
      const [name, value] = [pair.slice(0, eq), pair.slice(eq + 1)];
      if (name === 'PWD') this.cwd = value;
      else this.vars[name] = value;
    }
    return result;
  }

  /** Run and expect an exit code. */
  async expect(block: ShBlock, code: number, extra?: Record<string, string>): Promise<Ran> {
    const r = await this.run(block, extra);
    expect(r.code, r.out).toBe(code);
    return r;
  }
}

async function hasCommand(name: string): Promise<boolean> {
  return exec('bash', ['-c', `command -v ${name}`]).then(
    () => true,
    () => false,
  );
}

async function adminQuery(sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: adminUrl() });
  await client.connect();
  try {
    return await client.query(sql, params);
  } finally {
    await client.end();
  }
}

async function dropDatabases(pattern: string): Promise<void> {
  const res = await adminQuery(`select datname from pg_database where datname like $1`, [pattern]);
  for (const row of res.rows as { datname: string }[]) {
    await adminQuery(`drop database if exists ${pg.escapeIdentifier(row.datname)} with (force)`);
  }
}

async function value(db: TestDatabase, sql: string): Promise<unknown> {
  return Object.values(((await db.query(sql)).rows[0] ?? {}) as Record<string, unknown>)[0];
}

/** Until no session of a (killed) lifeboat process is left in the database. */
async function lifeboatSessionsGone(db: TestDatabase): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const n = await value(
      db,
      `select count(*)::int from pg_stat_activity
        where datname = current_database() and application_name like 'lifeboat%' and pid <> pg_backend_pid()`,
    );
    if (n === 0) return;
    await sleep(25);
  }
  throw new Error('a killed lifeboat process still has sessions after 10 s');
}

/** A database, a project directory with a config, and a runbook file in it. */
interface Situation {
  db: TestDatabase;
  dir: string;
  cli(args: string[]): ReturnType<typeof runCli>;
  cleanup(): Promise<void>;
}

async function situation(prefix: string, runbook?: string): Promise<Situation> {
  const db = await smallDatabase(prefix);
  const ws = await workspace({ destinations: [{ path: '.lifeboat/backups' }] });
  if (runbook) await writeFile(path.join(ws.dir, 'upgrade.yaml'), runbook);
  return {
    db,
    dir: ws.dir,
    cli: (args) => runCli([...args, '--database-url', db.url], { cwd: ws.dir }),
    async cleanup() {
      await db.drop();
      await ws.cleanup();
    },
  };
}

describe('restore-by-hand.md: sha256sum, createdb, pg_restore and psql, no lifeboat', () => {
  const KEY = 'operator-runbook-signing-key';
  let db: TestDatabase;
  let ws: Awaited<ReturnType<typeof workspace>>;
  let backupDir: string;
  let blocks: ShBlock[];
  let newDb: string;
  let sh: OperatorShell;
  const tools = { jq: false, python3: false, openssl: false };
  beforeAll(async () => {
    db = await richDatabase('op_byhand');
    ws = await workspace({ destinations: [{ path: '.lifeboat/backups' }] });
    const r = await runCli(['backup', '--database-url', db.url], {
      cwd: ws.dir,
      env: { LIFEBOAT_SIGNING_KEY: KEY },
    });
    expect(r.code, r.stderr).toBe(0);
    backupDir = (await backupDirs(path.join(ws.dir, '.lifeboat/backups')))[0]!;
    blocks = await operatorRunbook('restore-by-hand.md');
    newDb = `${db.name}_byhand`;
    for (const tool of Object.keys(tools) as (keyof typeof tools)[])
      tools[tool] = await hasCommand(tool);
    sh = new OperatorShell(ws.dir, {
      BACKUP_DIR: backupDir,
      DATABASE_URL: db.url,
      NEW_DB: newDb,
      SCHEMA: 'Weird Schema',
      TABLE: 'Order Items',
      LIFEBOAT_SIGNING_KEY: KEY,
    });
  });
  afterAll(async () => {
    await dropDatabases(newDb);
    await db.drop();
    await ws.cleanup();
  });

  it('uses no lifeboat command at all', () => {
    expect(blocks.length).toBeGreaterThan(5);
    expect(blocks.filter((b) => /(^|[\s;(|&])(npx\s+)?lifeboat\s/m.test(b.code))).toEqual([]);
  });

  it('checks the files and the signature, restores, and finds the manifest row counts', async () => {
    const check = await sh.expect(pick(blocks, 'Check the files', 'sha256sum'), 0);
    expect(check.stdout).toMatch(/^manifest\.json: OK$/m);
    expect(check.stdout).toMatch(/^dump\/toc\.dat: OK$/m);
    expect(check.stdout).not.toMatch(/FAILED/);
    expect(sh.get('BACKUP_DIR')).toBe(backupDir);
    expect(check.stdout).toMatch(/^SHA256SUMS: OK, as the manifest records it$/m);

    const withOpenssl = pick(blocks, 'Check the files', 'openssl');
    if (tools.openssl)
      expect((await sh.expect(withOpenssl, 0)).stdout).toContain('manifest signature OK');
    else unavailable.set(keyOf(withOpenssl), 'openssl');
    expect(tools.python3, 'python3 is the fallback the runbook offers').toBe(true);
    const withPython = pick(blocks, 'Check the files', 'python3');
    expect((await sh.expect(withPython, 0)).stdout).toContain('manifest signature OK');

    await sh.expect(pick(blocks, 'Create an empty database'), 0);
    expect(sh.get('ENCODING')).toBe('UTF8');
    await sh.expect(pick(blocks, '3. Restore'), 0);
    expect(sh.get('NEW_DB_URL')).toContain(`/${newDb}`);

    const expected = String(
      await value(db, `select count(*) from only "Weird Schema"."Order Items"`),
    );
    expect(Number(expected)).toBeGreaterThan(0);
    const counted = await sh.expect(pick(blocks, 'Compare with the manifest', '"$TABLE" <<<'), 0);
    expect(counted.stdout.trim()).toBe(expected);

    const fromJq = pick(blocks, 'With jq', '--arg');
    const allTables = pick(blocks, 'With jq', 'while');
    if (tools.jq) {
      expect((await sh.expect(fromJq, 0)).stdout.trim()).toBe(expected);
      const all = await sh.expect(allTables, 0);
      const manifest = JSON.parse(
        await readFile(path.join(backupDir, 'manifest.json'), 'utf8'),
      ) as {
        fingerprints: { tables: unknown[] };
      };
      expect(all.stdout.match(/^ok /gm)).toHaveLength(manifest.fingerprints.tables.length);
      expect(all.stdout).toContain(`ok       Weird Schema.Order Items  ${expected} rows`);
      expect(all.stdout).not.toContain('DIFFERS');
    } else {
      unavailable.set(keyOf(fromJq), 'jq');
      unavailable.set(keyOf(allTables), 'jq');
    }
    expect((await sh.expect(pick(blocks, 'python3'), 0)).stdout.trim()).toBe(expected);
    expect((await sh.expect(pick(blocks, 'grep'), 0)).stdout.trim()).toBe(expected);
  }, 120_000);

  it('the all-tables comparison fails (exit 1) when the restored copy lost a row', async () => {
    const allTables = pick(blocks, 'With jq', 'while');
    if (!(await hasCommand('jq'))) {
      expect(unavailable.get(keyOf(allTables))).toBe('jq'); // and python3 and grep ran instead
      return;
    }
    const restored = new pg.Client({ connectionString: sh.get('NEW_DB_URL') });
    await restored.connect();
    try {
      await restored.query(
        `delete from "Weird Schema"."Order Items" where ctid = (select min(ctid) from "Weird Schema"."Order Items")`,
      );
    } finally {
      await restored.end();
    }
    const r = await sh.expect(allTables, 1);
    expect(r.stdout).toMatch(
      /^DIFFERS {2}Weird Schema\.Order Items {2}manifest \d+, restored \d+$/m,
    );
  });

  it('the checks fail (exit 1, naming the file) on a damaged copy, a changed manifest or the wrong key', async () => {
    const damaged = path.join(ws.dir, 'damaged-copy');
    await cp(backupDir, damaged, { recursive: true });
    const file = await largestDataFile(damaged);
    const bytes = await readFile(file);
    bytes[20] = bytes[20]! ^ 0xff;
    await writeFile(file, bytes);
    const check = pick(blocks, 'Check the files', 'sha256sum');
    const other = new OperatorShell(ws.dir, { BACKUP_DIR: damaged });
    const r = await other.expect(check, 1);
    expect(r.stdout).toContain(`dump/${path.basename(file)}: FAILED`);

    await writeFile(
      path.join(damaged, 'manifest.json'),
      `${await readFile(path.join(damaged, 'manifest.json'), 'utf8')} `,
    );
    const m = await new OperatorShell(ws.dir, { BACKUP_DIR: damaged }).expect(check, 1);
    expect(m.stdout).toContain('manifest.json: FAILED');

    // A file changed together with its line in SHA256SUMS: only the manifest's record of SHA256SUMS tells.
    const forged = path.join(ws.dir, 'forged-copy');
    await cp(backupDir, forged, { recursive: true });
    const victim = await largestDataFile(forged);
    await writeFile(victim, Buffer.concat([await readFile(victim), Buffer.from([0])]));
    const sum = (await exec('sha256sum', [victim])).stdout.split(' ')[0]!;
    const sums = path.join(forged, 'SHA256SUMS');
    await writeFile(
      sums,
      (await readFile(sums, 'utf8')).replace(
        new RegExp(`^[0-9a-f]{64}(  dump/${path.basename(victim).replace('.', '\\.')})$`, 'm'),
        `${sum}$1`,
      ),
    );
    const f = await new OperatorShell(ws.dir, { BACKUP_DIR: forged }).expect(check, 1);
    expect(f.stdout).toContain(`dump/${path.basename(victim)}: OK`);
    expect(f.stdout).not.toContain('SHA256SUMS: OK, as the manifest records it');

    const wrongKey = new OperatorShell(ws.dir, {
      BACKUP_DIR: backupDir,
      LIFEBOAT_SIGNING_KEY: 'not-the-key',
    });
    await wrongKey.expect(check, 0);
    const py = await wrongKey.expect(pick(blocks, 'Check the files', 'python3'), 1);
    expect(py.stdout).toContain('signature DIFFERS');
    if (await hasCommand('openssl'))
      await wrongKey.expect(pick(blocks, 'Check the files', 'openssl'), 1);
  });
});

/** Every file under `dir`, as paths relative to it, sorted. */
async function filesUnder(dir: string, sub = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(path.join(dir, sub), { withFileTypes: true })) {
    const rel = sub ? `${sub}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await filesUnder(dir, rel)));
    else out.push(rel);
  }
  return out.sort();
}

describe('restore-offsite-by-hand.md: an encrypted copy in S3, fetched, checked and decrypted without lifeboat', () => {
  const KEY = 'operator-runbook-offsite-signing-key';
  const BUCKET = 'lifeboat-operator';
  const PREFIX = 'offsite';
  let s3: S3Server | undefined;
  let client: S3Client | undefined;
  let db: TestDatabase | undefined;
  let ws: Awaited<ReturnType<typeof workspace>> | undefined;
  let id: string;
  let blocks: ShBlock[];
  let byHand: ShBlock[];
  let newDb: string;
  /** The age key the copy is encrypted to, its recipient, and a key it is not encrypted to. */
  const age = { key: '', recipient: '', wrongKey: '' };
  const tools = { aws: false, age: false, python3: false, openssl: false };
  let vars: Record<string, string>;

  beforeAll(async () => {
    ({ s3, client } = await storeWithBucket(BUCKET));
    db = await richDatabase('op_offsite');
    ws = await workspace();
    age.key = path.join(ws.dir, 'operator.key');
    age.wrongKey = path.join(ws.dir, 'other.key');
    await exec('age-keygen', ['-o', age.key]);
    await exec('age-keygen', ['-o', age.wrongKey]);
    age.recipient = (await exec('age-keygen', ['-y', age.key])).stdout.trim();
    await writeFile(
      path.join(ws.dir, 'lifeboat.config.json'),
      JSON.stringify({
        destinations: [
          { name: 'local', path: 'backups' },
          {
            name: 'offsite',
            url: `s3://${BUCKET}/${PREFIX}`,
            endpoint: s3.endpoint,
            region: s3.region,
            forcePathStyle: true,
            encrypt: { recipients: [age.recipient] },
          },
        ],
        policy: { copies: 2 },
      }),
    );
    const credentials = {
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    };
    const r = await runJson(['backup', '--database-url', db.url], {
      cwd: ws.dir,
      env: { ...credentials, LIFEBOAT_SIGNING_KEY: KEY },
    });
    expect(r.code, r.stderr).toBe(0);
    id = (r.doc.backup as { id: string }).id;
    blocks = await operatorRunbook('restore-offsite-by-hand.md');
    byHand = await operatorRunbook('restore-by-hand.md');
    newDb = `${db.name}_offsite`;
    for (const tool of Object.keys(tools) as (keyof typeof tools)[])
      tools[tool] = await hasCommand(tool);
    vars = {
      S3_COPY: `s3://${BUCKET}/${PREFIX}/${id}/`,
      AWS_ENDPOINT_URL: s3.endpoint,
      AWS_DEFAULT_REGION: s3.region,
      ...credentials,
      BACKUP_DIR: path.join(ws.dir, 'fetched'),
      AGE_KEY_FILE: age.key,
      LIFEBOAT_SIGNING_KEY: KEY,
      DATABASE_URL: db.url,
      NEW_DB: newDb,
      SCHEMA: 'Weird Schema',
      TABLE: 'Order Items',
    };
  });
  afterAll(async () => {
    if (newDb) await dropDatabases(newDb);
    await db?.drop();
    client?.destroy();
    await s3?.stop();
    await ws?.cleanup();
  });

  /** Step 1's block, or, on a machine without the AWS CLI, what it does, with the SDK. */
  async function fetch(sh: OperatorShell): Promise<void> {
    const block = pick(blocks, 'Fetch the copy', 'aws s3 cp');
    const dir = sh.get('BACKUP_DIR')!;
    if (tools.aws) {
      const r = await sh.expect(block, 0);
      expect(r.stdout).toContain(`download: ${vars.S3_COPY}manifest.json to `);
    } else {
      unavailable.set(keyOf(block), 'aws');
      const prefix = `${PREFIX}/${id}/`;
      let token: string | undefined;
      do {
        const page = await client!.send(
          new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix, ContinuationToken: token }),
        );
        for (const o of page.Contents ?? []) {
          const file = path.join(dir, o.Key!.slice(prefix.length));
          await mkdir(path.dirname(file), { recursive: true });
          const got = await client!.send(new GetObjectCommand({ Bucket: BUCKET, Key: o.Key! }));
          await writeFile(file, await got.Body!.transformToByteArray());
        }
        token = page.NextContinuationToken;
      } while (token);
    }
    expect(await filesUnder(dir)).toContain('dump/toc.dat.age');
  }

  it('uses no lifeboat command at all', () => {
    expect(blocks.length).toBeGreaterThan(5);
    expect(blocks.filter((b) => /(^|[\s;(|&])(npx\s+)?lifeboat\s/m.test(b.code))).toEqual([]);
  });

  it('fetches the copy with the AWS CLI, checks and decrypts it, and restore-by-hand.md restores it', async () => {
    expect(tools.age, 'age decrypts the copy (installed with Swift for the tests)').toBe(true);
    expect(tools.python3, 'python3 is the fallback the runbook offers').toBe(true);
    const sh = new OperatorShell(ws!.dir, vars);
    await fetch(sh);

    const check = await sh.expect(pick(blocks, 'Check what was fetched', 'sha256sum'), 0);
    expect(check.stdout).toMatch(/^manifest\.json: OK$/m);
    expect(check.stdout).toMatch(/^dump\/toc\.dat\.age: OK$/m);
    expect(check.stdout).toMatch(/^SHA256SUMS\.age: OK$/m);
    expect(check.stdout).not.toMatch(/FAILED/);

    const withOpenssl = pick(blocks, 'Check what was fetched', 'openssl');
    if (tools.openssl) {
      const r = await sh.expect(withOpenssl, 0);
      expect(r.stdout).toBe('manifest.json signature OK\ncopy.json signature OK\n');
    } else unavailable.set(keyOf(withOpenssl), 'openssl');
    const withPython = await sh.expect(pick(blocks, 'Check what was fetched', 'python3'), 0);
    expect(withPython.stdout).toBe('manifest.json signature OK\ncopy.json signature OK\n');

    const recipient = await sh.expect(pick(blocks, 'Decrypt', 'age-keygen -y'), 0);
    expect(recipient.stdout).toContain(age.recipient);
    await sh.expect(pick(blocks, 'Decrypt', 'age -d'), 0);
    const fetched = vars.BACKUP_DIR!;
    const files = await filesUnder(fetched);
    expect(files).toContain('dump/toc.dat');
    expect(files.filter((f) => f.endsWith('.age') || f.startsWith('copy.'))).toEqual([]);
    const local = path.join(ws!.dir, 'backups', id);
    const records = (f: string): boolean => !f.startsWith('verifications/');
    expect(files.filter(records)).toEqual((await filesUnder(local)).filter(records));
    const sums = await sh.expect(pick(blocks, 'Decrypt', 'SHA256SUMS'), 0);
    expect(sums.stdout).toMatch(/^dump\/toc\.dat: OK$/m);
    expect(sums.stdout).not.toMatch(/FAILED/);
    expect(sums.stdout).toMatch(/^SHA256SUMS: OK, as the manifest records it$/m);

    // Step 4: restore-by-hand.md from its step 2, in the same shell.
    await sh.expect(pick(byHand, 'Create an empty database'), 0);
    await sh.expect(pick(byHand, '3. Restore'), 0);
    expect(sh.get('NEW_DB_URL')).toContain(`/${newDb}`);
    const expected = String(
      await value(db!, `select count(*) from only "Weird Schema"."Order Items"`),
    );
    expect(Number(expected)).toBeGreaterThan(0);
    const counted = await sh.expect(pick(byHand, 'Compare with the manifest', '"$TABLE" <<<'), 0);
    expect(counted.stdout.trim()).toBe(expected);
  }, 120_000);

  it('the checks fail (exit 1) with the wrong keys, and on a file damaged in the store', async () => {
    const dir = path.join(ws!.dir, 'fetched-again');
    const sh = new OperatorShell(ws!.dir, {
      ...vars,
      BACKUP_DIR: dir,
      LIFEBOAT_SIGNING_KEY: 'not-the-key',
      AGE_KEY_FILE: age.wrongKey,
    });
    await fetch(sh);
    const check = pick(blocks, 'Check what was fetched', 'sha256sum');
    await sh.expect(check, 0);
    const differs = 'manifest.json signature DIFFERS\ncopy.json signature DIFFERS\n';
    if (tools.openssl)
      expect((await sh.expect(pick(blocks, 'Check what was fetched', 'openssl'), 1)).stdout).toBe(
        differs,
      );
    const py = await sh.expect(pick(blocks, 'Check what was fetched', 'python3'), 1);
    expect(py.stdout).toBe(differs);

    const recipient = await sh.expect(pick(blocks, 'Decrypt', 'age-keygen -y'), 1);
    expect(recipient.stdout).toBe('');
    const before = await filesUnder(dir);
    const decrypt = await sh.expect(pick(blocks, 'Decrypt', 'age -d'), 1);
    expect(decrypt.stderr).toContain('not decrypted: ./dump/toc.dat.age');
    expect(await filesUnder(dir)).toEqual(before); // nothing removed, nothing half-written

    const stored = before.find((f) => f.endsWith('.dat.gz.age'))!;
    const bytes = await readFile(path.join(dir, stored));
    bytes[40] = bytes[40]! ^ 0xff;
    await writeFile(path.join(dir, stored), bytes);
    const damaged = await sh.expect(check, 1);
    expect(damaged.stdout).toContain(`${stored}: FAILED`);
  }, 120_000);
});

describe('verify-failed.md: a backup whose only copy is damaged', () => {
  let s: Situation;
  let blocks: ShBlock[];
  let backupId: string;
  let destDir: string;
  beforeAll(async () => {
    s = await situation('op_verify_failed');
    blocks = await operatorRunbook('verify-failed.md');
    expect((await s.cli(['backup'])).code).toBe(0);
    destDir = path.join(s.dir, '.lifeboat/backups');
    const dir = (await backupDirs(destDir))[0]!;
    backupId = path.basename(dir);
    const file = await largestDataFile(dir);
    const bytes = await readFile(file);
    bytes[20] = bytes[20]! ^ 0xff;
    await writeFile(file, bytes);
    const verify = await s.cli(['verify', backupId]);
    expect(verify.code, verify.stderr).toBe(4);
  });
  afterAll(() => s.cleanup());

  it('reads the failure, finds the damaged file, takes a new verified backup and quarantines the bad one', async () => {
    const sh = new OperatorShell(s.dir, {
      DATABASE_URL: s.db.url,
      BACKUP_ID: backupId,
      DEST_DIR: destDir,
    });
    const shown = await sh.expect(pick(blocks, 'Read what failed'), 0);
    expect(shown.stdout).toMatch(/verified .*FAILED: .*SHA-256 differs from the manifest/);

    const byHand = pick(blocks, 'Check each copy by hand', 'sha256sum');
    const damaged = await sh.expect(byHand, 1);
    expect(damaged.stdout).toMatch(/dump\/\d+\.dat\.gz: FAILED/);
    expect(damaged.stdout).not.toContain('intact:');

    const missing = await sh.expect(pick(blocks, 'Check each copy by hand', 'comm'), 0);
    expect(missing.stdout.trim()).toBe('');

    const again = await sh.expect(pick(blocks, 'Take a new backup'), 0);
    expect(again.stdout).toContain('Gate passed');
    const fresh = (await backupDirs(destDir))
      .map((d) => path.basename(d))
      .find((id) => id !== backupId)!;
    const intact = await new OperatorShell(s.dir, { BACKUP_ID: fresh, DEST_DIR: destDir }).expect(
      byHand,
      0,
    );
    expect(intact.stdout).toContain(`intact: ${destDir}/${fresh}`);

    const moved = await sh.expect(pick(blocks, 'Keep the bad copy'), 0);
    expect(moved.stdout).toContain(fresh);
    expect(moved.stdout).not.toContain(backupId);
    expect(await readdir(path.join(s.dir, '.lifeboat/quarantine'))).toEqual([backupId]);
  }, 120_000);
});

const RUNBOOK_NO_DOWN = `name: exit6
defaults: { lockTimeout: 1s }
steps:
  - id: add-notes
    sql:
      up: CREATE TABLE notes (id int)
  - id: add-extra
    sql:
      up: CREATE TABLE extra (id int)
      down: DROP TABLE extra
  - id: boom
    sql:
      up: SELECT 1/0
`;

const RUNBOOK_ALL_DOWNS = RUNBOOK_NO_DOWN.replace(
  '      up: CREATE TABLE notes (id int)\n',
  '      up: CREATE TABLE notes (id int)\n      down: DROP TABLE notes\n',
);

describe('run-exit-6.md: a run that stopped half-way back', () => {
  let s: Situation;
  let blocks: ShBlock[];
  let sh: OperatorShell;
  beforeAll(async () => {
    blocks = await operatorRunbook('run-exit-6.md');
  });
  afterEach(async () => {
    await dropDatabases(`${s.db.name}%`);
    await s.cleanup();
  });
  const tableExists = async (name: string): Promise<boolean> =>
    (await value(s.db, `select to_regclass('public.${name}') is not null`)) as boolean;

  async function stoppedRun(runbook: string): Promise<void> {
    s = await situation('op_exit6', runbook);
    const r = await s.cli(['run', 'upgrade.yaml']);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(6);
    sh = new OperatorShell(s.dir, { DATABASE_URL: s.db.url, RUNBOOK: 'upgrade.yaml' });
  }

  async function whereItStopped(reason: RegExp): Promise<void> {
    const status = await sh.expect(
      pick(blocks, 'See where the run stopped', 'npx lifeboat status'),
      0,
    );
    expect(status.stdout).toContain('needs-operator');
    const journal = await sh.expect(pick(blocks, 'See where the run stopped', 'RUN_ID'), 0);
    expect(sh.get('RUN_ID')).toMatch(/^run-/);
    expect(journal.stdout).toContain(`run: ${sh.get('RUN_ID')}`);
    expect(journal.stdout).toMatch(reason);
  }

  it('2b, fix forward: the corrected runbook resumes after the applied steps (exit 0)', async () => {
    await stoppedRun(RUNBOOK_NO_DOWN);
    await whereItStopped(/add-notes it has no down/);
    await writeFile(
      path.join(s.dir, 'upgrade.yaml'),
      RUNBOOK_NO_DOWN.replace('SELECT 1/0', 'SELECT 1'),
    );
    const r = await sh.expect(pick(blocks, 'Fix forward'), 0);
    expect(r.stdout).toMatch(/\bboom\s+sql\s+pending/);
    expect(r.stdout).toMatch(/add-notes\s+· already applied/);
    expect(r.stdout).toMatch(/boom\s+✔ applied/);
    expect(r.stdout).toContain('status: succeeded');
    expect(await tableExists('notes')).toBe(true);
  }, 120_000);

  it('2b, undo by hand: the undo the operator did is recorded and lifeboat undoes the rest (exit 0)', async () => {
    await stoppedRun(RUNBOOK_NO_DOWN);
    await whereItStopped(/add-notes it has no down/);
    await writeFile(path.join(s.dir, 'undo-by-hand.sql'), 'DROP TABLE notes;\n');
    const r = await sh.expect(pick(blocks, 'Undo it by hand'), 0, { STEP: 'add-notes' });
    expect(r.stdout).toMatch(/add-extra\s+↩ undone/);
    expect(r.stdout).toContain('status: rolled-back');
    expect(await tableExists('notes')).toBe(false);
    expect(await tableExists('extra')).toBe(false);
  }, 120_000);

  it('2b, go back: the backup restored beside the target, then swapped in (exit 0 each)', async () => {
    await stoppedRun(RUNBOOK_NO_DOWN);
    await whereItStopped(/add-notes it has no down/);
    const newDb = `${s.db.name}_before`;
    const beside = await sh.expect(pick(blocks, 'Go back to the backup', '--as'), 0, {
      NEW_DB: newDb,
    });
    expect(sh.get('BACKUP_ID')).toMatch(/^\d{8}T/);
    expect(beside.stdout).toContain(newDb);
    const restored = new pg.Client({ connectionString: s.db.url.replace(s.db.name, newDb) });
    await restored.connect();
    try {
      const t = await restored.query(`select to_regclass('public.notes') as t`);
      expect((t.rows[0] as { t: unknown }).t).toBeNull();
    } finally {
      await restored.end();
    }
    expect(await tableExists('notes')).toBe(true); // the target is untouched

    await sh.expect(pick(blocks, 'Go back to the backup', '--swap'), 0);
    expect(await tableExists('notes')).toBe(false);
    expect(await tableExists('extra')).toBe(false);
    const kept = await adminQuery(`select datname from pg_database where datname like $1`, [
      `${s.db.name}\\_\\_replaced\\_%`,
    ]);
    expect(kept.rows).toHaveLength(1);
  }, 120_000);

  it('2a, a down that met a lock: find the holder, then the rollback completes (exit 0)', async () => {
    s = await situation('op_exit6_lock', RUNBOOK_ALL_DOWNS);
    const run = await startPaused(
      ['run', 'upgrade.yaml', '--database-url', s.db.url],
      'undo:add-extra:before',
      { cwd: s.dir },
    );
    const other = new pg.Client({ connectionString: s.db.url, application_name: 'other-app' });
    await other.connect();
    try {
      await run.reached();
      await other.query('begin');
      await other.query('lock table extra in access share mode');
      await run.resume();
      const r = await run.done;
      expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(6);
      sh = new OperatorShell(s.dir, { DATABASE_URL: s.db.url, RUNBOOK: 'upgrade.yaml' });
      await whereItStopped(/the down of add-extra failed: canceling statement due to lock timeout/);
      const holders = await sh.expect(pick(blocks, '2a.', 'pg_locks'), 0);
      expect(holders.stdout).toMatch(/other-app .*\| extra +\| AccessShareLock/);
      await other.query('commit');
    } finally {
      await other.end();
    }
    const rollback = await sh.expect(pick(blocks, '2a.', 'rollback'), 0);
    expect(rollback.stdout).toContain('status: rolled-back');
    expect(rollback.stdout).toContain('proof: every table');
    expect(await tableExists('notes')).toBe(false);
    expect(await tableExists('extra')).toBe(false);
  }, 120_000);
});

const RUNBOOK_INDEX = `name: doubt
steps:
  - id: index-qty
    sql:
      up: CREATE INDEX CONCURRENTLY items_qty_idx ON items (qty)
      down: DROP INDEX CONCURRENTLY IF EXISTS items_qty_idx
  - id: after-index
    sql:
      up: CREATE TABLE after_index (id int)
      down: DROP TABLE after_index
`;

describe('step-in-doubt.md: a run killed (-9) between building an index and its checkpoint', () => {
  let s: Situation;
  let blocks: ShBlock[];
  let sh: OperatorShell;
  beforeAll(async () => {
    blocks = await operatorRunbook('step-in-doubt.md');
  });
  beforeEach(async () => {
    s = await situation('op_doubt', RUNBOOK_INDEX);
    const run = await startPaused(
      ['run', 'upgrade.yaml', '--database-url', s.db.url],
      'step:index-qty:before-checkpoint',
      { cwd: s.dir },
    );
    await run.reached();
    await run.kill9();
    await lifeboatSessionsGone(s.db);
    sh = new OperatorShell(s.dir, {
      DATABASE_URL: s.db.url,
      RUNBOOK: 'upgrade.yaml',
      INDEX_NAME: 'items_qty_idx',
    });
  });
  afterEach(() => s.cleanup());
  const exists = async (relation: string): Promise<boolean> =>
    (await value(s.db, `select to_regclass('public.${relation}') is not null`)) as boolean;

  async function findTheStep(): Promise<void> {
    const status = await sh.expect(pick(blocks, 'Which step', 'npx lifeboat status'), 0);
    expect(status.stdout).toContain('index-qty: in doubt (up started)');
    const found = await sh.expect(pick(blocks, 'Which step', 'STEP_ID'), 0);
    expect(found.stdout).toContain('in doubt: index-qty');
    expect(sh.get('STEP_ID')).toBe('index-qty');
  }

  it('it took effect: --resolve STEP=applied, and the run goes on', async () => {
    await findTheStep();
    const sessions = await sh.expect(pick(blocks, 'really over'), 0);
    expect(sessions.stdout).toContain('(0 rows)');
    const index = await sh.expect(pick(blocks, 'took effect', 'indisvalid'), 0);
    expect(index.stdout).toMatch(/^\s*t\s+\|\s+t\s*$/m);
    const r = await sh.expect(
      pick(blocks, 'Tell lifeboat', 'run "$RUNBOOK" --resolve "$STEP_ID=applied"'),
      0,
    );
    expect(r.stdout).toMatch(/after-index\s+✔ applied/);
    expect(await exists('after_index')).toBe(true);
    expect(await exists('items_qty_idx')).toBe(true);
    expect(
      (await sh.expect(pick(blocks, 'Which step', 'npx lifeboat status'), 0)).stdout,
    ).not.toContain('in doubt');
  }, 120_000);

  it('it did not take effect: --resolve STEP=not-applied, and the run applies it again', async () => {
    await s.db.query('drop index items_qty_idx'); // as if the build had never finished
    await findTheStep();
    const index = await sh.expect(pick(blocks, 'took effect', 'indisvalid'), 0);
    expect(index.stdout).toMatch(/^\s*f\s+\|\s*$/m);
    const r = await sh.expect(pick(blocks, 'Tell lifeboat', '=not-applied"'), 0);
    expect(r.stdout).toMatch(/index-qty\s+✔ applied/);
    expect(await exists('items_qty_idx')).toBe(true);
    expect(await exists('after_index')).toBe(true);
  }, 120_000);

  it('it may be half-done: --resolve STEP=applied on rollback runs its down', async () => {
    await findTheStep();
    const r = await sh.expect(pick(blocks, 'Tell lifeboat', 'rollback'), 0);
    expect(r.stdout).toMatch(/index-qty\s+↩ undone/);
    expect(r.stdout).toContain('status: rolled-back');
    expect(await exists('items_qty_idx')).toBe(false);
    expect(await exists('after_index')).toBe(false);
  }, 120_000);
});

describe('lock-held-by-dead-host.md: the lock held by a run whose process is frozen (SIGSTOP)', () => {
  let s: Situation;
  let blocks: ShBlock[];
  beforeAll(async () => {
    blocks = await operatorRunbook('lock-held-by-dead-host.md');
    s = await situation(
      'op_lock',
      `name: locked
steps:
  - id: first
    sql:
      up: CREATE TABLE first_table (id int)
      down: DROP TABLE first_table
`,
    );
  });
  afterAll(() => s.cleanup());

  it('finds the holder, ends its session, sees the lock gone, and resumes the run', async () => {
    const run = await startPaused(
      ['run', 'upgrade.yaml', '--database-url', s.db.url],
      'step:first:before',
      { cwd: s.dir },
    );
    try {
      await run.reached();
      // The host "dies": the process stops answering, its connections stay open.
      process.kill(run.child.pid!, 'SIGSTOP');
      const holderPid = (await value(
        s.db,
        // The run has more than one session; the holder is the one with the advisory lock.
        `select a.pid from pg_stat_activity a join pg_locks l on l.pid = a.pid
          where a.datname = current_database() and a.application_name like 'lifeboat run %'
            and l.locktype = 'advisory' and l.granted`,
      )) as number;
      const sh = new OperatorShell(s.dir, { DATABASE_URL: s.db.url, RUNBOOK: 'upgrade.yaml' });

      const who = await sh.expect(pick(blocks, 'Who holds the lock', 'npx lifeboat status'), 0);
      expect(who.stdout).toMatch(/lock: held by run run-\S+ of runbook locked \(host /);
      expect(who.stdout).toContain('run exited 7 (7: the lock is held)');
      const holder = await sh.expect(pick(blocks, 'Who holds the lock', 'HOLDER_PID'), 0);
      expect(sh.get('HOLDER_PID')).toBe(String(holderPid));
      expect(holder.stdout).toMatch(/lifeboat run run-\S+/);

      const settings = await sh.expect(pick(blocks, 'holder is gone'), 0);
      expect(settings.stdout).toContain('tcp_keepalives_idle');

      const ended = await sh.expect(
        pick(blocks, 'End the dead session', 'pg_terminate_backend'),
        0,
      );
      expect(ended.stdout).toMatch(/^\s*t\s*$/m);
      const gone = await sh.expect(pick(blocks, 'End the dead session', 'sleep'), 0);
      expect(gone.stdout).toContain('lock: free');
      expect(gone.stdout).not.toContain(`${holderPid}|`);
      expect(gone.stdout).toContain('the run is not holding the lock');

      const resumed = await sh.expect(pick(blocks, 'Finish the run'), 0);
      expect(resumed.stdout).toMatch(/first\s+✔ applied/);
      expect(await value(s.db, `select to_regclass('first_table') is not null`)).toBe(true);
    } finally {
      run.child.kill('SIGKILL');
      await run.done;
    }
  }, 120_000);
});

describe('disk-full.md: a destination on a full file system (tmpfs; needs root, as CI)', () => {
  let s: Situation;
  let blocks: ShBlock[];
  let dest: string;
  beforeAll(async () => {
    blocks = await operatorRunbook('disk-full.md');
    s = await situation('op_disk_full');
    // About 300 KiB of dump per backup: hex text that gzip cannot shrink much.
    await s.db.query(
      `create table blobs (id int primary key, body text);
       insert into blobs select g, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text)
         from generate_series(1, 4500) g`,
    );
    dest = path.join(s.dir, 'small-disk');
    await mkdir(dest);
    await exec('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dest]);
    await writeFile(
      path.join(s.dir, 'lifeboat.config.json'),
      JSON.stringify({ destinations: [{ path: 'small-disk' }] }),
    );
  });
  afterAll(async () => {
    await exec('umount', [dest]).catch(() => undefined);
    await s.cleanup();
  });

  it('backups until the disk is full, then the runbook frees room and backs up again', async () => {
    let taken = 0;
    let failure: Awaited<ReturnType<typeof runCli>> | undefined;
    for (let i = 0; i < 8 && !failure; i++) {
      const r = await s.cli(['backup']);
      if (r.code === 0) taken++;
      else failure = r;
    }
    expect(taken).toBeGreaterThanOrEqual(2);
    expect(failure?.code, failure?.stderr).toBe(2);
    expect(failure?.stderr).toMatch(/no space left on device|ran out of space/i);

    const sh = new OperatorShell(s.dir, { DATABASE_URL: s.db.url, DEST_DIR: dest, KEEP: '1' });
    const look = await sh.expect(pick(blocks, 'destination is full', 'du -sh'), 0);
    expect(look.stdout).toContain('no partial backups');
    expect(look.stdout.match(/^\d{8}T\S+ {2}lb_op_disk_full/gm)).toHaveLength(taken);

    const pruned = await sh.expect(pick(blocks, 'destination is full', 'prune'), 0);
    expect(pruned.stdout.match(/^would remove/gm)).toHaveLength(taken - 1);
    expect((await backupDirs(dest)).length).toBe(1);

    const again = await sh.expect(pick(blocks, 'destination is full', 'lifeboat gate'), 0);
    expect(again.stdout).toContain('Gate passed');
  }, 180_000);

  it('a killed verification leaves its scratch database; the next verify removes it', async () => {
    const id = path.basename((await backupDirs(dest)).at(-1)!);
    const verify = await startPaused(
      ['verify', id, '--database-url', s.db.url],
      'verify:restored',
      {
        cwd: s.dir,
      },
    );
    await verify.reached();
    await verify.kill9();
    await lifeboatSessionsGone(s.db);
    const leftover = (
      await adminQuery(
        `select datname from pg_database where shobj_description(oid, 'pg_database') like $1`,
        [`%"backup":"${id}"%`],
      )
    ).rows as { datname: string }[];
    expect(leftover).toHaveLength(1);
    const name = leftover[0]!.datname;

    const sh = new OperatorShell(s.dir, { DATABASE_URL: s.db.url, DEST_DIR: dest });
    const listed = await sh.expect(
      pick(blocks, 'scratch server is full', 'pg_database_size(datname)'),
      0,
    );
    expect(listed.stdout).toContain(name);
    await sh.expect(pick(blocks, 'scratch server is full', 'npx lifeboat verify'), 0);
    expect(
      (await adminQuery(`select 1 from pg_database where datname = $1`, [name])).rows,
    ).toHaveLength(0);
    const size = await sh.expect(pick(blocks, 'scratch server is full', 'current_database()'), 0);
    expect(size.stdout).toMatch(/\d+ (kB|MB|bytes)/);

    const inside = await sh.expect(pick(blocks, "target's disk is full"), 0);
    expect(inside.stdout).toMatch(/public +\| blobs/);
  }, 120_000);
});

describe('disaster-recovery-drill.md: the off-site copy alone, onto another server', () => {
  const KEY = 'operator-runbook-drill-signing-key';
  const BUCKET = 'lifeboat-operator-drill';
  let s3: S3Server | undefined;
  let client: S3Client | undefined;
  let db: TestDatabase | undefined;
  let ws: Awaited<ReturnType<typeof workspace>> | undefined;
  let id: string;
  let vars: Record<string, string>;

  beforeAll(async () => {
    ({ s3, client } = await storeWithBucket(BUCKET));
    db = await smallDatabase('op_drill');
    ws = await workspace();
    const key = path.join(ws.dir, 'operator.key');
    await exec('age-keygen', ['-o', key]);
    const recipient = (await exec('age-keygen', ['-y', key])).stdout.trim();
    await writeFile(
      path.join(ws.dir, 'lifeboat.config.json'),
      JSON.stringify({
        destinations: [
          { name: 'local', path: 'backups' },
          {
            name: 'offsite',
            url: `s3://${BUCKET}/drill`,
            endpoint: s3.endpoint,
            region: s3.region,
            forcePathStyle: true,
            encrypt: { recipients: [recipient] },
          },
        ],
      }),
    );
    const credentials = {
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    };
    const r = await runJson(['backup', '--database-url', db.url], {
      cwd: ws.dir,
      env: { ...credentials, LIFEBOAT_SIGNING_KEY: KEY },
    });
    expect(r.code, r.stderr).toBe(0);
    id = (r.doc.backup as { id: string }).id;
    vars = {
      ...credentials,
      DATABASE_URL: db.url,
      LIFEBOAT_SIGNING_KEY: KEY,
      AGE_KEY_FILE: key,
      DEST: 'offsite',
      // The suite's own server stands in for the other one; test/drill.test.ts uses a second.
      DR_URL: adminUrl(),
    };
  });
  afterAll(async () => {
    await db?.drop();
    client?.destroy();
    await s3?.stop();
    await ws?.cleanup();
  });

  it('lists what is left, drills from the off-site copy, reads the drills, and the gate that asked for one passes', async () => {
    const blocks = await operatorRunbook('disaster-recovery-drill.md');
    const sh = new OperatorShell(ws!.dir, vars);
    const gate = pick(blocks, 'demand a recent drill', 'gate --drilled');
    const refused = await sh.expect(gate, 3);
    expect(refused.stderr).toMatch(/no disaster-recovery drill has been run in the last 30d/);

    const list = await sh.expect(pick(blocks, 'what a disaster would leave', 'backups list'), 0);
    expect(list.stdout).toContain(id);
    const drill = await sh.expect(pick(blocks, 'Run the drill', 'lifeboat drill'), 0);
    expect(drill.stdout).toMatch(/^drill passed: recovery took \d+ ms$/m);
    const record = JSON.parse(await readFile(path.join(ws!.dir, 'drill.json'), 'utf8')) as {
      drill: {
        backupId: string;
        from: { destination: string };
        encryption: { identityFrom: string };
      };
    };
    expect(record.drill.backupId).toBe(id);
    expect(record.drill.from.destination).toBe('offsite');
    expect(record.drill.encryption.identityFrom).toContain(vars.AGE_KEY_FILE);

    const history = await sh.expect(pick(blocks, 'drills over time', 'history'), 0);
    expect(history.stdout).toMatch(/^Drills \(1\)$/m);
    expect(history.stdout).toMatch(new RegExp(`offsite\\s+${id}\\s+passed`));
    await sh.expect(gate, 0);
  });
});

describe('move-to-new-server.md: move, go back, a crash half-way, finish', () => {
  let db: TestDatabase | undefined;
  let ws: Awaited<ReturnType<typeof workspace>> | undefined;
  const newDb = `op_moved_${Date.now().toString(16)}`;
  const admin = adminQuery;
  const appWrite = async (): Promise<string> => {
    const client = new pg.Client({ connectionString: db!.url });
    await client.connect();
    try {
      await client.query(`insert into items (name, qty) values ('late order', 1)`);
      return 'written';
    } catch (err) {
      return (err as Error).message;
    } finally {
      await client.end();
    }
  };

  beforeAll(async () => {
    db = await smallDatabase('op_move');
    ws = await workspace();
    // The cutover command the operator writes: here it records where it was pointed.
    await writeFile(
      path.join(ws.dir, 'repoint-app.sh'),
      '#!/bin/sh\necho "$DATABASE_URL" > app-database-url.txt\n',
      { mode: 0o755 },
    );
    const backup = await runCli(['backup', '--database-url', db.url], { cwd: ws.dir });
    expect(backup.code, backup.stderr).toBe(0);
  });
  afterAll(async () => {
    await admin(`drop database if exists ${pg.escapeIdentifier(newDb)} with (force)`);
    await db?.drop();
    await ws?.cleanup();
  });

  it("runs every block against a real move (the new server here is the suite's own, under another name)", async () => {
    const blocks = await operatorRunbook('move-to-new-server.md');
    const server = new URL(adminUrl());
    const password = decodeURIComponent(server.password);
    server.password = '';
    const sh = new OperatorShell(ws!.dir, {
      DATABASE_URL: db!.url,
      NEW_SERVER_URL: server.toString(),
      NEW_DB: newDb,
    });
    // The new server's password, as ~/.pgpass or PGPASSWORD would give it.
    const pgpass = { PGPASSWORD: password };

    const dry = await sh.expect(pick(blocks, 'See what the move would do'), 0, pgpass);
    expect(dry.stdout).toContain('Nothing was changed (dry run).');

    const moved = await sh.expect(pick(blocks, '2. Move'), 0, pgpass);
    expect(moved.stdout).toMatch(new RegExp(`^moved to postgresql://\\S+/${newDb}$`, 'm'));
    expect(await readFile(path.join(ws!.dir, 'app-database-url.txt'), 'utf8')).toBe(
      `${sh.get('MOVED_URL')}\n`,
    );
    expect(await appWrite()).toContain('read-only transaction');
    const look = await sh.expect(pick(blocks, 'Look at the new database'), 0, pgpass);
    expect(look.stdout).toMatch(/items\s*\|\s*500\s*\|\s*t/);

    const [backDry, back] = blocks.filter((b) => b.section.includes('go back'));
    const preview = await sh.expect(backDry!, 0, pgpass);
    expect(preview.stdout).toContain('Dry run: lifeboat rollback of move');
    await sh.expect(back!, 0, pgpass);
    expect(await appWrite()).toBe('written');

    // A crash half-way: the move killed after its copy, then resumed by the same command.
    await admin(`drop database ${pg.escapeIdentifier(newDb)} with (force)`);
    const url = new URL(adminUrl());
    const paused = await startPaused(
      [
        'move',
        '--to',
        url.toString(),
        '--as',
        newDb,
        '--create-roles',
        '--yes',
        '--database-url',
        db!.url,
      ],
      'move:copy',
      { cwd: ws!.dir },
    );
    await paused.reached();
    await paused.kill9();
    expect(await appWrite()).toContain('read-only transaction');
    await sh.expect(pick(blocks, 'If the move stopped half-way'), 0, pgpass);

    await sh.expect(pick(blocks, 'Finish'), 0, pgpass);
    expect(await appWrite()).toContain('read-only transaction');
    const unfreeze = await runCli(['unfreeze', '--database-url', db!.url], { cwd: ws!.dir });
    expect(unfreeze.code).toBe(2);
    expect(unfreeze.stderr).toContain(`was moved to `);
    const rows = await admin(`select count(*)::int as n from pg_database where datname = $1`, [
      newDb,
    ]);
    expect(rows.rows).toEqual([{ n: 1 }]);
  });
});

describe('runbooks/operator', () => {
  it('has a test for every runbook, and every sh block of them ran', async () => {
    const files = (await readdir(DIR)).filter((f) => f.endsWith('.md')).sort();
    expect(files).toEqual([
      'README.md',
      'disaster-recovery-drill.md',
      'disk-full.md',
      'lock-held-by-dead-host.md',
      'move-to-new-server.md',
      'restore-by-hand.md',
      'restore-offsite-by-hand.md',
      'run-exit-6.md',
      'step-in-doubt.md',
      'verify-failed.md',
    ]);
    const [example, ...more] = await operatorRunbook('README.md');
    expect(more).toEqual([]);
    const sh = new OperatorShell(os.tmpdir(), {});
    await sh.expect(example!, 0);
    expect(sh.get('BACKUP_DIR')).toBe('.lifeboat/backups/20261121T101500123Z-shop-3f9a1c');
    expect(sh.get('RUNBOOK')).toBe('runbooks/upgrade.yaml');
    const notRun = [...allBlocks.keys()].filter((k) => !executed.has(k) && !unavailable.has(k));
    expect(notRun).toEqual([]);
    expect(allBlocks.size).toBeGreaterThan(25);
  });
});
