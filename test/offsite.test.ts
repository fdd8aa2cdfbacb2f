import { execFile } from 'node:child_process';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../src/repository/manifest.js';
import { richDatabase, smallDatabase } from './support/backups.js';
import { runCli, runJson, startPaused, workspace } from './support/cli.js';
import type { TestDatabase } from './support/db.js';
import type { S3Server } from './support/s3-server.js';
import { storeWithBucket } from './support/s3.js';

/**
 * Off-site copies against a real S3-compatible store: OpenStack Swift with
 * s3api on loopback, which checks request signatures and builds real
 * multipart uploads. Encryption is checked with the standard `age` tool.
 */
const exec = promisify(execFile);
const SIGNING_KEY = 'offsite-test-signing-key';
const BUCKET = 'lifeboat-offsite';

let s3: S3Server;
let client: S3Client;
let keys: { dir: string; cleanup(): Promise<void> };
/** Two keys the copies are encrypted to, and one they are not. */
const key = { first: '', second: '', wrong: '' };
const recipient = { first: '', second: '' };

beforeAll(async () => {
  ({ s3, client } = await storeWithBucket(BUCKET));
  keys = await workspace();
  for (const name of ['first', 'second', 'wrong'] as const) {
    const file = path.join(keys.dir, `${name}.key`);
    await exec('age-keygen', ['-o', file]);
    key[name] = file;
    if (name !== 'wrong') recipient[name] = (await exec('age-keygen', ['-y', file])).stdout.trim();
  }
});

afterAll(async () => {
  client?.destroy();
  await s3?.stop();
  await keys?.cleanup();
});

function awsEnv(secret = s3.secretAccessKey): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: secret,
    LIFEBOAT_SIGNING_KEY: SIGNING_KEY,
  };
}

/** A workspace backing up to a local directory and to the store under `prefix`. */
async function offsiteWorkspace(
  prefix: string,
  opts: { encrypt?: boolean; copies?: number } = {},
): Promise<Awaited<ReturnType<typeof workspace>>> {
  const ws = await workspace({
    destinations: [
      { name: 'local', path: 'backups' },
      {
        name: 'offsite',
        url: `s3://${BUCKET}/${prefix}`,
        endpoint: s3.endpoint,
        region: s3.region,
        forcePathStyle: true,
        ...(opts.encrypt === false
          ? {}
          : { encrypt: { recipients: [recipient.first], recipientsFile: 'recipients.txt' } }),
      },
    ],
    policy: { copies: opts.copies ?? 2 },
  });
  await writeFile(path.join(ws.dir, 'recipients.txt'), `# the second key\n${recipient.second}\n`);
  return ws;
}

/** About 20 MiB of dump that gzip cannot shrink much: more than two upload parts. */
async function bigDatabase(prefix: string): Promise<TestDatabase> {
  const big = await smallDatabase(prefix, 10);
  await big.query(
    `create table blobs (id int primary key, data text);
     insert into blobs select g, string_agg(md5(g::text || ':' || k), '') from generate_series(1, 100000) g, generate_series(1, 12) k group by g;`,
  );
  return big;
}

async function keysUnder(prefix: string): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix, ContinuationToken: token }),
    );
    out.push(...(page.Contents ?? []).map((o) => o.Key!));
    token = page.NextContinuationToken;
  } while (token);
  return out.sort();
}

async function openUploads(prefix: string): Promise<number> {
  const page = await client.send(
    new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: prefix }),
  );
  return (page.Uploads ?? []).length;
}

async function objectText(key: string): Promise<string> {
  const got = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return got.Body!.transformToString('utf8');
}

async function putText(key: string, text: string | Buffer): Promise<void> {
  await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: text }));
}

async function backupId(ws: { dir: string }, env: Record<string, string>): Promise<string> {
  const r = await runJson(['backup', '--database-url', dbUrl()], { cwd: ws.dir, env });
  expect(r.code, r.stderr).toBe(0);
  return (r.doc.backup as { id: string }).id;
}

let small: TestDatabase;
const dbUrl = (): string => small.url;

describe('a backup in two places, one of them remote and encrypted', () => {
  let db: TestDatabase;
  let ws: Awaited<ReturnType<typeof workspace>>;
  let id: string;
  beforeAll(async () => {
    db = await richDatabase('offsite_rich');
    ws = await offsiteWorkspace('rich');
  });
  afterAll(async () => {
    await db.drop();
    await ws.cleanup();
  });

  it('stores, confirms and verifies both copies; the remote one holds only age ciphertext', async () => {
    const r = await runJson(['backup', '--database-url', db.url], { cwd: ws.dir, env: awsEnv() });
    expect(r.code, r.stderr).toBe(0);
    const backup = r.doc.backup as { id: string; copies: { destination: string; ok: boolean }[] };
    id = backup.id;
    expect(backup.copies).toEqual([
      expect.objectContaining({ destination: 'local', ok: true }),
      expect.objectContaining({ destination: 'offsite', ok: true }),
    ]);
    expect((r.doc.verification as { ok: boolean }).ok).toBe(true);

    const stored = await keysUnder(`rich/${id}/`);
    const dump = stored.filter((k) => k.includes('/dump/'));
    expect(dump.length).toBeGreaterThan(5);
    expect(dump.every((k) => k.endsWith('.age'))).toBe(true);
    expect(stored).toEqual(
      expect.arrayContaining([
        `rich/${id}/manifest.json`,
        `rich/${id}/manifest.hmac`,
        `rich/${id}/copy.json`,
        `rich/${id}/copy.sha256sums`,
        `rich/${id}/SHA256SUMS.age`,
      ]),
    );
    expect(stored.some((k) => k.endsWith('.lifeboat-writing'))).toBe(false);
    expect(await objectText(`rich/${id}/dump/toc.dat.age`)).toMatch(/^age-encryption\.org\/v1\n/);
    expect(await openUploads('rich/')).toBe(0);

    const list = await runJson(['backups', 'list'], { cwd: ws.dir, env: awsEnv() });
    const listed = (
      list.doc.backups as { id: string; copies: { destination: string; location: string }[] }[]
    )[0]!;
    expect(listed.id).toBe(id);
    expect(listed.copies.map((c) => c.location)).toEqual([
      path.join(ws.dir, 'backups', id),
      `s3://${BUCKET}/rich/${id}/`,
    ]);
  });

  it('the gate can demand the off-site copy', async () => {
    const gate = await runJson(['gate', '--database-url', db.url, '--require-offsite'], {
      cwd: ws.dir,
      env: awsEnv(),
    });
    expect(gate.code, gate.stderr).toBe(0);
    expect((gate.doc.gate as { backup: { intactCopies: string[] } }).backup.intactCopies).toEqual([
      'local',
      'offsite',
    ]);
  });

  it('verify --from offsite decrypts with either key and proves the remote copy restores', async () => {
    for (const file of [key.first, key.second]) {
      const r = await runJson(['verify', id, '--database-url', db.url, '--from', 'offsite'], {
        cwd: ws.dir,
        env: { ...awsEnv(), LIFEBOAT_AGE_IDENTITY_FILE: file },
      });
      expect(r.code, r.stderr).toBe(0);
      expect(r.doc.verification).toMatchObject({ ok: true, restoredFrom: 'offsite' });
    }
  });

  it('verify --all-copies restores each copy', async () => {
    const r = await runJson(['verify', id, '--database-url', db.url, '--all-copies'], {
      cwd: ws.dir,
      env: { ...awsEnv(), LIFEBOAT_AGE_IDENTITY: await readFile(key.second, 'utf8') },
    });
    expect(r.code, r.stderr).toBe(0);
    const records = r.doc.verifications as { ok: boolean; restoredFrom: string }[];
    expect(records.map((v) => [v.restoredFrom, v.ok])).toEqual([
      ['local', true],
      ['offsite', true],
    ]);
  });

  it('the standard age tool decrypts the remote copy to the very files of the local one', async () => {
    const cipher = await client.send(
      new GetObjectCommand({ Bucket: BUCKET, Key: `rich/${id}/dump/toc.dat.age` }),
    );
    const file = path.join(ws.dir, 'toc.dat.age');
    await writeFile(file, Buffer.from(await cipher.Body!.transformToByteArray()));
    const { stdout } = await exec('age', ['-d', '-i', key.second, file], {
      encoding: 'buffer',
      maxBuffer: 1 << 26,
    });
    const local = await readFile(path.join(ws.dir, 'backups', id, 'dump', 'toc.dat'));
    expect(sha256Hex(stdout)).toBe(sha256Hex(local));
  });

  it('restore --as works from the off-site copy alone when the local one is gone', async () => {
    await rm(path.join(ws.dir, 'backups', id), { recursive: true });
    const name = `${db.name}_from_offsite`;
    const r = await runJson(['restore', id, '--as', name, '--database-url', db.url], {
      cwd: ws.dir,
      env: { ...awsEnv(), LIFEBOAT_AGE_IDENTITY_FILE: key.first },
    });
    try {
      expect(r.code, r.stderr).toBe(0);
      expect(r.doc.restore).toMatchObject({ restoredFrom: 'offsite' });
      const count = async (url: string): Promise<unknown> =>
        (await exec('psql', [url, '-XAtc', 'select count(*) from "Weird Schema"."Order Items"']))
          .stdout;
      const restoredUrl = new URL(db.url);
      restoredUrl.pathname = `/${name}`;
      expect(await count(restoredUrl.toString())).toBe(await count(db.url));
    } finally {
      await db.query(`drop database if exists "${name}"`).catch(() => undefined);
    }
  });

  it('a wrong or missing key is one clear sentence and exit 2', async () => {
    const wrong = await runCli(['verify', id, '--database-url', db.url, '--from', 'offsite'], {
      cwd: ws.dir,
      env: { ...awsEnv(), LIFEBOAT_AGE_IDENTITY_FILE: key.wrong },
    });
    expect(wrong.code, wrong.stderr).toBe(2);
    expect(wrong.stderr).toMatch(
      /encrypted to other keys: none of the configured age identities opens it/,
    );
    expect(wrong.stderr).not.toContain(
      await readFile(key.wrong, 'utf8').then((t) => t.trim().split('\n').at(-1)!),
    );

    const missing = await runCli(['verify', id, '--database-url', db.url, '--from', 'offsite'], {
      cwd: ws.dir,
      env: awsEnv(),
    });
    expect(missing.code, missing.stderr).toBe(2);
    expect(missing.stderr).toMatch(
      /is encrypted and no age identity is configured; set LIFEBOAT_AGE_IDENTITY_FILE/,
    );
  });
});

describe('faults of the object store', () => {
  beforeAll(async () => {
    small = await smallDatabase('offsite_faults', 2000);
  });
  afterAll(async () => {
    await small.drop();
  });

  it('wrong credentials: the copy fails with the reason, the secret is never printed', async () => {
    const ws = await offsiteWorkspace('creds');
    try {
      const secret = 'this-secret-is-wrong-0123456789';
      const r = await runCli(['backup', '--database-url', dbUrl()], {
        cwd: ws.dir,
        env: awsEnv(secret),
      });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/held in 1 destination\(s\) but the policy requires 2/);
      expect(r.stderr).toMatch(
        /offsite: s3:\/\/lifeboat-offsite\/creds\/: the store refused the credentials \(SignatureDoesNotMatch\)/,
      );
      expect(`${r.stdout}${r.stderr}`).not.toContain(secret);
      expect(await keysUnder('creds/')).toEqual([]);
    } finally {
      await ws.cleanup();
    }
  });

  it('doctor checks an s3:// destination by writing and deleting a probe object', async () => {
    const ws = await offsiteWorkspace('doctor');
    try {
      const ok = await runCli(['doctor', '--database-url', dbUrl()], {
        cwd: ws.dir,
        env: awsEnv(),
      });
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stdout).toMatch(
        /destination offsite: s3:\/\/lifeboat-offsite\/doctor\/ is writable, copies encrypted with age/,
      );
      const bad = await runCli(['doctor', '--database-url', dbUrl()], {
        cwd: ws.dir,
        env: awsEnv('not-the-secret'),
      });
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/destination offsite: .*the store refused the credentials/);
      expect(await keysUnder('doctor/')).toEqual([]);
    } finally {
      await ws.cleanup();
    }
  });

  it('a store that accepts connections and never answers fails the copy in bounded time', async () => {
    const sockets: Socket[] = [];
    const silent = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as AddressInfo).port;
    const ws = await workspace({
      destinations: [
        { name: 'local', path: 'backups' },
        {
          name: 'offsite',
          url: `s3://${BUCKET}/silent`,
          endpoint: `http://127.0.0.1:${port}`,
          forcePathStyle: true,
          timeout: '1s',
        },
      ],
    });
    try {
      const started = Date.now();
      const r = await runCli(['backup', '--no-verify', '--database-url', dbUrl()], {
        cwd: ws.dir,
        env: awsEnv(),
      });
      // The local copy is kept; a destination without its copy is never a green exit.
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(
        /is missing from 1 of 2 destinations; the copies in local were kept/,
      );
      expect(r.stderr).toMatch(/offsite: .*the store stopped answering \(timed out/);
      expect(Date.now() - started).toBeLessThan(30_000);
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
      await ws.cleanup();
    }
  });

  it('with no local destination, a full staging disk fails the backup and leaves nothing anywhere', async () => {
    const ws = await workspace({
      destinations: [
        {
          name: 'offsite',
          url: `s3://${BUCKET}/staged`,
          endpoint: s3.endpoint,
          region: s3.region,
          forcePathStyle: true,
        },
      ],
    });
    const tmp = path.join(ws.dir, 'tmp');
    await mkdir(tmp);
    await exec('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', tmp]);
    const big = await bigDatabase('offsite_staged');
    try {
      const r = await runCli(['backup', '--database-url', big.url], {
        cwd: ws.dir,
        env: { ...awsEnv(), TMPDIR: tmp },
      });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/filled up during the dump \(no space left on device\)/);
      expect(await readdir(tmp)).toEqual([]);
      expect(await keysUnder('staged/')).toEqual([]);
    } finally {
      await exec('umount', [tmp]).catch(() => undefined);
      await big.drop();
      await ws.cleanup();
    }
  });

  it('the store going away mid-upload: nothing listed there, and its multipart upload is cleaned up', async () => {
    const big = await bigDatabase('offsite_big');
    const ws = await offsiteWorkspace('away', { encrypt: false, copies: 1 });
    try {
      const env = awsEnv();
      const run = await startPaused(['backup', '--database-url', big.url], 'backup:uploading', {
        cwd: ws.dir,
        env,
      });
      let r;
      try {
        await run.reached();
        // The first part has gone through; its multipart upload is being opened.
        await expect.poll(() => openUploads('away/'), { timeout: 10_000 }).toBe(1);
        await s3.stopProxy();
        await run.resume();
        r = await run.done;
      } finally {
        run.child.kill('SIGKILL'); // a paused child must not outlive a failed assertion
        await s3.startProxy();
      }
      // The local copy is kept and verified; the off-site one is reported, not listed, and
      // a destination left without its copy fails the backup (exit 2).
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(
        /is missing from 1 of 2 destinations; the copies in local were kept and verified/,
      );
      expect(r.stderr).toMatch(
        /offsite: s3:\/\/lifeboat-offsite\/away\/: the store is not reachable/,
      );
      expect(r.stderr).toMatch(/the next backup to offsite removes it/);
      const list = await runJson(['backups', 'list'], { cwd: ws.dir, env });
      const [first] = list.doc.backups as { id: string; copies: { destination: string }[] }[];
      expect(first!.copies.map((c) => c.destination)).toEqual(['local']);

      // The next backup to the store removes what the crashed upload left.
      const next = await runJson(['backup', '--database-url', big.url], { cwd: ws.dir, env });
      expect(next.code, next.stderr).toBe(0);
      const nextId = (next.doc.backup as { id: string }).id;
      expect(await openUploads('away/')).toBe(0);
      const left = await keysUnder('away/');
      expect(left.filter((k) => k.startsWith(`away/${first!.id}/`))).toEqual([]);
      expect(left).toContain(`away/${nextId}/manifest.json`);
      const gate = await runCli(['gate', '--database-url', big.url, '--require-offsite'], {
        cwd: ws.dir,
        env,
      });
      expect(gate.code, gate.stderr).toBe(0);
    } finally {
      await ws.cleanup();
      await big.drop();
    }
  });

  it('kill -9 mid-upload leaves no remote copy listed; the next backup aborts its multipart upload', async () => {
    const big = await bigDatabase('offsite_kill');
    const ws = await offsiteWorkspace('killed', { encrypt: false, copies: 1 });
    try {
      const env = awsEnv();
      const run = await startPaused(['backup', '--database-url', big.url], 'backup:uploading', {
        cwd: ws.dir,
        env,
      });
      await run.reached();
      await expect.poll(() => openUploads('killed/'), { timeout: 10_000 }).toBe(1);
      await run.kill9();
      const list = await runJson(['backups', 'list'], { cwd: ws.dir, env });
      const listed = list.doc.backups as { id: string; copies: { destination: string }[] }[];
      expect(listed.flatMap((b) => b.copies.map((c) => c.destination))).toEqual(['local']);
      const killedId = listed[0]!.id;
      expect(await keysUnder(`killed/${killedId}/`)).toContain(
        `killed/${killedId}/.lifeboat-writing`,
      );

      const next = await runJson(['backup', '--database-url', big.url], { cwd: ws.dir, env });
      expect(next.code, next.stderr).toBe(0);
      expect(await openUploads('killed/')).toBe(0);
      expect(await keysUnder(`killed/${killedId}/`)).toEqual([]);
    } finally {
      await ws.cleanup();
      await big.drop();
    }
  });

  it('a second backup to the same store leaves a running one alone', async () => {
    const big = await bigDatabase('offsite_two');
    const ws = await offsiteWorkspace('two', { encrypt: false, copies: 2 });
    try {
      const env = awsEnv();
      const first = await startPaused(['backup', '--database-url', big.url], 'backup:uploading', {
        cwd: ws.dir,
        env,
      });
      try {
        await first.reached();
        const second = await runJson(['backup', '--no-verify', '--database-url', big.url], {
          cwd: ws.dir,
          env,
        });
        expect(second.code, second.stderr).toBe(0);
        // The first writer is alive: its marker, objects and multipart upload were left in place.
        expect(await openUploads('two/')).toBe(1);
        await first.resume();
        const done = await first.done;
        expect(done.code, done.stderr).toBe(0);
      } finally {
        first.child.kill('SIGKILL');
      }
      const list = await runJson(['backups', 'list'], { cwd: ws.dir, env });
      const listed = list.doc.backups as { copies: { destination: string }[] }[];
      expect(listed.map((b) => b.copies.map((c) => c.destination))).toEqual([
        ['local', 'offsite'],
        ['local', 'offsite'],
      ]);
      expect(await openUploads('two/')).toBe(0);
    } finally {
      await ws.cleanup();
      await big.drop();
    }
  });

  it('with the store down, the gate refuses an off-site demand and says why; the local copy still verifies', async () => {
    const ws = await offsiteWorkspace('down', { encrypt: false });
    try {
      const env = awsEnv();
      const id = await backupId(ws, env);
      await s3.stopProxy();
      try {
        const gate = await runCli(
          ['gate', '--database-url', dbUrl(), '--copies', '1', '--require-offsite'],
          { cwd: ws.dir, env },
        );
        expect(gate.code).toBe(3);
        expect(gate.stderr).toMatch(
          /warning: destination offsite cannot be read \(.*the store is not reachable \(ECONNREFUSED\)\); its copies are not counted/,
        );
        expect(gate.stderr).toMatch(/has no copy off-site/);
        const verify = await runJson(['verify', id, '--database-url', dbUrl()], {
          cwd: ws.dir,
          env,
        });
        expect(verify.code, verify.stderr).toBe(0);
        expect(verify.doc.verification).toMatchObject({ ok: true, restoredFrom: 'local' });
      } finally {
        await s3.startProxy();
      }
    } finally {
      await ws.cleanup();
    }
  });

  it('a corrupted object: gate and verify refuse, naming the copy', async () => {
    const ws = await offsiteWorkspace('corrupt');
    try {
      const env = { ...awsEnv(), LIFEBOAT_AGE_IDENTITY_FILE: key.first };
      const id = await backupId(ws, env);
      const victim = (await keysUnder(`corrupt/${id}/dump/`)).find((k) =>
        k.endsWith('.dat.gz.age'),
      )!;
      // Same size, one byte flipped: only a checksum can tell.
      const got = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: victim }));
      const bytes = Buffer.from(await got.Body!.transformToByteArray());
      bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
      await putText(victim, bytes);

      const gate = await runCli(['gate', '--database-url', dbUrl(), '--require-offsite'], {
        cwd: ws.dir,
        env,
      });
      expect(gate.code).toBe(3);
      expect(gate.stderr).toMatch(
        /copy in offsite: dump\/.*\.age: the store's checksum \(ETag\) differs/,
      );
      expect(gate.stderr).toMatch(/no intact copy off-site/);

      const verify = await runCli(['verify', id, '--database-url', dbUrl(), '--from', 'offsite'], {
        cwd: ws.dir,
        env,
      });
      expect(verify.code).toBe(4);
      expect(verify.stderr).toMatch(/The copy of backup .* in offsite is damaged/);
      expect(verify.stderr).toMatch(/offsite: dump\/.*\.age: SHA-256 differs/);
    } finally {
      await ws.cleanup();
    }
  });

  it('a copy missing from one destination: copies fall short and the gate says so', async () => {
    const ws = await offsiteWorkspace('missing');
    try {
      const env = awsEnv();
      const id = await backupId(ws, env);
      for (const k of await keysUnder(`missing/${id}/`))
        await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: k }));
      const gate = await runCli(['gate', '--database-url', dbUrl()], { cwd: ws.dir, env });
      expect(gate.code).toBe(3);
      expect(gate.stderr).toMatch(/held intact in 1 destination\(s\); 2 required/);
      const offsite = await runCli(
        ['gate', '--database-url', dbUrl(), '--copies', '1', '--require-offsite'],
        { cwd: ws.dir, env },
      );
      expect(offsite.code).toBe(3);
      expect(offsite.stderr).toMatch(/has no copy off-site \(in an s3:\/\/ destination\)/);
    } finally {
      await ws.cleanup();
    }
  });

  it('a tampered signed manifest in the store is refused by verify, gate and run', async () => {
    const ws = await offsiteWorkspace('tamper', { encrypt: false });
    try {
      const env = awsEnv();
      const id = await backupId(ws, env);
      // Change a row count and re-hash, as a careful forger would; only the key can re-sign.
      const text = (await objectText(`tamper/${id}/manifest.json`)).replace(
        /"rows": \d+/,
        '"rows": 1',
      );
      await putText(`tamper/${id}/manifest.json`, text);
      await putText(`tamper/${id}/manifest.sha256`, `${sha256Hex(text)}  manifest.json\n`);

      const verify = await runCli(['verify', id, '--database-url', dbUrl(), '--from', 'offsite'], {
        cwd: ws.dir,
        env,
      });
      expect(verify.code).toBe(4);
      expect(verify.stderr).toMatch(/offsite: manifest\.json is not signed by the configured key/);

      const gate = await runCli(['gate', '--database-url', dbUrl(), '--require-offsite'], {
        cwd: ws.dir,
        env,
      });
      expect(gate.code).toBe(3);
      expect(gate.stderr).toMatch(/not signed by the configured key/);

      await writeFile(
        path.join(ws.dir, 'step.yaml'),
        'name: tamper_check\npolicy:\n  requireOffsite: true\nsteps:\n  - id: add\n    sql:\n      up: create table tamper_added (id int)\n      down: drop table tamper_added\n',
      );
      const run = await runCli(
        ['run', 'step.yaml', '--database-url', dbUrl(), '--backup', 'existing'],
        {
          cwd: ws.dir,
          env,
        },
      );
      expect(run.code, run.stderr).toBe(3);
      expect(run.stderr).toMatch(/not signed by the configured key/);
      const table = await small.query('select to_regclass($1) as t', ['tamper_added']);
      expect(table.rows).toEqual([{ t: null }]);
    } finally {
      await ws.cleanup();
    }
  });

  it('backups prune applies per destination, and a pruned remote copy leaves nothing behind', async () => {
    const ws = await workspace({
      destinations: [
        { name: 'local', path: 'backups', keep: 1 },
        {
          name: 'offsite',
          url: `s3://${BUCKET}/prune`,
          endpoint: s3.endpoint,
          region: s3.region,
          forcePathStyle: true,
          keep: 2,
        },
      ],
      policy: { copies: 2 },
    });
    try {
      const env = awsEnv();
      const ids = [await backupId(ws, env), await backupId(ws, env), await backupId(ws, env)];
      const r = await runJson(['backups', 'prune', '--yes', '--database-url', dbUrl()], {
        cwd: ws.dir,
        env,
      });
      expect(r.code, r.stderr).toBe(0);
      const removed = (
        r.doc.prune as { decisions: { id: string; destination: string; action: string }[] }
      ).decisions
        .filter((d) => d.action === 'remove')
        .map((d) => `${d.id}@${d.destination}`);
      expect(removed.sort()).toEqual(
        [`${ids[0]}@local`, `${ids[1]}@local`, `${ids[0]}@offsite`].sort(),
      );
      const stored = await keysUnder('prune/');
      expect(stored.filter((k) => k.startsWith(`prune/${ids[0]}/`))).toEqual([]);
      expect(stored).toContain(`prune/${ids[1]}/manifest.json`);
      const list = await runJson(['backups', 'list'], { cwd: ws.dir, env });
      const copies = Object.fromEntries(
        (list.doc.backups as { id: string; copies: { destination: string }[] }[]).map((b) => [
          b.id,
          b.copies.map((c) => c.destination),
        ]),
      );
      expect(copies).toEqual({ [ids[1]!]: ['offsite'], [ids[2]!]: ['local', 'offsite'] });
    } finally {
      await ws.cleanup();
    }
  });
});
