import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findTool } from '../src/pg-programs/find.js';
import { runPgTool } from '../src/pg-programs/exec.js';
import { restoreArchive } from '../src/pg-programs/pg-restore.js';
import { resolveTarget } from '../src/target.js';
import { createTestDatabase, type TestDatabase } from './support/db.js';

/**
 * A row that only a session with synchronous_commit off may write: its CHECK
 * asks the session. The restore's COPY checks it, so the restore says which
 * settings its sessions had.
 */
describe('a restore into a disposable database', () => {
  let source: TestDatabase;
  let dir: string;
  let pgRestore: string;
  beforeAll(async () => {
    source = await createTestDatabase('disposable_src');
    await source.query(`
      create function fast_session() returns boolean language sql stable
        as $$ select current_setting('synchronous_commit') = 'off'
                 and pg_size_bytes(current_setting('maintenance_work_mem')) >= 256 * 1024 * 1024 $$;
      create table t (id int check (id < 0 or public.fast_session()));`);
    await source.query(`set synchronous_commit = off; set maintenance_work_mem = '256MB';
      insert into t values (1)`);
    const version = await source.query(`select current_setting('server_version_num') as v`);
    const major = Math.floor(Number((version.rows[0] as { v: string }).v) / 10000);
    dir = await mkdtemp(path.join(os.tmpdir(), 'lifeboat-disposable-'));
    const dump = await runPgTool(
      (await findTool('pg_dump', major)).path,
      ['--format=directory', `--file=${dir}/dump`],
      resolveTarget(source.url),
    );
    expect(dump.errorLines).toEqual([]);
    pgRestore = (await findTool('pg_restore', major)).path;
  });
  afterAll(async () => {
    await source?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const restore = async (disposable: boolean) => {
    const into = await createTestDatabase('disposable_into');
    try {
      await restoreArchive(pgRestore, `${dir}/dump`, resolveTarget(into.url), {
        jobs: 2,
        tables: 1,
        rows: 1,
        keepOwners: false,
        disposable,
      });
      return (await into.query('select count(*)::int as n from t')).rows[0] as { n: number };
    } finally {
      await into.drop();
    }
  };

  it('runs its sessions with synchronous_commit off and more memory for index builds', async () => {
    expect(await restore(true)).toEqual({ n: 1 });
  });

  it('which a restore to keep does not', async () => {
    await expect(restore(false)).rejects.toThrow(/check constraint/);
  });
});
