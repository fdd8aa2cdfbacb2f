import { execFile } from 'node:child_process';
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startThrowawayCluster, type Cluster } from '../src/cluster.js';
import { largestDataFile, richDatabase, smallDatabase } from './support/backups.js';
import { runJson, workspace } from './support/cli.js';
import type { TestDatabase } from './support/db.js';
import type { S3Server } from './support/s3-server.js';
import { storeWithBucket } from './support/s3.js';

/**
 * `lifeboat drill`: the newest verified backup restored from one destination
 * alone, as after a disaster: the local copies deleted, the source down, onto
 * another server, from an encrypted off-site copy. Then `gate --drilled` and
 * `history` read the evidence it left.
 */
const exec = promisify(execFile);
const BUCKET = 'lifeboat-drill';
const SIGNING_KEY = 'drill-test-signing-key';

let s3: S3Server;
let client: S3Client;
let second: Cluster;
let keys: { dir: string; cleanup(): Promise<void> };
let keyFile = '';
let recipient = '';

beforeAll(async () => {
  const [store, cluster] = await Promise.all([storeWithBucket(BUCKET), startThrowawayCluster()]);
  ({ s3, client } = store);
  second = cluster;
  keys = await workspace();
  keyFile = path.join(keys.dir, 'drill.key');
  await exec('age-keygen', ['-o', keyFile]);
  recipient = (await exec('age-keygen', ['-y', keyFile])).stdout.trim();
}, 120_000);

afterAll(async () => {
  client?.destroy();
  await Promise.all([s3?.stop(), second?.stop(), keys?.cleanup()]);
});

function env(): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    LIFEBOAT_SIGNING_KEY: SIGNING_KEY,
    LIFEBOAT_AGE_IDENTITY_FILE: keyFile,
  };
}

/** The databases lifeboat left on the second server: a drill drops its own. */
async function databasesOnSecond(): Promise<string[]> {
  const c = new pg.Client({ connectionString: second.url });
  await c.connect();
  try {
    const res = await c.query<{ datname: string }>(
      `select datname from pg_database where datname like 'lifeboat%' order by 1`,
    );
    return res.rows.map((r) => r.datname);
  } finally {
    await c.end();
  }
}

describe('a drill from the encrypted off-site copy, the local copies gone', () => {
  let db: TestDatabase;
  let ws: Awaited<ReturnType<typeof workspace>>;

  beforeAll(async () => {
    db = await richDatabase('drill');
    ws = await workspace({
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
      policy: { copies: 1 },
    });
  });

  afterAll(async () => {
    await db?.drop();
    await ws?.cleanup();
  });

  it('restores onto another server with the source down, proves it, and leaves the evidence the gate asks for', async () => {
    const opts = { cwd: ws.dir, env: env() };
    const backup = await runJson(['backup', '--database-url', db.url], opts);
    expect(backup.code, backup.stderr).toBe(0);
    const id = (backup.doc.backup as { id: string }).id;

    // Before any drill, the gate that demands one refuses, and says what to run.
    const before = await runJson(['gate', '--drilled', '30d', '--database-url', db.url], opts);
    expect(before.code).toBe(3);
    expect(before.stderr).toMatch(/no disaster-recovery drill has been run in the last 30d/);

    // The disaster: this machine's copies are gone, and the source answers no more.
    await rm(path.join(ws.dir, 'backups'), { recursive: true, force: true });
    const gone = new URL(db.url);
    gone.port = '1';
    const drill = await runJson(
      ['drill', '--to', second.url, '--database-url', gone.toString()],
      opts,
    );
    expect(drill.code, drill.stderr).toBe(0);
    const record = drill.doc.drill as {
      backupId: string;
      passed: boolean;
      from: { destination: string; remote: boolean };
      encryption: { recipients: string[]; identityFrom: string };
      onto: { server: string; database: string };
      backupAgeMs: number;
      durationMs: number;
      phases: { name: string; ms: number }[];
    };
    expect(record).toMatchObject({
      backupId: id,
      passed: true,
      from: { destination: 'offsite', remote: true },
      encryption: { recipients: [recipient] },
    });
    expect(record.encryption.identityFrom).toContain(keyFile);
    expect(record.onto.server).toContain(String(second.port));
    expect(record.onto.database).toMatch(/^lifeboat_verify_/);
    expect(record.backupAgeMs).toBeGreaterThan(0);
    expect(record.durationMs).toBeGreaterThan(0);
    const phases = record.phases.map((p) => p.name).join(' | ');
    expect(phases).toMatch(/Check checksums of the copy in offsite/);
    expect(phases).toMatch(/Restore the copy in offsite/);
    expect(phases).toMatch(/Fingerprint/);
    // The drill's database on the other server is gone; nothing of the source's password shows.
    expect(await databasesOnSecond()).toEqual([]);
    expect(drill.stdout + drill.stderr).not.toContain(second.password);

    // The evidence lives beside the off-site copy: the gate and the history read it there.
    const after = await runJson(['gate', '--drilled', '30d', '--database-url', db.url], opts);
    expect(after.code, after.stderr).toBe(0);
    const history = await runJson(['history', '--database-url', db.url], opts);
    expect(history.code, history.stderr).toBe(0);
    const backups = (
      history.doc.history as { backups: { id: string; drills: { passed: boolean }[] }[] }
    ).backups;
    expect(backups.find((b) => b.id === id)?.drills).toMatchObject([{ passed: true }]);

    // A drill older than the gate allows does not count.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const stale = await runJson(['gate', '--drilled', '1s', '--database-url', db.url], opts);
    expect(stale.code).toBe(3);
    expect(stale.stderr).toMatch(
      /no passing disaster-recovery drill in the last 1\.0s; the last, at .* from offsite, passed, but is/,
    );
  });
});

describe('a drill that finds the copy damaged', () => {
  let db: TestDatabase;
  let ws: Awaited<ReturnType<typeof workspace>>;

  beforeAll(async () => {
    db = await smallDatabase('drill_damaged', 200);
    ws = await workspace({ destinations: [{ name: 'local', path: 'backups' }] });
  });

  afterAll(async () => {
    await db?.drop();
    await ws?.cleanup();
  });

  it('refuses with nothing to drill, names an unknown destination, and records a failed drill', async () => {
    const opts = { cwd: ws.dir, env: { LIFEBOAT_SIGNING_KEY: SIGNING_KEY } };
    const empty = await runJson(['drill', '--database-url', db.url], opts);
    expect(empty.code).toBe(3);
    expect(empty.stderr).toMatch(
      /^error: Destination local holds no verified backup of .* to drill/m,
    );

    const backup = await runJson(['backup', '--database-url', db.url], opts);
    expect(backup.code, backup.stderr).toBe(0);
    const id = (backup.doc.backup as { id: string }).id;

    const typo = await runJson(['drill', '--from', 'ofsite', '--database-url', db.url], opts);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/There is no destination "ofsite"; the config names local/);

    // One byte of the dump changed: the drill fails as verify would, and says why.
    const file = await largestDataFile(path.join(ws.dir, 'backups', id));
    await writeFile(file, 'not the dump any more');
    const drill = await runJson(['drill', '--database-url', db.url], opts);
    expect(drill.code).toBe(4);
    expect(drill.doc).toMatchObject({
      ok: false,
      error: { kind: 'verification-failed' },
      result: { backupId: id, passed: false, from: { destination: 'local', remote: false } },
    });
    expect(String((drill.doc.result as { error: string }).error)).toMatch(
      /is damaged, so it cannot be verified from there\. local: dump\/\d+\.dat\.gz: size/,
    );
    // Its report says what was drilled and what failed, beside the backup's evidence.
    const reports = path.join(ws.dir, 'backups', 'reports');
    const drillReports = (await readdir(reports)).filter((f) => f.endsWith('-drill.md')).sort();
    // The two refusals have their reports too: no result, only the sentence.
    expect(drillReports).toHaveLength(3);
    const [refusal, mistyped] = await Promise.all(
      drillReports.slice(0, 2).map((f) => readFile(path.join(reports, f), 'utf8')),
    );
    expect(refusal).toMatch(/^## lifeboat drill: FAILED \(exit 3\)$/m);
    expect(refusal).toMatch(/holds no verified backup of .* to drill/);
    expect(mistyped).toMatch(/^## lifeboat drill: FAILED \(exit 2\)$/m);
    expect(mistyped).toMatch(/There is no destination "ofsite"/);
    for (const r of [refusal, mistyped]) expect(r).not.toContain('**Drill**');
    const text = await readFile(path.join(reports, drillReports[2]!), 'utf8');
    expect(text).toMatch(/^## lifeboat drill: FAILED \(exit 4\)$/m);
    expect(text).toContain(`**Drill** FAILED at `);
    expect(text).toContain(`**Backup** \`${id}\``);
    expect(drill.stderr).toMatch(
      /not off-site: this drill proves a copy that a lost machine would take with it/,
    );

    const gate = await runJson(['gate', '--drilled', '30d', '--database-url', db.url], opts);
    expect(gate.code).toBe(3);
    expect(gate.stderr).toMatch(/the last, at .* from local, failed: /);
    const history = await runJson(['history', '--database-url', db.url], opts);
    const drills = (
      history.doc.history as { backups: { id: string; drills: { passed: boolean }[] }[] }
    ).backups.find((b) => b.id === id)?.drills;
    expect(drills).toMatchObject([{ passed: false }]);
    // The evidence is beside the copy it is about.
    expect(
      (await readdir(path.join(ws.dir, 'backups', id, 'drills'))).filter((f) =>
        f.endsWith('.json'),
      ),
    ).toHaveLength(1);
  });
});
