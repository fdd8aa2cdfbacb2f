import { cp, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, runJson, startPaused, workspace } from './support/cli.js';
import { createTestDatabase } from './support/db.js';

describe('a knex migration run outside a transaction, killed before its checkpoint', () => {
  it("is decided by knex's table on the next run, knex's stale lock is freed, and nothing runs twice", async () => {
    const db = await createTestDatabase('knex_crash');
    const ws = await workspace();
    try {
      const dir = path.join(ws.dir, 'migrations');
      await mkdir(dir);
      await cp(new URL('./fixtures/run-knex-downs/', import.meta.url), dir, { recursive: true });
      // The second migration runs outside a transaction, as CONCURRENTLY index builds must.
      await writeFile(
        path.join(dir, '20240703000000_index_widgets.cjs'),
        `exports.config = { transaction: false };
exports.up = (knex) => knex.raw('CREATE INDEX CONCURRENTLY widgets_label_idx ON widgets (label)');
exports.down = (knex) => knex.raw('DROP INDEX CONCURRENTLY IF EXISTS widgets_label_idx');
`,
      );
      await writeFile(
        path.join(ws.dir, 'rb.yaml'),
        'name: knexy\nsteps:\n  - id: app\n    knex: { directory: migrations, loadExtensions: [.cjs] }\n',
      );
      const id = 'app/20240703000000_index_widgets.cjs';
      const run = await startPaused(
        ['run', 'rb.yaml', '--database-url', db.url],
        `step:${id}:before-checkpoint`,
        {
          cwd: ws.dir,
        },
      );
      await run.reached().catch(async (err: Error) => {
        throw new Error(`${err.message}\n${(await run.done).stderr}`);
      });
      await run.kill9();
      // A process killed inside knex leaves knex's own lock taken; lifeboat must not be stuck on it.
      await db.query('update knex_migrations_lock set is_locked = 1');

      const status = await runJson(['status', '--database-url', db.url], { cwd: ws.dir });
      const steps = (status.doc.status as { steps: { id: string; state: string }[] }).steps;
      expect(steps.find((s) => s.id === id)?.state).toBe('in doubt (up started)');

      const again = await runCli(['run', 'rb.yaml', '--database-url', db.url], { cwd: ws.dir });
      expect(again.code, again.stderr).toBe(0);
      const names = await db.query('select name from knex_migrations order by id');
      expect(names.rows.map((r: { name: string }) => r.name)).toEqual([
        '20240701000000_create_widgets.cjs',
        '20240702000000_add_widget_weight.cjs',
        '20240703000000_index_widgets.cjs',
      ]);
      expect((await db.query('select is_locked from knex_migrations_lock')).rows).toEqual([
        { is_locked: 0 },
      ]);
    } finally {
      await db.drop();
      await ws.cleanup();
    }
  });
});
