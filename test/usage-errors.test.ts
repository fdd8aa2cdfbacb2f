import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupDirs, smallDatabase } from './support/backups.js';
import { runCli, runJson, workspace, type CliResult } from './support/cli.js';
import type { TestDatabase } from './support/db.js';

const runbook = `name: typo
steps:
  - id: add-note
    sql: { up: "ALTER TABLE items ADD COLUMN note text", down: "ALTER TABLE items DROP COLUMN note" }
`;

/** A usage error: exit 2, one line naming the flag, and the command never ran. */
function expectUsageError(r: CliResult, flag: string): void {
  expect(r.code, r.stdout + r.stderr).toBe(2);
  expect(r.stderr).toMatch(new RegExp(`^error: Unknown option ${flag}`, 'm'));
  // Nothing started: no task list, no progress, no result.
  expect(r.stderr).not.toMatch(/Dump|Restore|Step|Undo|Check checksums/);
  expect(r.stdout).toBe('');
}

describe('a typo on the command line stops before anything runs (exit 2)', () => {
  let db: TestDatabase;
  let ws: Awaited<ReturnType<typeof workspace>>;
  let first: string;
  const cli = (args: string[]): Promise<CliResult> =>
    runCli([...args, '--database-url', db.url], { cwd: ws.dir });
  const backups = (): Promise<string[]> => backupDirs(path.join(ws.dir, '.lifeboat/backups'));
  const columns = async (): Promise<string[]> =>
    (
      await db.query(
        `select column_name from information_schema.columns where table_name = 'items' order by 1`,
      )
    ).rows.map((r: { column_name: string }) => r.column_name);
  const databases = async (): Promise<string[]> =>
    (
      await db.query(`select datname from pg_database where datname like $1`, [`${db.name}%`])
    ).rows.map((r: { datname: string }) => r.datname);
  const verifications = async (id: string): Promise<string[]> =>
    readdir(path.join(ws.dir, '.lifeboat/backups', id, 'verifications')).catch(() => []);

  beforeAll(async () => {
    db = await smallDatabase('usage_typo', 50);
    ws = await workspace();
    await writeFile(path.join(ws.dir, 'rb.yaml'), runbook);
    const b1 = await runJson(['backup', '--database-url', db.url], { cwd: ws.dir });
    expect(b1.code, b1.stderr).toBe(0);
    first = (b1.doc.backup as { id: string }).id;
  });
  afterAll(async () => {
    await db.drop();
    await ws.cleanup();
  });

  it('backup, verify and the gate', async () => {
    const before = await backups();
    expectUsageError(await cli(['backup', '--no-verfy']), '--no-verfy');
    expect(await backups()).toEqual(before);

    const records = await verifications(first);
    expectUsageError(await cli(['verify', first, '--form', 'local']), '--form');
    expect(await verifications(first)).toEqual(records);

    // A typo must never weaken the gate: the backup is seconds old, not older than 1ms.
    const gate = await cli(['gate', '--max-agee', '1ms']);
    expectUsageError(gate, '--max-agee');
    expect(gate.stderr).toMatch(/did you mean --max-age\?/);
  });

  it('run, rollback and rehearse', async () => {
    expectUsageError(await cli(['run', 'rb.yaml', '--dryrun']), '--dryrun');
    expect(await columns()).toEqual(['id', 'name', 'qty']);
    expect(
      (
        await db.query(
          `select count(*)::int as n from pg_namespace where nspname = 'lifeboat_journal'`,
        )
      ).rows[0],
    ).toEqual({ n: 0 });

    expectUsageError(await cli(['rehearse', 'rb.yaml', '--bakup', 'existing']), '--bakup');

    const run = await cli(['run', 'rb.yaml', '--backup', 'existing']);
    expect(run.code, run.stderr).toBe(0);
    expect(await columns()).toEqual(['id', 'name', 'note', 'qty']);
    expectUsageError(await cli(['rollback', '--dryrun', '--yes']), '--dryrun');
    expect(await columns()).toEqual(['id', 'name', 'note', 'qty']);
  });

  it('restore, prune, unfreeze, init and demo', async () => {
    const names = await databases();
    expectUsageError(await cli(['restore', first, '--swapp', '--yes']), '--swapp');
    expect(await databases()).toEqual(names);

    const second = await cli(['backup']);
    expect(second.code, second.stderr).toBe(0);
    const before = await backups();
    expect(before).toHaveLength(2);
    // --keep 1 would remove the older backup; the typo must keep both.
    expectUsageError(await cli(['backups', 'prune', '--keep', '1', '--dryrun']), '--dryrun');
    expect(await backups()).toEqual(before);

    expectUsageError(await cli(['unfreeze', '--forse']), '--forse');

    const empty = await workspace();
    try {
      const init = await runCli(['init', '--forse'], { cwd: empty.dir });
      expectUsageError(init, '--forse');
      expect(await readdir(empty.dir)).toEqual([]);
    } finally {
      await empty.cleanup();
    }

    // A temporary directory of its own: other files run demos meanwhile.
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'lb-usage-'));
    try {
      const demos = async (): Promise<string[]> =>
        (await readdir(tmp)).filter((n) => n.startsWith('lifeboat-demo-'));
      expectUsageError(
        await runCli(['demo', '--freez'], { cwd: ws.dir, env: { TMPDIR: tmp } }),
        '--freez',
      );
      expect(await demos()).toEqual([]);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });

  it('a value missing, an unknown subcommand, a sign, and --json', async () => {
    const missing = await cli(['gate', '--max-age']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^error: --max-age needs a value/m);

    const sub = await cli(['backups', 'lsit']);
    expect(sub.code).toBe(2);
    expect(sub.stderr).toMatch(/Given: "lsit", Choices: "list", "show", "prune"/);

    const negative = await cli(['gate', '--max-age', '-1h']);
    expect(negative.code).toBe(2);
    expect(negative.stderr.trim().split('\n')).toEqual([
      'error: -1h is not a value lifeboat takes: durations and counts are written without a sign (for example --max-age 6h).',
    ]);

    const json = await runJson(['gate', '--max-agee', '1h'], { cwd: ws.dir });
    expect(json.code).toBe(2);
    expect(json.doc).toMatchObject({ ok: false, exitCode: 2, error: { kind: 'usage' } });
  });
});
