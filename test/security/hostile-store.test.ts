import { execFile } from 'node:child_process';
import { cp, mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/repository/manifest.js';
import type { S3Server } from '../support/s3-server.js';
import { backupDirs, smallDatabase } from '../support/backups.js';
import { runCli, runJson, workspace } from '../support/cli.js';
import type { TestDatabase } from '../support/db.js';
import { storeWithBucket } from '../support/s3.js';
import { rewriteManifest } from './support.js';

/**
 * A destination is writable by more people and machines than the database:
 * whoever can write there, without the signing key, must not be able to make
 * lifeboat write outside its own directories, nor make an unverified backup
 * pass as verified.
 */
const exec = promisify(execFile);

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

describe('a manifest naming a file outside its copy', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await smallDatabase('sec_paths', 200);
  });
  afterAll(async () => {
    await db.drop();
  });

  it('an encrypted local copy: verify refuses it (exit 4) and writes nothing outside', async () => {
    const ws = await workspace();
    try {
      const keyFile = path.join(ws.dir, 'key.txt');
      await exec('age-keygen', ['-o', keyFile]);
      const recipient = (await exec('age-keygen', ['-y', keyFile])).stdout.trim();
      await writeFile(
        path.join(ws.dir, 'lifeboat.config.json'),
        JSON.stringify({
          destinations: [{ name: 'vault', path: 'vault', encrypt: { recipients: [recipient] } }],
        }),
      );
      const tmp = path.join(ws.dir, 'tmp');
      await mkdir(tmp);
      const env = { TMPDIR: tmp, LIFEBOAT_AGE_IDENTITY_FILE: keyFile };
      const backup = await runCli(['backup', '--database-url', db.url], { cwd: ws.dir, env });
      expect(backup.code, backup.stderr).toBe(0);
      const [dir] = await backupDirs(path.join(ws.dir, 'vault'));

      // The payload, encrypted to the copy's public recipient, beside the destination.
      const payloadDir = path.join(ws.dir, 'payload');
      await mkdir(payloadDir);
      const plain = path.join(ws.dir, 'evil.txt');
      await writeFile(plain, 'owned\n');
      await exec('age', ['-r', recipient, '-o', path.join(payloadDir, 'owned.age'), plain]);
      await rewriteManifest(dir!, (m) => {
        m.files.push({ path: '../../payload/owned', size: 6, sha256: sha256Hex('owned\n') });
      });

      const verify = await runCli(['verify', '--database-url', db.url], { cwd: ws.dir, env });
      expect(verify.code, verify.stdout + verify.stderr).toBe(4);
      expect(verify.stderr).toMatch(
        /manifest\.json names a file outside the copy: \.\.\/\.\.\/payload\/owned/,
      );
      // tmp/lifeboat-restore-*/../../payload/owned would have been written beside the payload.
      expect(await readdir(payloadDir)).toEqual(['owned.age']);
      expect(await readdir(tmp)).toEqual([]);
    } finally {
      await ws.cleanup();
    }
  });

  it('names that are not plain dump files are refused however they are spelled', async () => {
    const ws = await workspace();
    try {
      const backup = await runCli(['backup', '--database-url', db.url], { cwd: ws.dir });
      expect(backup.code, backup.stderr).toBe(0);
      const [dir] = await backupDirs(path.join(ws.dir, '.lifeboat/backups'));
      for (const bad of [
        '/etc/passwd',
        'dump/../../x',
        'dump\\..\\x',
        'dump/sub/x',
        'dump/.',
        '.lifeboat-writing',
      ]) {
        const original = await readFile(path.join(dir!, 'manifest.json'), 'utf8');
        await rewriteManifest(dir!, (m) => {
          m.files.push({ path: bad, size: 1, sha256: sha256Hex('x') });
        });
        const verify = await runCli(['verify', '--database-url', db.url], { cwd: ws.dir });
        expect(verify.code, `${bad}: ${verify.stderr}`).toBe(4);
        expect(verify.stderr).toContain(`manifest.json names a file outside the copy: ${bad}`);
        await writeFile(path.join(dir!, 'manifest.json'), original);
        await writeFile(
          path.join(dir!, 'manifest.sha256'),
          `${sha256Hex(original)}  manifest.json\n`,
        );
      }
    } finally {
      await ws.cleanup();
    }
  });
});

describe('an S3 copy whose manifest, copy.json and bucket were all changed', () => {
  const BUCKET = 'lifeboat-hostile';
  let s3: S3Server;
  let client: S3Client;
  let db: TestDatabase;
  beforeAll(async () => {
    ({ s3, client } = await storeWithBucket(BUCKET));
    db = await smallDatabase('sec_s3paths', 200);
  });
  afterAll(async () => {
    client?.destroy();
    await s3?.stop();
    await db?.drop();
  });

  it('verify --from the store refuses it (exit 4) and writes nothing outside its temporary directory', async () => {
    const ws = await workspace({
      destinations: [
        { name: 'local', path: 'backups' },
        {
          name: 'offsite',
          url: `s3://${BUCKET}/shop`,
          endpoint: s3.endpoint,
          region: s3.region,
          forcePathStyle: true,
        },
      ],
      policy: { copies: 2 },
    });
    try {
      const env = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey };
      const backup = await runJson(['backup', '--database-url', db.url], { cwd: ws.dir, env });
      expect(backup.code, backup.stderr).toBe(0);
      const id = (backup.doc.backup as { id: string }).id;
      const read = async (key: string): Promise<string> =>
        (
          await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))
        ).Body!.transformToString();
      const put = (key: string, body: string): Promise<unknown> =>
        client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));

      const hostile = 'dump/../../../escaped';
      const body = 'owned\n';
      const manifest = JSON.parse(await read(`shop/${id}/manifest.json`)) as {
        files: { path: string; size: number; sha256: string }[];
      };
      manifest.files.push({ path: hostile, size: body.length, sha256: sha256Hex(body) });
      const manifestText = `${JSON.stringify(manifest, null, 2)}\n`;
      const layout = JSON.parse(await read(`shop/${id}/copy.json`)) as {
        files: { path: string; size: number; sha256: string }[];
      };
      layout.files.push({ path: hostile, size: body.length, sha256: sha256Hex(body) });
      await put(`shop/${id}/${hostile}`, body);
      await put(`shop/${id}/copy.json`, `${JSON.stringify(layout, null, 2)}\n`);
      await put(`shop/${id}/manifest.sha256`, `${sha256Hex(manifestText)}  manifest.json\n`);
      await put(`shop/${id}/manifest.json`, manifestText);

      const tmp = path.join(ws.dir, 'deep', 'tmp');
      await mkdir(tmp, { recursive: true });
      const verify = await runCli(['verify', id, '--from', 'offsite', '--database-url', db.url], {
        cwd: ws.dir,
        env: { ...env, TMPDIR: tmp },
      });
      expect(verify.code, verify.stdout + verify.stderr).toBe(4);
      expect(verify.stderr).toMatch(/manifest\.json names a file outside the copy/);
      // tmp/lifeboat-restore-*/dump/../../../escaped is ws/deep/escaped.
      expect(await exists(path.join(ws.dir, 'deep', 'escaped'))).toBe(false);
      expect(await readdir(tmp)).toEqual([]);
    } finally {
      await ws.cleanup();
    }
  });

  it('a copy.json listing other files than the manifest is a damaged copy (exit 4)', async () => {
    const ws = await workspace({
      destinations: [
        {
          name: 'offsite',
          url: `s3://${BUCKET}/extra`,
          endpoint: s3.endpoint,
          region: s3.region,
          forcePathStyle: true,
        },
      ],
    });
    try {
      const env = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey };
      const backup = await runJson(['backup', '--database-url', db.url], { cwd: ws.dir, env });
      expect(backup.code, backup.stderr).toBe(0);
      const id = (backup.doc.backup as { id: string }).id;
      const layoutKey = `extra/${id}/copy.json`;
      const layout = JSON.parse(
        await (
          await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: layoutKey }))
        ).Body!.transformToString(),
      ) as { files: { path: string; size: number; sha256: string }[] };
      // An object the manifest never named, listed in copy.json and present in the bucket.
      layout.files.push({ path: 'dump/9999.dat.gz', size: 3, sha256: sha256Hex('abc') });
      await client.send(
        new PutObjectCommand({ Bucket: BUCKET, Key: `extra/${id}/dump/9999.dat.gz`, Body: 'abc' }),
      );
      await client.send(
        new PutObjectCommand({
          Bucket: BUCKET,
          Key: layoutKey,
          Body: `${JSON.stringify(layout, null, 2)}\n`,
        }),
      );
      const verify = await runCli(['verify', id, '--database-url', db.url], { cwd: ws.dir, env });
      expect(verify.code, verify.stdout + verify.stderr).toBe(4);
      expect(verify.stderr).toContain(
        'copy.json lists dump/9999.dat.gz, which the manifest does not name',
      );
    } finally {
      await ws.cleanup();
    }
  });
});

describe('verification records carried from one backup to another', () => {
  const KEY = 'hostile-store-signing-key';
  let db: TestDatabase;
  let ws: Awaited<ReturnType<typeof workspace>>;
  let verified: string;
  let unverified: string;
  const env = { LIFEBOAT_SIGNING_KEY: KEY };
  beforeAll(async () => {
    db = await smallDatabase('sec_records', 100);
    ws = await workspace();
    const a = await runJson(['backup', '--database-url', db.url], { cwd: ws.dir, env });
    expect(a.code, a.stderr).toBe(0);
    verified = (a.doc.backup as { id: string }).id;
    const b = await runJson(['backup', '--no-verify', '--database-url', db.url], {
      cwd: ws.dir,
      env,
    });
    expect(b.code, b.stderr).toBe(0);
    unverified = (b.doc.backup as { id: string }).id;
    const root = path.join(ws.dir, '.lifeboat/backups');
    // Signed records of A, copied beside B's manifest: the signatures still hold.
    await cp(
      path.join(root, verified, 'verifications'),
      path.join(root, unverified, 'verifications'),
      {
        recursive: true,
      },
    );
  });
  afterAll(async () => {
    await db.drop();
    await ws.cleanup();
  });

  it('do not make the gate pass on the other backup', async () => {
    const gate = await runJson(['gate', '--database-url', db.url], { cwd: ws.dir, env });
    expect(gate.code, gate.stderr).toBe(0);
    // The gate passes on A, which was verified; B counts as never verified.
    expect((gate.doc.gate as { backup: { id: string } }).backup.id).toBe(verified);
    const show = await runJson(['backups', 'show', unverified], { cwd: ws.dir, env });
    expect((show.doc.backup as { verified: unknown }).verified).toBeNull();
  });

  it('do not make prune trust the other backup as the newest verified one', async () => {
    const prune = await runJson(['backups', 'prune', '--keep', '1', '--database-url', db.url], {
      cwd: ws.dir,
      env,
    });
    expect(prune.code, prune.stderr).toBe(0);
    const decisions = (
      prune.doc.prune as { decisions: { id: string; action: string; reason: string }[] }
    ).decisions;
    expect(decisions.find((d) => d.id === verified)).toMatchObject({
      action: 'keep',
      reason: 'newest verified',
    });
    expect(await backupDirs(path.join(ws.dir, '.lifeboat/backups'))).toHaveLength(2);
  });

  it('a copy stored under another id than its manifest says is damaged (exit 4)', async () => {
    const root = path.join(ws.dir, '.lifeboat/backups');
    // A later id, so it would be "the newest backup" of this target.
    const forged = unverified.replace(/^(\d{8}T\d{6})(\d{3})/, (_, s: string) => `${s}999`);
    await cp(path.join(root, verified), path.join(root, forged), { recursive: true });
    try {
      const verify = await runCli(['verify', forged, '--database-url', db.url], {
        cwd: ws.dir,
        env,
      });
      expect(verify.code, verify.stdout + verify.stderr).toBe(4);
      expect(verify.stderr).toContain(
        `manifest.json is of backup ${verified}, but it is stored as ${forged}`,
      );
      const gate = await runJson(['gate', '--database-url', db.url], { cwd: ws.dir, env });
      expect((gate.doc.gate as { backup: { id: string } }).backup.id).toBe(verified);
    } finally {
      await rename(path.join(root, forged), path.join(ws.dir, 'forged-aside'));
    }
  });
});
