import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { smallDatabase } from './support/backups.js';
import { startPaused, workspace } from './support/cli.js';

const runbook = `name: interruptible
steps:
  - id: add-note
    sql: { up: "ALTER TABLE items ADD COLUMN note text", down: "ALTER TABLE items DROP COLUMN note" }
  - id: add-tag
    sql: { up: "ALTER TABLE items ADD COLUMN tag text", down: "ALTER TABLE items DROP COLUMN tag" }
`;

describe('Ctrl-C during a run', () => {
  it('stops at the next safe point, rolls back as a failure would, and says so; a second one explains', async () => {
    const db = await smallDatabase('interrupt');
    const ws = await workspace();
    try {
      await writeFile(path.join(ws.dir, 'rb.yaml'), runbook);
      const run = await startPaused(
        ['run', 'rb.yaml', '--database-url', db.url],
        'step:add-note:before',
        {
          cwd: ws.dir,
        },
      );
      await run.reached();
      run.child.kill('SIGINT');
      await new Promise((r) => setTimeout(r, 200));
      run.child.kill('SIGINT');
      await new Promise((r) => setTimeout(r, 200));
      await run.resume();
      const r = await run.done;
      expect(r.code, r.stderr).toBe(5);
      expect(r.stderr).toMatch(/interrupt: stopping at the next safe point/);
      expect(r.stderr).toMatch(/interrupt: lifeboat is finishing the current step or its rollback/);
      expect(r.stderr).toMatch(
        /The run was interrupted before step add-tag\. The run was rolled back/,
      );
      const cols = await db.query(
        `select count(*)::int as n from information_schema.columns where table_name = 'items' and column_name in ('note', 'tag')`,
      );
      expect(cols.rows[0]).toEqual({ n: 0 });
    } finally {
      await db.drop();
      await ws.cleanup();
    }
  });
});
