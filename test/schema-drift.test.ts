import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { compareSchema } from '../src/schema-drift.js';
import { schemaObjects } from '../src/schema-objects.js';
import { smallDatabase } from './support/backups.js';
import { runCli, runJson, workspace } from './support/cli.js';

const fill = `name: fill-late
steps:
  - id: fill
    sql: { up: "UPDATE items SET late = 'x'", down: "UPDATE items SET late = NULL" }
`;
const failing = `name: fails
steps:
  - id: fill
    sql: { up: "UPDATE items SET late = 'y'", down: "UPDATE items SET late = NULL" }
  - id: boom
    sql: { up: "SELECT 1/0" }
`;

describe('a fresh backup of a schema that has changed since', () => {
  it('is refused by --backup existing (exit 3, naming the change) and replaced by auto', async () => {
    const db = await smallDatabase('schema_drift', 20);
    const ws = await workspace();
    try {
      await writeFile(path.join(ws.dir, 'fill.yaml'), fill);
      await writeFile(path.join(ws.dir, 'fails.yaml'), failing);
      const json = (args: string[]) =>
        runJson([...args, '--database-url', db.url], { cwd: ws.dir });
      const first = await json(['backup']);
      expect(first.code, first.stderr).toBe(0);
      const before = (first.doc.backup as { id: string }).id;

      await db.query('ALTER TABLE items ADD COLUMN late text');
      const existing = await runCli(
        ['run', 'fill.yaml', '--backup', 'existing', '--database-url', db.url],
        { cwd: ws.dir },
      );
      expect(existing.code, existing.stderr).toBe(3);
      expect(existing.stderr).toMatch(
        new RegExp(
          `^error: The schema of ${db.name} changed since backup ${before} was taken`,
          'm',
        ),
      );
      expect(existing.stderr).toMatch(/^ {2}- relation public\.items changed$/m);
      expect(
        (
          await db.query(
            `select count(*)::int as n from pg_namespace where nspname = 'lifeboat_journal'`,
          )
        ).rows[0],
      ).toEqual({ n: 0 });

      // auto: the stale backup is not used; a new one is taken, and the rehearsal meets the real schema.
      const rehearsal = await runJson(['rehearse', 'fill.yaml', '--database-url', db.url], {
        cwd: ws.dir,
      });
      expect(rehearsal.code, rehearsal.stderr).toBe(0);
      const guardedBy = (rehearsal.doc.rehearsal as { backupId: string }).backupId;
      expect(guardedBy).not.toBe(before);
      expect(rehearsal.stderr).toMatch(/changed since backup .* Taking a new backup\./);

      // lifeboat's own journal, created by a run and left by its rollback, is no schema change.
      const failed = await json(['run', 'fails.yaml', '--backup', 'existing']);
      expect(failed.code, failed.stderr).toBe(5);
      expect((failed.doc.result as { backupId: string }).backupId).toBe(guardedBy);
      const again = await json(['run', 'fill.yaml', '--backup', 'existing']);
      expect(again.code, again.stderr).toBe(0);
      expect((again.doc.run as { backupId: string }).backupId).toBe(guardedBy);
    } finally {
      await db.drop();
      await ws.cleanup();
    }
  });

  it('names what was added, changed and removed (pure)', () => {
    const old = [
      'relation public.items kind=r columns=(id integer)',
      'index CREATE INDEX items_a ON public.items USING btree (id)',
      'relation public.gone kind=r columns=(id integer)',
    ];
    const now = [
      'relation public.items kind=r columns=(id integer, late text)',
      'index CREATE INDEX items_a ON public.items USING btree (id)',
      'relation public.fresh kind=r columns=(id integer)',
      'schema lifeboat_journal',
      'relation lifeboat_journal.runs kind=r columns=(id text)',
    ];
    const backup = { schemaHash: 'x', schemaObjects: schemaObjects(old) };
    const drift = compareSchema(backup as never, now);
    expect(drift).toEqual({
      changed: true,
      changes: [
        'relation public.items changed',
        'relation public.fresh added',
        'relation public.gone removed',
      ],
    });
  });
});
