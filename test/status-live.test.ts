import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { smallDatabase } from './support/backups.js';
import { runCli, runJson, startPaused, workspace } from './support/cli.js';

const runbook = `name: live
steps:
  - id: add-note
    sql:
      up: ALTER TABLE items ADD COLUMN note text
      down: ALTER TABLE items DROP COLUMN note
      transaction: false
`;

describe('lifeboat status while a run is live', () => {
  it('calls the step running, names the holder, and gives no advice to resolve it', async () => {
    const db = await smallDatabase('status_live', 10);
    const ws = await workspace();
    try {
      await writeFile(path.join(ws.dir, 'rb.yaml'), runbook);
      const run = await startPaused(
        ['run', 'rb.yaml', '--database-url', db.url],
        'step:add-note:before-checkpoint',
        { cwd: ws.dir },
      );
      await run.reached();

      const live = await runJson(['status', '--database-url', db.url], { cwd: ws.dir });
      expect(live.code, live.stderr).toBe(0);
      const status = live.doc.status as {
        lock: { run?: { id: string } } | null;
        lastRun: { id: string };
        steps: { id: string; state: string }[];
      };
      expect(status.lock?.run?.id).toBe(status.lastRun.id);
      expect(status.steps).toEqual([expect.objectContaining({ id: 'add-note', state: 'running' })]);
      const text = await runCli(['status', '--database-url', db.url], { cwd: ws.dir });
      expect(text.stdout).toMatch(/add-note: running since \S+, by run run-\S+ of runbook live/);
      expect(text.stdout).not.toMatch(/in doubt|--resolve/);

      // Once its process is gone, the same step is in doubt, and the advice is given.
      await run.kill9();
      const after = await runCli(['status', '--database-url', db.url], { cwd: ws.dir });
      expect(after.stdout).toMatch(/add-note: in doubt \(up started\)/);
      expect(after.stdout).toMatch(/--resolve STEP=applied\|not-applied/);
    } finally {
      await db.drop();
      await ws.cleanup();
    }
  });
});
