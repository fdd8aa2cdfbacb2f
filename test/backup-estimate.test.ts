import { describe, expect, it } from 'vitest';
import { estimateNextBackup } from '../src/backup-estimate.js';
import type { CatalogEntry } from '../src/repository/catalog.js';
import type { Manifest, VerificationRecord } from '../src/repository/manifest.js';
import { smallDatabase } from './support/backups.js';
import { runJson, workspace } from './support/cli.js';

function entry(sourceBytes: number | undefined, verifications: Partial<VerificationRecord>[]) {
  const manifest = {
    id: '20260101T000000Z-shop-abcdef',
    createdAt: '2026-01-01T00:00:00.000Z',
    completedAt: '2026-01-01T00:01:00.000Z',
    dump: { format: 'directory', jobs: 2, durationMs: 50_000, bytes: 1, sourceBytes },
  } as unknown as Manifest;
  return { manifest, verifications } as unknown as CatalogEntry;
}

describe('the time of the next verified backup', () => {
  it('is the last dump and verification, scaled by how the data grew', () => {
    const e = entry(1_000_000_000, [
      { ok: true, durationMs: 120_000 },
      { ok: false, durationMs: 5_000 },
    ]);
    const next = estimateNextBackup(e, 1_500_000_000)!;
    expect(next.ms).toBe((60_000 + 120_000) * 1.5);
    expect(next.detail).toMatch(
      /^about 4m30s \(the last backup, 20260101T000000Z-shop-abcdef, took 1m00s to dump and 2m00s to verify, with 953.7 MiB of table data; now 1.4 GiB\)$/,
    );
  });

  it('counts the dump alone when the last backup was never verified, and does not scale without a size', () => {
    const next = estimateNextBackup(entry(undefined, []), 5_000_000)!;
    expect(next.ms).toBe(60_000);
    expect(next.detail).toMatch(/was not verified, so verifying is not counted\)$/);
  });

  it('has nothing to go by without an earlier backup', () => {
    expect(estimateNextBackup(undefined, 1)).toBeUndefined();
  });

  it('is what doctor says after a backup', async () => {
    const db = await smallDatabase('estimate');
    const ws = await workspace();
    try {
      const before = await runJson(['doctor', '--database-url', db.url], { cwd: ws.dir });
      const line = (doc: Record<string, unknown>) =>
        (doc.doctor as { checks: { name: string; ok: boolean; detail: string }[] }).checks.find(
          (c) => c.name === 'next backup',
        );
      expect(line(before.doc)).toMatchObject({
        ok: true,
        detail: 'no earlier backup of this target to estimate from',
      });
      const backup = await runJson(['backup', '--database-url', db.url], { cwd: ws.dir });
      expect(backup.code, backup.stderr).toBe(0);
      const id = (backup.doc.backup as { id: string }).id;
      const after = await runJson(['doctor', '--database-url', db.url], { cwd: ws.dir });
      expect(after.code, after.stderr).toBe(0);
      expect(line(after.doc)?.detail).toMatch(
        new RegExp(
          `^about .+ \\(the last backup, ${id}, took .+ to dump and .+ to verify, with .+ of table data; now .+\\)$`,
        ),
      );
    } finally {
      await db.drop();
      await ws.cleanup();
    }
  });
});
