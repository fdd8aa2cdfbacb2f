import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { backupDirs, smallDatabase } from './support/backups.js';
import { runCli, runJson, workspace } from './support/cli.js';

describe('a damaged newest manifest', () => {
  it('is reported by gate (text and --json) and makes backups show exit 4; never used', async () => {
    const db = await smallDatabase('damaged_manifest', 20);
    const ws = await workspace();
    try {
      const cli = (args: string[]) => runCli([...args, '--database-url', db.url], { cwd: ws.dir });
      expect((await cli(['backup'])).code).toBe(0);
      expect((await cli(['backup'])).code).toBe(0);
      const [older, newest] = (await backupDirs(path.join(ws.dir, '.lifeboat/backups'))).sort();
      const olderId = path.basename(older!);
      const newestId = path.basename(newest!);
      // Tampered: the manifest no longer matches its recorded hash.
      const file = path.join(newest!, 'manifest.json');
      await writeFile(file, (await readFile(file, 'utf8')).replace('"rows": 20', '"rows": 21'));

      // The gate passes on the older backup, which is fresh, verified and intact...
      const gate = await runJson(['gate', '--database-url', db.url], { cwd: ws.dir });
      expect(gate.code, gate.stderr).toBe(0);
      const verdict = gate.doc.gate as { backup: { id: string }; warnings: string[] };
      expect(verdict.backup.id).toBe(olderId);
      // ...and says why it did not use the newest one.
      expect(verdict.warnings).toEqual([
        expect.stringMatching(
          new RegExp(`^backup ${newestId} is damaged and was not considered: local: manifest`),
        ),
      ]);
      const text = await cli(['gate']);
      expect(text.code).toBe(0);
      expect(text.stderr).toMatch(new RegExp(`^warning: backup ${newestId} is damaged`, 'm'));

      const show = await runJson(['backups', 'show', newestId], { cwd: ws.dir });
      expect(show.code).toBe(4);
      const error = show.doc.error as { kind: string; message: string };
      expect(error.kind).toBe('verification-failed');
      expect(error.message).toMatch(/is damaged: its manifest cannot be trusted/);
      expect((show.doc.result as { backup: { problems: string[] } }).backup.problems).toEqual([
        expect.stringMatching(/^local: manifest/),
      ]);
      const showText = await runCli(['backups', 'show', newestId], { cwd: ws.dir });
      expect(showText.code).toBe(4);
      expect(showText.stdout).toMatch(/: DAMAGED, never used/);
      const list = await runCli(['backups', 'list'], { cwd: ws.dir });
      expect(list.stdout).toMatch(
        new RegExp(`^${newestId} .*DAMAGED.*never used: local: manifest`, 'm'),
      );
    } finally {
      await db.drop();
      await ws.cleanup();
    }
  });
});
