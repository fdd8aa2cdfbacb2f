import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Fingerprints } from '../src/fingerprint.js';
import { fingerprintDatabase } from '../src/fingerprint-session.js';
import { JOURNAL_SCHEMA } from '../src/run/journal.js';
import { resolveTarget } from '../src/target.js';
import { runJson, workspace } from './support/cli.js';
import { createTestDatabase, type TestDatabase } from './support/db.js';

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
  const cli = (...args: string[]) => runJson([...args, '--database-url', db.url], { cwd: ws.dir });
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
  const cli = (...args: string[]) => runJson([...args, '--database-url', db.url], { cwd: ws.dir });
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
