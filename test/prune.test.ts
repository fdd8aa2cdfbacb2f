import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { backupDirs, smallDatabase } from './support/backups.js';
import { runCli, runJson, workspace } from './support/cli.js';

describe('lifeboat backups prune', () => {
  it('keeps the newest N verified backups, removes older ones, and --dry-run removes nothing', async () => {
    const db = await smallDatabase('prune');
    const ws = await workspace({ retention: { keep: 2 } });
    try {
      for (let i = 0; i < 3; i++) {
        expect((await runCli(['backup', '--database-url', db.url], { cwd: ws.dir })).code).toBe(0);
      }
      // An unverified backup older than the newest verified one would go too; this one is newest, so it stays.
      expect(
        (await runCli(['backup', '--no-verify', '--database-url', db.url], { cwd: ws.dir })).code,
      ).toBe(0);
      const dest = path.join(ws.dir, '.lifeboat/backups');
      const ids = (await backupDirs(dest)).map((d) => path.basename(d)).sort();
      expect(ids).toHaveLength(4);

      const dry = await runJson(['backups', 'prune', '--dry-run'], { cwd: ws.dir });
      expect(dry.code).toBe(0);
      expect(await backupDirs(dest)).toHaveLength(4);
      const decisions = (dry.doc.prune as { decisions: { id: string; action: string }[] })
        .decisions;
      expect(decisions.filter((d) => d.action === 'remove').map((d) => d.id)).toEqual([ids[0]]);

      const real = await runCli(['backups', 'prune'], { cwd: ws.dir });
      expect(real.code).toBe(0);
      expect((await backupDirs(dest)).map((d) => path.basename(d)).sort()).toEqual(ids.slice(1));
      // keep 0 is read as "at least the newest verified one".
      await runCli(['backups', 'prune', '--keep', '0'], { cwd: ws.dir });
      expect((await backupDirs(dest)).map((d) => path.basename(d)).sort()).toEqual(ids.slice(2));
      expect((await runCli(['gate', '--database-url', db.url], { cwd: ws.dir })).code).toBe(0);
    } finally {
      await db.drop();
      await ws.cleanup();
    }
  });
});
