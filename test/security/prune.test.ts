import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CatalogEntry } from '../../src/repository/catalog.js';
import type { TargetIdentity } from '../../src/identity.js';
import type { Manifest, VerificationRecord } from '../../src/repository/manifest.js';
import { planPrune } from '../../src/prune/policy.js';
import type { StoredCopy } from '../../src/repository/copies.js';
import { backupDirs, smallDatabase } from '../support/backups.js';
import { runCli, runJson, workspace } from '../support/cli.js';
import type { TestDatabase } from '../support/db.js';

/** Whatever `backups prune` is given, the newest verified backup stays. */
describe('backups prune given a number that is not one', () => {
  let db: TestDatabase;
  let ws: Awaited<ReturnType<typeof workspace>>;
  let root: string;
  beforeAll(async () => {
    db = await smallDatabase('sec_prune', 20);
    ws = await workspace();
    root = path.join(ws.dir, '.lifeboat/backups');
    for (let i = 0; i < 2; i++) {
      const r = await runCli(['backup', '--database-url', db.url], { cwd: ws.dir });
      expect(r.code, r.stderr).toBe(0);
    }
  });
  afterAll(async () => {
    await db.drop();
    await ws.cleanup();
  });

  for (const keep of ['abc', '-1', '1.5', 'Infinity']) {
    it(`--keep ${JSON.stringify(keep)} is bad input (exit 2) and removes nothing`, async () => {
      const r = await runJson(['backups', 'prune', `--keep=${keep}`, '--database-url', db.url], {
        cwd: ws.dir,
      });
      expect(r.code, r.stdout + r.stderr).toBe(2);
      expect(r.stderr).toMatch(/^error: --keep must be a whole number ≥ 0/m);
      expect(await backupDirs(root)).toHaveLength(2);
    });
  }

  it('--keep 1 removes the older one and keeps the newest verified', async () => {
    const r = await runJson(
      ['backups', 'prune', '--keep', '1', '--yes', '--database-url', db.url],
      {
        cwd: ws.dir,
      },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(await backupDirs(root)).toHaveLength(1);
  });

  it('history --limit is checked the same way', async () => {
    const r = await runCli(['history', '--limit', 'many', '--database-url', db.url], {
      cwd: ws.dir,
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: --limit must be a whole number ≥ 0/m);
  });
});

describe('planPrune, whatever keep it is handed', () => {
  const target = { systemIdentifier: '42', database: 'app' } as TargetIdentity;
  const entry = (id: string, createdAt: string, ok: boolean): CatalogEntry => {
    const manifest = {
      id,
      createdAt,
      target: { systemIdentifier: '42', database: 'app', described: 'db/app' },
    } as unknown as Manifest;
    return {
      id,
      manifest,
      claimed: manifest,
      manifestProblems: [],
      copies: [{ destination: 'local', id } as StoredCopy],
      verifications: [{ at: createdAt, ok } as unknown as VerificationRecord],
      rehearsals: [],
      drills: [],
    };
  };
  const entries = [
    entry('b1', '2026-11-01T00:00:00Z', true),
    entry('b2', '2026-11-02T00:00:00Z', true),
    entry('b3', '2026-11-03T00:00:00Z', false),
  ];
  for (const keep of [Number.NaN, 0, -5, 0.5, Number.NEGATIVE_INFINITY]) {
    it(`keeps the newest verified backup with keep ${keep}`, () => {
      const decisions = planPrune(entries, {
        target,
        destinations: [{ name: 'local', keep }],
        unfinishedRuns: [],
      });
      expect(decisions.find((d) => d.id === 'b2')).toMatchObject({
        action: 'keep',
        reason: 'newest verified',
      });
      expect(decisions.find((d) => d.id === 'b3')?.action).toBe('keep');
    });
  }
});
