import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, quoteLiteral } from '../src/db.js';
import type { Fingerprints } from '../src/fingerprint.js';
import { fingerprintDatabase } from '../src/fingerprint-session.js';
import type { ContentMethod } from '../src/row-hash.js';
import { JOURNAL_SCHEMA } from '../src/run/journal.js';
import { resolveTarget } from '../src/target.js';
import { runJson, workspace } from './support/cli.js';
import { createTestDatabase, type TestDatabase } from './support/db.js';

/** lifeboat with its JSON document, against `db`, in the workspace `ws`. */
function lifeboat(
  db: TestDatabase,
  ws: { dir: string },
  args: string[],
): ReturnType<typeof runJson> {
  return runJson([...args, '--database-url', db.url], { cwd: ws.dir });
}

const runbook = `name: widgets
steps:
  - id: create-widgets
    sql:
      up: CREATE TABLE widgets (id int primary key, name text)
      down: DROP TABLE widgets
  - id: fill-widgets
    sql:
      up: INSERT INTO widgets SELECT g, 'w' || g FROM generate_series(1, 100) g
      down: DELETE FROM widgets
      verify: SELECT count(*) = 100 FROM widgets
`;

describe('run, status, plan and rollback', () => {
  let db: TestDatabase;
  let ws: Awaited<ReturnType<typeof workspace>>;
  let file: string;
  beforeAll(async () => {
    db = await createTestDatabase('run_basics');
    ws = await workspace();
    file = path.join(ws.dir, 'widgets.yaml');
    await writeFile(file, runbook);
  });
  afterAll(async () => {
    await db.drop();
    await ws.cleanup();
  });
  const cli = (...args: string[]) => lifeboat(db, ws, args);
  /** The one value a query returns. */
  const value = async (sql: string): Promise<unknown> =>
    Object.values(((await db.query(sql)).rows[0] ?? {}) as Record<string, unknown>)[0];

  it('plans both steps as pending and undoable, and changes nothing', async () => {
    const r = await cli('plan', file);
    expect(r.code, r.stderr).toBe(0);
    const plan = r.doc.plan as {
      steps: { id: string; state: string; undo: string }[];
      undoable: boolean;
    };
    expect(plan.steps.map((s) => [s.id, s.state, s.undo])).toEqual([
      ['create-widgets', 'pending', 'down'],
      ['fill-widgets', 'pending', 'down'],
    ]);
    expect(plan.undoable).toBe(true);
    expect(await value(`select to_regnamespace('lifeboat_journal') as j`)).toBeNull();
  });

  it('runs behind a verified backup; unqualified tables land in public even for a role named lifeboat', async () => {
    const r = await cli('run', file);
    expect(r.code, r.stderr).toBe(0);
    const run = r.doc.run as {
      status: string;
      backupId: string;
      steps: { id: string; outcome: string }[];
    };
    expect(run.status).toBe('succeeded');
    expect(run.backupId).toMatch(/^\d{8}T\d{9}Z-/);
    expect(run.steps.map((s) => s.outcome)).toEqual(['applied', 'applied']);
    expect(await value(`select to_regclass('public.widgets') is not null as ok`)).toBe(true);
    expect(await value(`select count(*)::int as n from widgets`)).toBe(100);
  });

  it('a second run applies nothing twice', async () => {
    const r = await cli('run', file);
    expect(r.code, r.stderr).toBe(0);
    expect((r.doc.run as { steps: { outcome: string }[] }).steps.map((s) => s.outcome)).toEqual([
      'already-applied',
      'already-applied',
    ]);
    expect(await value(`select count(*)::int as n from widgets`)).toBe(100);
  });

  it('status names the run and its steps', async () => {
    const r = await cli('status');
    expect(r.code).toBe(0);
    const status = r.doc.status as {
      lock: unknown;
      lastRun: { status: string };
      steps: { id: string; state: string }[];
    };
    expect(status.lock).toBeNull();
    expect(status.lastRun.status).toBe('succeeded');
    expect(status.steps).toEqual([
      expect.objectContaining({ id: 'create-widgets', state: 'applied' }),
      expect.objectContaining({ id: 'fill-widgets', state: 'applied' }),
    ]);
  });

  it('rollback undoes the finished run newest first and proves the pre-run state', async () => {
    const r = await cli('rollback', '--yes');
    expect(r.code, r.stderr).toBe(0);
    const report = r.doc.rollback as {
      status: string;
      rollback: { outcomes: { id: string; outcome: string }[]; proof: { equal: boolean } };
    };
    expect(report.rollback.outcomes.map((o) => `${o.id}:${o.outcome}`)).toEqual([
      'fill-widgets:undone',
      'create-widgets:undone',
    ]);
    expect(report.rollback.proof.equal).toBe(true);
    expect(await value(`select to_regclass('public.widgets') as t`)).toBeNull();
    const again = await cli('rollback', '--yes');
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/There is no run to roll back/);
  });
});

describe('the rollback proof hashes rows as the pre-run fingerprints were hashed', () => {
  let db: TestDatabase;
  let ws: Awaited<ReturnType<typeof workspace>>;
  beforeAll(async () => {
    db = await createTestDatabase('run_proof_method');
    ws = await workspace();
    await db.query(`create table prices (id int4 primary key, amount int4, label text);
      insert into prices select g, g * 10, 'p' || g from generate_series(1, 500) g`);
    await writeFile(
      path.join(ws.dir, 'raise.yaml'),
      `name: raise
steps:
  - id: raise
    sql:
      up: UPDATE prices SET amount = amount + 1
      down: UPDATE prices SET amount = amount - 1
`,
    );
  });
  afterAll(async () => {
    await db.drop();
    await ws.cleanup();
  });
  const cli = (...args: string[]) => lifeboat(db, ws, args);
  const saved = async (): Promise<Fingerprints> => {
    const res = await db.query(`select pre_fingerprints as f from ${JOURNAL_SCHEMA}.runs`);
    return (res.rows[0] as { f: Fingerprints }).f;
  };

  it('takes the fastest method before the first step, and proves a run whose fingerprints an earlier version hashed as text', async () => {
    // Hashed as text, as every lifeboat before named methods hashed a run's pre-run state.
    const asText = await fingerprintDatabase(resolveTarget(db.url), {
      excludeSchemas: [JOURNAL_SCHEMA],
    });
    const r = await cli('run', 'raise.yaml');
    expect(r.code, r.stderr).toBe(0);
    const version = await db.query(`select current_setting('server_version_num')::int as v`);
    const newer = (version.rows[0] as { v: number }).v >= 140000;
    expect((await saved()).contentMethod).toBe(newer ? 'typed' : undefined);

    await db.query(`update ${JOURNAL_SCHEMA}.runs set pre_fingerprints = $1`, [
      JSON.stringify(asText),
    ]);
    const back = await cli('rollback', '--yes');
    expect(back.code, back.stderr).toBe(0);
    const proof = (back.doc.rollback as { rollback: { proof: { equal: boolean } } }).rollback.proof;
    expect(proof.equal).toBe(true);
    const sum = await db.query(`select sum(amount)::int as s from prices`);
    expect((sum.rows[0] as { s: number }).s).toBe(1_252_500);
  });
});

describe("a run's own session keeps the database's settings through the reads lifeboat makes on it", () => {
  let db: TestDatabase;
  let ws: Awaited<ReturnType<typeof workspace>>;
  // Each differs from what the fingerprint pins while it reads (search_path '', UTC, ISO...).
  const own = {
    search_path: 'app, public',
    TimeZone: 'Asia/Kolkata',
    DateStyle: 'SQL, DMY',
    IntervalStyle: 'sql_standard',
    extra_float_digits: '0',
    bytea_output: 'escape',
    row_security: 'on',
  };
  beforeAll(async () => {
    db = await createTestDatabase('run_own_session');
    ws = await workspace();
    await db.query(`create schema app; create table app.items (id int primary key, at timestamptz);
      insert into app.items select g, '2020-01-01' from generate_series(1, 50) g`);
    for (const [name, value] of Object.entries(own)) {
      // A list setting takes its items unquoted; one literal would be one schema named "app, public".
      const sql = name === 'search_path' ? value : quoteLiteral(value);
      await db.query(`alter database ${db.name} set ${name} = ${sql}`);
    }
    const seen = Object.keys(own)
      .map((name) => `current_setting('${name}') as ${name.toLowerCase()}`)
      .join(', ');
    await writeFile(
      path.join(ws.dir, 'seen.yaml'),
      `name: seen
steps:
  - id: record-settings
    sql:
      up: >-
        CREATE TABLE seen AS SELECT ${seen},
        current_setting('transaction_isolation') AS isolation,
        current_setting('transaction_read_only') AS read_only
      down: DROP TABLE seen
`,
    );
  });
  afterAll(async () => {
    await db.drop();
    await ws.cleanup();
  });

  it("reads the schema and the pre-run fingerprints on the run's session, and its steps still see the database's settings", async () => {
    const cli = (...args: string[]) => lifeboat(db, ws, args);
    const backup = await cli('backup');
    expect(backup.code, backup.stderr).toBe(0);
    // existing: the guard compares the live schema with the backup's, then the proof is taken.
    const r = await cli('run', 'seen.yaml', '--backup', 'existing');
    expect(r.code, r.stderr).toBe(0);
    // Unqualified, so it landed in the first schema of the database's search_path.
    const res = await db.query(`select * from app.seen`);
    expect(res.rows).toEqual([
      {
        ...Object.fromEntries(Object.entries(own).map(([k, v]) => [k.toLowerCase(), v])),
        isolation: 'read committed',
        read_only: 'off',
      },
    ]);
    const back = await cli('rollback', '--yes');
    expect(back.code, back.stderr).toBe(0);
    const proof = (back.doc.rollback as { rollback: { proof: { equal: boolean } } }).rollback.proof;
    expect(proof.equal).toBe(true);
  });

  it('a fingerprint that fails on a borrowed session leaves it open, out of its transaction, settings intact', async () => {
    const session = await connect(resolveTarget(db.url));
    try {
      await expect(
        fingerprintDatabase(resolveTarget(db.url), {
          session,
          contentMethod: 'sketched' as ContentMethod,
        }),
      ).rejects.toThrow(/"sketched" method, which this version of lifeboat does not know/);
      await new Promise((resolve) => setTimeout(resolve, 20));
      const after = await session.query(
        `select current_setting('search_path') as search_path,
                current_setting('TimeZone') as tz,
                now() = statement_timestamp() as fresh_transaction`,
      );
      expect(after.rows).toEqual([
        { search_path: 'app, public', tz: 'Asia/Kolkata', fresh_transaction: true },
      ]);
    } finally {
      await session.end();
    }
  });
});
