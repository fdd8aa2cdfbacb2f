import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startThrowawayCluster, type Cluster } from '../src/cluster.js';
import { smallDatabase } from './support/backups.js';
import { runCli, runJson, workspace } from './support/cli.js';
import type { TestDatabase } from './support/db.js';

/** Verification on another server: the roles and the load stay away from the target's. */
describe('verify --scratch-url', () => {
  let other: Cluster;
  let db: TestDatabase;
  let ws: Awaited<ReturnType<typeof workspace>>;
  beforeAll(async () => {
    other = await startThrowawayCluster();
    db = await smallDatabase('scratch_url');
    ws = await workspace();
  });
  afterAll(async () => {
    await db.drop();
    await ws.cleanup();
    await other.stop();
  });

  it('restores on the scratch server, proves the backup there, and leaves nothing behind on either', async () => {
    const r = await runJson(['backup', '--scratch-url', other.url, '--database-url', db.url], {
      cwd: ws.dir,
    });
    expect(r.code, r.stderr).toBe(0);
    const v = r.doc.verification as { ok: boolean; scratch: { server: string } };
    expect(v.ok).toBe(true);
    expect(v.scratch.server).toBe(`lifeboat@127.0.0.1:${other.port}/postgres`);
    const client = new pg.Client({ connectionString: other.url });
    await client.connect();
    try {
      const left = await client.query(
        `select datname from pg_database where datname like 'lifeboat_%'`,
      );
      expect(left.rows).toEqual([]);
    } finally {
      await client.end();
    }
    expect(r.stdout + r.stderr).not.toContain(other.password);
    const doctor = await runCli(['doctor', '--database-url', db.url], {
      cwd: ws.dir,
      env: { LIFEBOAT_SCRATCH_URL: other.url },
    });
    expect(doctor.code, doctor.stdout).toBe(0);
    expect(doctor.stdout).toMatch(
      new RegExp(`ok {4}scratch server: lifeboat@127\\.0\\.0\\.1:${other.port}/postgres`),
    );
  });

  it('an unreachable scratch server is bad input (exit 2), not a failed verification', async () => {
    const r = await runCli(
      [
        'verify',
        '--scratch-url',
        'postgres://nobody@127.0.0.1:1/postgres',
        '--database-url',
        db.url,
      ],
      {
        cwd: ws.dir,
      },
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /Cannot connect to nobody@127\.0\.0\.1:1\/postgres: connection refused/,
    );
  });
});
