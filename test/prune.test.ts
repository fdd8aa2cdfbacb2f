import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { backupDirs, smallDatabase } from './support/backups.js';
import { runCli, runJson, startPaused, workspace } from './support/cli.js';
import { readFile, readdir, writeFile } from 'node:fs/promises';

describe('lifeboat backups prune', () => {
  it('takes the reports of the backups it removes, and reports about no backup once older than retention.reports', async () => {
    const db = await smallDatabase('prune_reports');
    const ws = await workspace({ retention: { keep: 1, reports: '30d' } });
    try {
      for (let i = 0; i < 2; i++) {
        expect((await runCli(['backup', '--database-url', db.url], { cwd: ws.dir })).code).toBe(0);
      }
      const dest = path.join(ws.dir, '.lifeboat/backups');
      const reports = path.join(dest, 'reports');
      const [older, newer] = (await backupDirs(dest)).map((d) => path.basename(d)).sort();
      const about = async (): Promise<Record<string, number>> => {
        const counts: Record<string, number> = {};
        for (const name of (await readdir(reports)).filter((n) => n.endsWith('.json'))) {
          const doc = JSON.parse(await readFile(path.join(reports, name), 'utf8')) as {
            backup?: { id?: string };
          };
          const key = doc.backup?.id ?? 'none';
          counts[key] = (counts[key] ?? 0) + 1;
        }
        return counts;
      };
      // A report about no backup: one from long ago goes, one from today stays.
      const old = { command: 'status', at: '2000-01-01T00:00:00.000Z', ok: true, exitCode: 0 };
      await writeFile(path.join(reports, '20000101T000000000Z-status.json'), JSON.stringify(old));
      await writeFile(path.join(reports, '20000101T000000000Z-status.md'), '# status\n');
      const today = { ...old, at: new Date().toISOString() };
      await writeFile(path.join(reports, '29990101T000000000Z-status.json'), JSON.stringify(today));
      expect(await about()).toEqual({ [older!]: 1, [newer!]: 1, none: 2 });

      const dry = await runJson(['backups', 'prune', '--dry-run', '--database-url', db.url], {
        cwd: ws.dir,
      });
      expect(dry.code, dry.stderr).toBe(0);
      expect((dry.doc.prune as { reports: string[] }).reports).toHaveLength(2);
      expect(await about()).toEqual({ [older!]: 1, [newer!]: 1, none: 2 });

      const real = await runCli(['backups', 'prune', '--yes', '--database-url', db.url], {
        cwd: ws.dir,
      });
      expect(real.code, real.stderr).toBe(0);
      expect(real.stdout).toMatch(
        /^2 reports removed: 20000101T000000000Z-status, \d{8}T\d{9}Z-backup$/m,
      );
      expect(await about()).toEqual({ [newer!]: 1, none: 1 });
      expect(await readdir(reports)).not.toContain('20000101T000000000Z-status.md');
    } finally {
      await db.drop();
      await ws.cleanup();
    }
  });

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

      const dry = await runJson(['backups', 'prune', '--dry-run', '--database-url', db.url], {
        cwd: ws.dir,
      });
      expect(dry.code).toBe(0);
      expect(await backupDirs(dest)).toHaveLength(4);
      const decisions = (dry.doc.prune as { decisions: { id: string; action: string }[] })
        .decisions;
      expect(decisions.filter((d) => d.action === 'remove').map((d) => d.id)).toEqual([ids[0]]);

      const real = await runCli(['backups', 'prune', '--yes', '--database-url', db.url], {
        cwd: ws.dir,
      });
      expect(real.code).toBe(0);
      expect((await backupDirs(dest)).map((d) => path.basename(d)).sort()).toEqual(ids.slice(1));
      // keep 0 is read as "at least the newest verified one".
      await runCli(['backups', 'prune', '--keep', '0', '--yes', '--database-url', db.url], {
        cwd: ws.dir,
      });
      expect((await backupDirs(dest)).map((d) => path.basename(d)).sort()).toEqual(ids.slice(2));
      expect((await runCli(['gate', '--database-url', db.url], { cwd: ws.dir })).code).toBe(0);
    } finally {
      await db.drop();
      await ws.cleanup();
    }
  });

  it('keeps the backup an unfinished run depends on until the run is finished', async () => {
    const db = await smallDatabase('prune_run');
    const ws = await workspace({ retention: { keep: 1 } });
    const dest = path.join(ws.dir, '.lifeboat/backups');
    const ids = async (): Promise<string[]> =>
      (await backupDirs(dest)).map((d) => path.basename(d)).sort();
    const backup = async (): Promise<void> => {
      expect((await runCli(['backup', '--database-url', db.url], { cwd: ws.dir })).code).toBe(0);
    };
    try {
      await backup();
      await writeFile(
        path.join(ws.dir, 'upgrade.yaml'),
        'name: prune_guard\nsteps:\n  - id: add\n    sql:\n      up: create table added (id int)\n      down: drop table added\n',
      );
      // The run takes its own backup, then dies before its step: it stays unfinished.
      const run = await startPaused(
        ['run', 'upgrade.yaml', '--backup', 'new', '--database-url', db.url],
        'step:add:before',
        { cwd: ws.dir },
      );
      await run.reached();
      await run.kill9();
      const [first, guarded] = await ids();
      await backup();
      await backup();
      const newest = (await ids()).at(-1);

      const pruned = await runJson(['backups', 'prune', '--yes', '--database-url', db.url], {
        cwd: ws.dir,
      });
      expect(pruned.code, pruned.stderr).toBe(0);
      const decisions = (pruned.doc.prune as { decisions: { id: string; reason: string }[] })
        .decisions;
      expect(decisions.find((d) => d.id === guarded)?.reason).toMatch(
        /^the backup of unfinished run run-.* \(running\)$/,
      );
      expect(await ids()).toEqual([guarded, newest]);
      expect(first).not.toBe(guarded);

      // Once the run is rolled back, nothing depends on that backup any more.
      const rollback = await runCli(['rollback', '--yes', '--database-url', db.url], {
        cwd: ws.dir,
      });
      expect(rollback.code, rollback.stderr).toBe(0);
      await runCli(['backups', 'prune', '--yes', '--database-url', db.url], { cwd: ws.dir });
      expect(await ids()).toEqual([newest]);
    } finally {
      await db.drop();
      await ws.cleanup();
    }
  });

  it("removes nothing when it cannot read the target's run journal", async () => {
    const db = await smallDatabase('prune_unreachable');
    const ws = await workspace({ retention: { keep: 1 } });
    try {
      for (let i = 0; i < 2; i++)
        expect((await runCli(['backup', '--database-url', db.url], { cwd: ws.dir })).code).toBe(0);
      const down = new URL(db.url);
      down.port = '1';
      const r = await runCli(['backups', 'prune', '--yes', '--database-url', down.toString()], {
        cwd: ws.dir,
      });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(
        /backups prune first reads the run journal of .*, so that it never removes a backup an unfinished run depends on, and it cannot/,
      );
      expect(await backupDirs(path.join(ws.dir, '.lifeboat/backups'))).toHaveLength(2);
    } finally {
      await db.drop();
      await ws.cleanup();
    }
  });
});
