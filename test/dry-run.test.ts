import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupDirs, smallDatabase } from './support/backups.js';
import { runCli, runJson, workspace } from './support/cli.js';
import type { TestDatabase } from './support/db.js';

const runbook = `name: notes
steps:
  - id: add-note
    sql: { up: "ALTER TABLE items ADD COLUMN note text", down: "ALTER TABLE items DROP COLUMN note" }
  - id: items-exist
    check: { query: "SELECT count(*) > 0 FROM items" }
`;

describe('--dry-run says what would happen and changes nothing; destructive commands ask or need --yes', () => {
  let db: TestDatabase;
  let ws: Awaited<ReturnType<typeof workspace>>;
  const cli = (args: string[]) => runCli([...args, '--database-url', db.url], { cwd: ws.dir });
  const json = (args: string[]) => runJson([...args, '--database-url', db.url], { cwd: ws.dir });
  const backups = (): Promise<string[]> => backupDirs(path.join(ws.dir, '.lifeboat/backups'));
  const columns = async (): Promise<string[]> =>
    (
      await db.query(
        `select column_name from information_schema.columns where table_name = 'items' order by 1`,
      )
    ).rows.map((r: { column_name: string }) => r.column_name);
  const count = async (sql: string, params: unknown[] = []): Promise<number> =>
    (await db.query(sql, params)).rows.length;
  const journal = (): Promise<number> =>
    count(`select 1 from pg_namespace where nspname = 'lifeboat_journal'`);

  beforeAll(async () => {
    db = await smallDatabase('dry_run', 30);
    ws = await workspace();
    await writeFile(path.join(ws.dir, 'rb.yaml'), runbook);
  });
  afterAll(async () => {
    await db.drop();
    await ws.cleanup();
  });

  it('run --dry-run: the lock, the backup that would guard it, the steps in order; nothing written', async () => {
    const none = await cli(['run', 'rb.yaml', '--dry-run']);
    expect(none.code, none.stderr).toBe(0);
    expect(none.stdout).toMatch(/1\. lock +free/);
    expect(none.stdout).toMatch(
      /2\. backup +would take and verify a new backup: No fresh, verified backup/,
    );
    expect(none.stdout).toMatch(/1 +add-note +sql +pending[\s\S]*2 +items-exist +check +pending/);
    expect(none.stdout).toMatch(/^Nothing was changed \(dry run\)\.$/m);
    expect(await columns()).toEqual(['id', 'name', 'qty']);
    expect(await journal()).toBe(0);
    expect(await backups()).toEqual([]);

    const existing = await cli(['run', 'rb.yaml', '--backup', 'existing', '--dry-run']);
    expect(existing.code).toBe(3);
    expect(existing.stdout).toMatch(/backup +REFUSED \(exit 3\)/);

    const backup = await json(['backup']);
    const id = (backup.doc.backup as { id: string }).id;
    const guarded = await json(['run', 'rb.yaml', '--dry-run']);
    expect(guarded.code).toBe(0);
    expect(guarded.doc.dryRun).toMatchObject({ backup: { action: 'reuse', id }, wouldExit: 0 });
    expect(await columns()).toEqual(['id', 'name', 'qty']);
    expect(await journal()).toBe(0);
  });

  it('rollback --dry-run lists what would be undone; without a terminal, rollback needs --yes', async () => {
    expect((await cli(['run', 'rb.yaml'])).code).toBe(0);
    expect(await columns()).toEqual(['id', 'name', 'note', 'qty']);

    const dry = await cli(['rollback', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(
      /^ {2}skip {2}items-exist: a check changes nothing\n {2}undo {2}add-note: its SQL down/m,
    );
    expect(await columns()).toEqual(['id', 'name', 'note', 'qty']);

    const unasked = await cli(['rollback']);
    expect(unasked.code).toBe(2);
    expect(unasked.stderr).toMatch(
      /^error: Roll back run \S+ of notes on .*: undo add-note\? No terminal to ask on: confirm with --yes, or see what rollback would do with --dry-run\.$/m,
    );
    expect(await columns()).toEqual(['id', 'name', 'note', 'qty']);

    const yes = await cli(['rollback', '--yes']);
    expect(yes.code, yes.stderr).toBe(0);
    expect(await columns()).toEqual(['id', 'name', 'qty']);
  });

  it('restore --dry-run and --swap, and prune, change nothing without --yes', async () => {
    const [dir] = await backups();
    const id = path.basename(dir!);
    const databases = (): Promise<number> =>
      count(`select 1 from pg_database where datname like $1`, [`${db.name}%`]);
    const before = await databases();
    const dry = await cli(['restore', id, '--swap', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(
      /3\. swap names in one transaction: .* the target is kept as \S+__replaced_\d+/,
    );
    expect(await databases()).toBe(before);
    const swap = await cli(['restore', id, '--swap']);
    expect(swap.code).toBe(2);
    expect(swap.stderr).toMatch(/No terminal to ask on: confirm with --yes/);
    expect(await databases()).toBe(before);

    expect((await cli(['backup'])).code).toBe(0);
    const two = await backups();
    const prune = await cli(['backups', 'prune', '--keep', '1']);
    expect(prune.code).toBe(2);
    expect(prune.stderr).toMatch(/^error: Remove 1 copy: \S+ in local\? No terminal to ask on/m);
    expect(await backups()).toEqual(two);
    expect((await cli(['backups', 'prune', '--keep', '1', '--yes'])).code).toBe(0);
    expect(await backups()).toHaveLength(1);
  });
});
