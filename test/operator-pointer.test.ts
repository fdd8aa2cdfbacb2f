import { access, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { smallDatabase } from './support/backups.js';
import { runJson, workspace } from './support/cli.js';

const root = fileURLToPath(new URL('..', import.meta.url));

describe('an outcome a person must act on points to its operator runbook', () => {
  it('exit 6 names runbooks/operator/run-exit-6.md, in text and in --json', async () => {
    const db = await smallDatabase('pointer', 10);
    const ws = await workspace();
    try {
      await writeFile(
        path.join(ws.dir, 'rb.yaml'),
        `name: stuck
steps:
  - id: drop-qty
    sql: { up: "ALTER TABLE items DROP COLUMN qty" }
  - id: boom
    sql: { up: "SELECT 1/0" }
`,
      );
      const r = await runJson(['run', 'rb.yaml', '--database-url', db.url], { cwd: ws.dir });
      expect(r.code, r.stderr).toBe(6);
      const runbook = path.join(root, 'runbooks/operator/run-exit-6.md');
      expect(r.stderr).toContain(`What to do, step by step: ${runbook}`);
      expect((r.doc.error as { runbook: string }).runbook).toBe(runbook);
      await access(runbook);
    } finally {
      await db.drop();
      await ws.cleanup();
    }
  });
});
