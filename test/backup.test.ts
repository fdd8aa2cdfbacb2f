import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../src/repository/manifest.js';
import { backupDirs, partialDirs, richDatabase, smallDatabase } from './support/backups.js';
import { runCli, runJson, startPaused, workspace } from './support/cli.js';
import type { TestDatabase } from './support/db.js';

describe('lifeboat backup of a rich schema', () => {
  let db: TestDatabase;
  let ws: Awaited<ReturnType<typeof workspace>>;
  beforeAll(async () => {
    db = await richDatabase('backup_rich');
    ws = await workspace();
  });
  afterAll(async () => {
    await db.drop();
    await ws.cleanup();
  });

  it('dumps, stores, restores into scratch and proves every fingerprint equal', async () => {
    const r = await runJson(['backup', '--database-url', db.url], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(0);
    const backup = r.doc.backup as { id: string; tables: number; copies: { ok: boolean }[] };
    const verification = r.doc.verification as {
      ok: boolean;
      differences: unknown[];
      compared: { tables: number; largeObjects: number };
    };
    expect(verification.ok).toBe(true);
    expect(verification.differences).toEqual([]);
    expect(verification.compared.tables).toBeGreaterThan(10);
    expect(verification.compared.largeObjects).toBeGreaterThan(0);
    expect(backup.copies).toEqual([expect.objectContaining({ ok: true })]);

    // The manifest names this target and holds a fingerprint for every table.
    const [dir] = await backupDirs(path.join(ws.dir, '.lifeboat/backups'));
    const manifest = JSON.parse(
      await readFile(path.join(dir!, 'manifest.json'), 'utf8'),
    ) as Manifest;
    expect(manifest.id).toBe(backup.id);
    expect(manifest.target.database).toBe(db.name);
    expect(manifest.fingerprints.tables.map((t) => `${t.schema}.${t.name}`)).toContain(
      'Weird Schema.Order Items',
    );
    expect(manifest.files.every((f) => /^[0-9a-f]{64}$/.test(f.sha256))).toBe(true);
    // The scratch database is gone.
    const left = await db.query(
      `select datname from pg_database where datname like 'lifeboat_verify_%'`,
    );
    expect(
      left.rows.filter((r: { datname: string }) => r.datname.includes(String(backup.id).slice(-6))),
    ).toEqual([]);
  });

  it('lists, shows and gates on that backup; stdout under --json is one document', async () => {
    const list = await runJson(['backups', 'list'], { cwd: ws.dir });
    expect(list.code).toBe(0);
    expect((list.doc.backups as unknown[]).length).toBe(1);
    const gate = await runJson(['gate', '--database-url', db.url], { cwd: ws.dir });
    expect(gate.code, gate.stderr).toBe(0);
    expect((gate.doc.gate as { ok: boolean }).ok).toBe(true);
  });
});

describe('lifeboat backup while others write', () => {
  let db: TestDatabase;
  let ws: Awaited<ReturnType<typeof workspace>>;
  beforeAll(async () => {
    db = await smallDatabase('backup_writes', 2000);
    ws = await workspace();
  });
  afterAll(async () => {
    await db.drop();
    await ws.cleanup();
  });

  it('still verifies: the dump and the fingerprints share one snapshot', async () => {
    const run = await startPaused(
      ['backup', '--database-url', db.url, '--json'],
      'backup:snapshot-held',
      {
        cwd: ws.dir,
      },
    );
    await run.reached();
    // Inserts (advancing the sequence), updates, deletes and DDL-free churn after the snapshot.
    await db.query(
      `insert into items (name, qty) select 'late ' || g, 1 from generate_series(1, 300) g`,
    );
    await db.query(`update items set qty = qty + 1 where id % 3 = 0`);
    await db.query(`delete from items where id % 10 = 0`);
    await run.resume();
    const r = await run.done;
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { verification: { ok: boolean } };
    expect(doc.verification.ok).toBe(true);

    // The backup holds the snapshot's 2000 rows, not the later ones; the gate sees the writes since.
    const manifest = JSON.parse(
      await readFile(
        path.join((await backupDirs(path.join(ws.dir, '.lifeboat/backups')))[0]!, 'manifest.json'),
        'utf8',
      ),
    ) as Manifest;
    expect(manifest.fingerprints.tables.find((t) => t.name === 'items')?.rows).toBe(2000);
    // PostgreSQL 14 and later: rows hashed through their types' own functions, and proved so.
    expect(manifest.fingerprints.contentMethod).toBe('typed');
    // Statistics reach pg_stat_database asynchronously; give them a moment.
    await new Promise((r) => setTimeout(r, 1200));
    const gate = await runJson(['gate', '--database-url', db.url], { cwd: ws.dir });
    const changes = (gate.doc.gate as { changesSinceBackup: { rowWrites: number } })
      .changesSinceBackup;
    expect(changes.rowWrites).toBeGreaterThanOrEqual(300);
  });
});

describe('lifeboat backup to several destinations', () => {
  let db: TestDatabase;
  let ws: Awaited<ReturnType<typeof workspace>>;
  beforeAll(async () => {
    db = await smallDatabase('backup_copies');
    ws = await workspace({
      destinations: [
        { name: 'near', path: 'near' },
        { name: 'far', path: 'far' },
      ],
      policy: { copies: 2 },
    });
  });
  afterAll(async () => {
    await db.drop();
    await ws.cleanup();
  });

  it('stores an identical, checked copy in each, and the gate counts intact copies', async () => {
    const r = await runJson(['backup', '--database-url', db.url], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(0);
    const [near] = await backupDirs(path.join(ws.dir, 'near'));
    const [far] = await backupDirs(path.join(ws.dir, 'far'));
    expect(path.basename(near!)).toBe(path.basename(far!));
    expect(await readFile(path.join(near!, 'SHA256SUMS'), 'utf8')).toBe(
      await readFile(path.join(far!, 'SHA256SUMS'), 'utf8'),
    );
    expect((await runCli(['gate', '--database-url', db.url], { cwd: ws.dir })).code).toBe(0);

    // One copy loses a file: two copies are required, one is intact.
    const { unlink } = await import('node:fs/promises');
    await unlink(path.join(far!, 'dump', 'toc.dat'));
    const gate = await runJson(['gate', '--database-url', db.url], { cwd: ws.dir });
    expect(gate.code).toBe(3);
    expect(gate.stderr).toMatch(/held intact in 1 destination\(s\); 2 required/);
    expect(gate.stderr).toMatch(/copy in far: dump\/toc\.dat: missing/);
    // One intact copy is enough when the policy asks for one.
    expect(
      (await runCli(['gate', '--database-url', db.url, '--copies', '1'], { cwd: ws.dir })).code,
    ).toBe(0);
  });
});

describe('a backup that misses a destination', () => {
  it('exits 2 naming the destination, and keeps and verifies the copy that succeeded', async () => {
    const db = await smallDatabase('backup_missed');
    const ws = await workspace({
      destinations: [
        { name: 'near', path: 'near' },
        // A second destination that cannot be written: a path below a plain file.
        { name: 'nas', path: 'not-a-dir/backups' },
      ],
      policy: { copies: 1 },
    });
    try {
      await writeFile(path.join(ws.dir, 'not-a-dir'), 'a file, not a directory');
      const r = await runJson(['backup', '--database-url', db.url], { cwd: ws.dir });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(
        /^error: Backup \S+ is missing from 1 of 2 destinations; the copies in near were kept and verified\.$/m,
      );
      expect(r.stderr).toMatch(/^ {2}- nas: .*not-a-dir\/backups/m);
      const result = r.doc.result as { backup: { copies: { destination: string; ok: boolean }[] } };
      expect(result.backup.copies).toEqual([
        expect.objectContaining({ destination: 'near', ok: true }),
        expect.objectContaining({ destination: 'nas', ok: false }),
      ]);
      expect(await backupDirs(path.join(ws.dir, 'near'))).toHaveLength(1);
      // What was kept is a real, verified backup: the policy (one copy) is met.
      expect((await runCli(['gate', '--database-url', db.url], { cwd: ws.dir })).code).toBe(0);
      // In text, the copy's failure is shown beside the result, then the error.
      const text = await runCli(['backup', '--database-url', db.url], { cwd: ws.dir });
      expect(text.code).toBe(2);
      expect(text.stdout).toMatch(/copy {5}nas: FAILED/);
    } finally {
      await db.drop();
      await ws.cleanup();
    }
  });
});

describe('a backup killed before it is published', () => {
  it('is never listed, and the next backup removes its partial files', async () => {
    const db = await smallDatabase('backup_kill');
    const ws = await workspace();
    try {
      const dest = path.join(ws.dir, '.lifeboat/backups');
      const run = await startPaused(['backup', '--database-url', db.url], 'backup:before-publish', {
        cwd: ws.dir,
      });
      await run.reached();
      const killed = await run.kill9();
      expect(killed.signal).toBe('SIGKILL');
      expect(await partialDirs(dest)).toHaveLength(1);
      expect(await backupDirs(dest)).toEqual([]);
      const list = await runJson(['backups', 'list'], { cwd: ws.dir });
      expect(list.doc.backups).toEqual([]);
      expect((await runCli(['gate', '--database-url', db.url], { cwd: ws.dir })).code).toBe(3);

      const again = await runCli(['backup', '--database-url', db.url], { cwd: ws.dir });
      expect(again.code, again.stderr).toBe(0);
      expect(await partialDirs(dest)).toEqual([]);
      expect(await backupDirs(dest)).toHaveLength(1);
    } finally {
      await db.drop();
      await ws.cleanup();
    }
  });
});

describe('a backup at a configured compression level', () => {
  it('dumps uncompressed files at level 0, records the level, verifies, and says where its time went', async () => {
    const db = await smallDatabase('backup_compress');
    const ws = await workspace({ compression: 0 });
    try {
      const r = await runJson(['backup', '--database-url', db.url], { cwd: ws.dir });
      expect(r.code, r.stderr).toBe(0);
      const verification = r.doc.verification as { ok: boolean; fingerprintMs?: number };
      expect(verification.ok).toBe(true);
      // The proof's own time is kept beside the restore's.
      expect(Number.isInteger(verification.fingerprintMs)).toBe(true);
      const phases = (r.doc.backup as { phases: Record<string, number> }).phases;
      expect(Object.keys(phases).sort()).toEqual(
        ['checksumMs', 'copiesMs', 'dumpMs', 'fingerprintMs', 'snapshotMs'].sort(),
      );
      expect(Object.values(phases).every((ms) => Number.isInteger(ms) && ms >= 0)).toBe(true);
      const [dir] = await backupDirs(path.join(ws.dir, '.lifeboat/backups'));
      const manifest = JSON.parse(
        await readFile(path.join(dir!, 'manifest.json'), 'utf8'),
      ) as Manifest;
      expect(manifest.dump.compression).toBe(0);
      const data = manifest.files.filter((f) => /^dump\/\d+\.dat/.test(f.path));
      expect(data.length).toBeGreaterThan(0);
      expect(data.filter((f) => f.path.endsWith('.gz'))).toEqual([]);
    } finally {
      await db.drop();
      await ws.cleanup();
    }
  });

  it('refuses a level pg_dump does not have', async () => {
    const ws = await workspace({ compression: 12 });
    try {
      const r = await runCli(['config', 'check'], { cwd: ws.dir });
      expect(r.code).toBe(2);
      expect(r.stderr + r.stdout).toMatch(/compression/);
    } finally {
      await ws.cleanup();
    }
  });
});
