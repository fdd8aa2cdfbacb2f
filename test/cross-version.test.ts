import { readFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from '../src/cluster.js';
import { compareFingerprints, computeFingerprints, type Fingerprints } from '../src/fingerprint.js';
import { runPgTool } from '../src/pg-programs/exec.js';
import { findTool } from '../src/pg-programs/find.js';
import { preflightProblems, readDestinationFacts } from '../src/preflight.js';
import type { Manifest } from '../src/repository/manifest.js';
import { resolveTarget } from '../src/target.js';
import { backupDirs, richDatabase } from './support/backups.js';
import { runCli, runJson, workspace } from './support/cli.js';
import { adminUrl, createTestDatabase, type TestDatabase } from './support/db.js';
import { startNewerServer, type NewerMajor } from './support/newer-servers.js';

/**
 * Newer PostgreSQL majors than the suite's own server (Debian's 15), started
 * from the npm server builds: the destinations of a move or a restore elsewhere.
 */
const MAJORS: NewerMajor[] = [17, 18];
const servers = new Map<NewerMajor, Cluster>();

beforeAll(async () => {
  const started = await Promise.allSettled(MAJORS.map((m) => startNewerServer(m)));
  for (const [i, s] of started.entries())
    if (s.status === 'fulfilled') servers.set(MAJORS[i]!, s.value);
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) throw failed.reason;
});
afterAll(async () => {
  await Promise.all([...servers.values()].map((s) => s.stop()));
});

/** The admin URL of `server` with another database. */
function urlFor(server: Cluster, database: string): string {
  const url = new URL(server.url);
  url.pathname = `/${encodeURIComponent(database)}`;
  return url.toString();
}

/** Fingerprints read at one snapshot, as a verification reads them: hashed as `expected` was. */
async function fingerprint(url: string, expected: Fingerprints): Promise<Fingerprints> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('begin isolation level repeatable read, read only');
    return await computeFingerprints(client, { contentMethod: expected.contentMethod });
  } finally {
    await client.end();
  }
}

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

describe.each(MAJORS)('PostgreSQL %i from the npm server build', (major) => {
  it('runs that major, with the contrib extensions the suite uses', async () => {
    const url = servers.get(major)!.url;
    const [version] = await query<{ v: string }>(
      url,
      `select current_setting('server_version_num') as v`,
    );
    expect(Math.floor(Number(version!.v) / 10000)).toBe(major);
    const available = await query<{ name: string }>(
      url,
      `select name from pg_available_extensions
        where name in ('amcheck', 'citext', 'cube', 'earthdistance', 'btree_gist', 'pgcrypto')
        order by name`,
    );
    expect(available.map((e) => e.name)).toEqual([
      'amcheck',
      'btree_gist',
      'citext',
      'cube',
      'earthdistance',
      'pgcrypto',
    ]);
    // Loadable, not only listed: their libraries are in the build.
    await query(url, 'create extension amcheck; create extension citext; drop extension citext');
  });
});

describe("a backup of the suite's server restored into newer majors", () => {
  let source: TestDatabase;
  let ws: Awaited<ReturnType<typeof workspace>>;
  let manifest: Manifest;
  let dumpDir: string;
  beforeAll(async () => {
    source = await richDatabase('xver');
    ws = await workspace();
    const backup = await runJson(['backup', '--database-url', source.url], { cwd: ws.dir });
    expect(backup.code, backup.stderr).toBe(0);
    const [dir] = await backupDirs(path.join(ws.dir, '.lifeboat/backups'));
    manifest = JSON.parse(await readFile(path.join(dir!, 'manifest.json'), 'utf8')) as Manifest;
    dumpDir = path.join(dir!, 'dump');
  });
  afterAll(async () => {
    await source?.drop();
    await ws?.cleanup();
  });

  /** The backup restored, with the source's own pg_restore, into a new database on `major`. */
  async function restoreInto(major: NewerMajor, database: string): Promise<string> {
    const server = servers.get(major)!;
    await query(server.url, `create database ${pg.escapeIdentifier(database)}`);
    const pgRestore = await findTool(
      'pg_restore',
      manifest.fingerprints.schemaAcrossVersions!.serverMajor,
    );
    const url = urlFor(server, database);
    const restore = await runPgTool(
      pgRestore.path,
      ['--exit-on-error', '--no-owner', '--no-privileges', `--dbname=${database}`, dumpDir],
      resolveTarget(url),
    );
    expect(restore.errorLines).toEqual([]);
    expect(restore.ok).toBe(true);
    return url;
  }

  it.each(MAJORS)(
    'fingerprints equal to the source on %i, though its schema prints differently',
    async (major) => {
      const url = await restoreInto(major, 'restored');
      const found = await fingerprint(url, manifest.fingerprints);
      expect(found.schemaAcrossVersions?.serverMajor).toBe(major);
      // Rows hashed through each type's own hash function on 15 hash the same on the newer major.
      expect(manifest.fingerprints.contentMethod).toBe('typed');
      // The newer server describes the same schema in other words (see schema-portable.ts).
      expect(found.schemaHash).not.toBe(manifest.fingerprints.schemaHash);
      expect(compareFingerprints(manifest.fingerprints, found)).toEqual([]);
      // Every table and large object of the fixture came across (partitions, RLS, unlogged, quoted names).
      expect(found.tables.length).toBe(manifest.fingerprints.tables.length);
      expect(found.largeObjects.count).toBe(3);
    },
  );

  it.each(MAJORS)(
    'still shows a schema difference made on %i, and only while it lasts',
    async (major) => {
      const url = await restoreInto(major, 'changed');
      const kinds = async () =>
        compareFingerprints(
          manifest.fingerprints,
          await fingerprint(url, manifest.fingerprints),
        ).map((d) => d.kind);
      // Each change lies where the newer major prints differently: a column's NOT NULL, a view
      // over one table, an extension. Undone, the copy proves equal again.
      const changes: [string, string][] = [
        [
          'alter table public.legacy alter column kept set not null',
          'alter table public.legacy alter column kept drop not null',
        ],
        [
          `drop materialized view sales.not_yet_refreshed;
         create materialized view sales.not_yet_refreshed as
           select id, amount from sales.orders where amount > 0 with no data`,
          `drop materialized view sales.not_yet_refreshed;
         create materialized view sales.not_yet_refreshed as
           select id, amount from sales.orders with no data`,
        ],
        ['alter extension citext set schema sales', 'alter extension citext set schema public'],
      ];
      for (const [change, undo] of changes) {
        await query(url, change);
        expect(await kinds(), change).toEqual(['schema']);
        await query(url, undo);
        expect(await kinds(), undo).toEqual([]);
      }
    },
  );
});

describe('doctor against a newer server than its pg_dump', () => {
  it('says pg_dump must not be older than the server, and what to install', async () => {
    const ws = await workspace();
    try {
      // The suite's own client tools (15 on Debian), older than the 17 server.
      const pgDump = await findTool('pg_dump', undefined);
      expect(pgDump.major).toBeLessThan(17);
      const r = await runCli(['doctor', '--database-url', servers.get(17)!.url], {
        cwd: ws.dir,
        env: { LIFEBOAT_PG_BINDIR: path.dirname(pgDump.path) },
      });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stdout).toContain('ok    server: ');
      expect(r.stdout).toContain('PostgreSQL 17.');
      for (const tool of ['pg_dump', 'pg_restore'])
        expect(r.stdout).toMatch(
          new RegExp(
            `FAIL  ${tool}: ${tool} ${pgDump.version} \\(.+\\) is older than the server \\(PostgreSQL 17\\), and ${tool} must never be older than the server it works with\\. Install the PostgreSQL 17 client tools \\(Debian/Ubuntu: apt-get install postgresql-client-17`,
          ),
        );
    } finally {
      await ws.cleanup();
    }
  });
});

describe('preflight of a backup against a PostgreSQL 17 server', () => {
  const role = `lb_pf_${Date.now().toString(16)}_owner`;
  let source: TestDatabase;
  let ws: Awaited<ReturnType<typeof workspace>>;
  afterAll(async () => {
    await source?.drop();
    await query(adminUrl(), `drop role if exists ${pg.escapeIdentifier(role)}`);
    await ws?.cleanup();
  });

  it('names the missing role, the extension the newer server lacks, and another encoding', async () => {
    await query(adminUrl(), `create role ${pg.escapeIdentifier(role)} nologin`);
    source = await createTestDatabase('preflight');
    // adminpack ships with 15 and is gone from 17: a real extension without a successor.
    await source.query(
      `create extension citext; create extension adminpack;
       create table items (id int primary key, name citext);
       alter table items owner to ${pg.escapeIdentifier(role)}`,
    );
    ws = await workspace();
    const backup = await runCli(['backup', '--no-verify', '--database-url', source.url], {
      cwd: ws.dir,
    });
    expect(backup.code, backup.stderr).toBe(0);
    const [dir] = await backupDirs(path.join(ws.dir, '.lifeboat/backups'));
    const manifest = JSON.parse(
      await readFile(path.join(dir!, 'manifest.json'), 'utf8'),
    ) as Manifest;
    const from = {
      serverVersion: manifest.target.serverVersion,
      serverMajor: manifest.target.serverMajor,
      needs: manifest.needs!,
    };

    const server = servers.get(17)!;
    const check = async (database: string) => {
      const client = new pg.Client({ connectionString: urlFor(server, database) });
      await client.connect();
      try {
        return preflightProblems(from, await readDestinationFacts(client, from.needs));
      } finally {
        await client.end();
      }
    };
    await query(
      server.url,
      `create database latin1 encoding 'LATIN1' locale 'C' template template0`,
    );
    const latin1 = await check('latin1');
    expect(latin1.filter((p) => p.kind !== 'locale').map((p) => `${p.kind} ${p.name}`)).toEqual([
      `role ${role}`,
      'extension adminpack',
      'encoding encoding',
    ]);
    expect(latin1[1]!.detail).toMatch(
      /^extension adminpack \(\d+\.\d+ on the source\) is not installed on the destination server$/,
    );
    expect(latin1[2]!.detail).toBe('the source database is UTF8, the destination LATIN1');

    // With the role created, a database like the source's lacks only adminpack.
    await query(server.url, `create role ${pg.escapeIdentifier(role)} nologin`);
    expect((await check('postgres')).map((p) => `${p.kind} ${p.name}`)).toEqual([
      'extension adminpack',
    ]);
  });
});
