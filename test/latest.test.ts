import { describe, expect, it } from 'vitest';
import { smallDatabase } from './support/backups.js';
import { runJson, workspace } from './support/cli.js';

describe('"latest" names the newest backup of the target, wherever an id is asked for', () => {
  it('in verify, backups show and restore alike', async () => {
    const db = await smallDatabase('latest', 20);
    const ws = await workspace();
    try {
      const json = (args: string[]) =>
        runJson([...args, '--database-url', db.url], { cwd: ws.dir });
      const ids: string[] = [];
      for (let i = 0; i < 2; i++) {
        const b = await json(['backup']);
        expect(b.code, b.stderr).toBe(0);
        ids.push((b.doc.backup as { id: string }).id);
      }
      const newest = ids[1]!;

      const verify = await json(['verify', 'latest']);
      expect(verify.code, verify.stderr).toBe(0);
      expect((verify.doc.verification as { backupId: string }).backupId).toBe(newest);

      const show = await json(['backups', 'show', 'latest']);
      expect(show.code, show.stderr).toBe(0);
      expect((show.doc.backup as { id: string }).id).toBe(newest);

      const restore = await json(['restore', 'latest', '--as', `${db.name}_latest`]);
      expect(restore.code, restore.stderr).toBe(0);
      expect(restore.doc.restore).toMatchObject({
        backupId: newest,
        restoredAs: `${db.name}_latest`,
      });
      await db.query(`drop database "${db.name}_latest"`);

      // Another database has no backup: "latest" names nothing there, in one sentence.
      const other = await smallDatabase('latest_none', 1);
      try {
        const none = await runJson(['backups', 'show', 'latest', '--database-url', other.url], {
          cwd: ws.dir,
        });
        expect(none.code).toBe(2);
        expect(none.stderr).toMatch(/^error: There is no backup of .*, so "latest" names nothing/m);
      } finally {
        await other.drop();
      }
    } finally {
      await db.drop();
      await ws.cleanup();
    }
  });
});
