import { describe, expect, it } from 'vitest';
import type { CatalogEntry } from '../../src/repository/catalog.js';
import {
  assessBackup,
  changesSince,
  drillReasons,
  type CandidateFacts,
} from '../../src/freshness.js';
import type { DrillRecord, VerificationRecord } from '../../src/repository/manifest.js';

const now = new Date('2026-11-21T12:00:00Z');
const policy = { maxAgeMs: 24 * 3600_000, copies: 2 };

function verification(ok: boolean, error?: string): VerificationRecord {
  return {
    backupId: 'b1',
    manifestSha256: 'f'.repeat(64),
    at: '2026-11-21T11:00:00Z',
    restoredFrom: 'local',
    ok,
    durationMs: 1,
    restoreMs: 1,
    scratch: { server: 's', database: 'd' },
    compared: { tables: 1, sequences: 0, largeObjects: 0, schema: true },
    differences: [],
    ...(error ? { error } : {}),
  };
}

function facts(overrides: Partial<CandidateFacts> = {}): CandidateFacts {
  return {
    id: 'b1',
    createdAt: '2026-11-21T10:00:00Z',
    copies: [
      { destination: 'local', intact: true, problems: [] },
      { destination: 'nas', intact: true, problems: [] },
    ],
    lastVerification: verification(true),
    ...overrides,
  };
}

describe('assessBackup', () => {
  it('accepts a young, verified backup with enough intact copies', () => {
    expect(assessBackup(facts(), policy, now)).toEqual([]);
  });

  it('names the age and the maximum when too old', () => {
    const reasons = assessBackup(facts({ createdAt: '2026-11-20T10:00:00Z' }), policy, now);
    expect(reasons).toEqual(['backup b1 is 26h00m old; the maximum age is 24h00m']);
  });

  it('refuses a backup never verified, and one whose last verification failed', () => {
    expect(assessBackup(facts({ lastVerification: undefined }), policy, now)[0]).toMatch(
      /never been verified/,
    );
    expect(
      assessBackup(
        facts({ lastVerification: verification(false, 'pg_restore failed') }),
        policy,
        now,
      )[0],
    ).toMatch(/latest verification .* failed: pg_restore failed/);
  });

  it('counts only intact copies and says what is wrong with the others', () => {
    const reasons = assessBackup(
      facts({
        copies: [
          { destination: 'local', intact: true, problems: [] },
          { destination: 'nas', intact: false, problems: ['dump/toc.dat: missing'] },
        ],
      }),
      policy,
      now,
    );
    expect(reasons).toEqual([
      'backup b1 is held intact in 1 destination(s); 2 required',
      'backup b1, copy in nas: dump/toc.dat: missing',
    ]);
  });

  it('reports every reason at once', () => {
    const reasons = assessBackup(
      facts({ createdAt: '2026-11-01T00:00:00Z', lastVerification: undefined, copies: [] }),
      policy,
      now,
    );
    expect(reasons).toHaveLength(3);
  });
});

describe('changesSince', () => {
  it('counts row writes and commits since the snapshot', () => {
    const at = { rowWrites: '100', commits: '10', statsReset: null };
    expect(changesSince(at, { rowWrites: '150', commits: '14', statsReset: null })).toMatchObject({
      known: true,
      rowWrites: 50,
      commits: 4,
    });
  });

  it('says it does not know when statistics were reset', () => {
    const at = { rowWrites: '100', commits: '10', statsReset: null };
    const r = changesSince(at, {
      rowWrites: '3',
      commits: '1',
      statsReset: '2026-11-21T00:00:00.000Z',
    });
    expect(r.known).toBe(false);
    expect(r.note).toMatch(/reset/);
  });
});

describe('dumpProgress', () => {
  it('says bytes written, and with a previous backup how much is left', async () => {
    const { dumpProgress } = await import('../../src/backup.js');
    expect(dumpProgress(1024, 1000, undefined)).toBe('1.0 KiB written');
    expect(dumpProgress(50 * 1048576, 10_000, { bytes: 100 * 1048576, durationMs: 20_000 })).toBe(
      '50.0 MiB of ~100.0 MiB (last backup), about 10s left',
    );
  });
});

describe('drillReasons (gate --drilled)', () => {
  const day = 24 * 3600_000;
  function drill(at: string, passed: boolean): DrillRecord {
    return {
      backupId: 'b1',
      manifestSha256: 'f'.repeat(64),
      at,
      passed,
      from: { destination: 'offsite', remote: true },
      onto: { server: 's', database: 'd' },
      source: 'db on s',
      backupAgeMs: 1,
      durationMs: 1,
      phases: [],
      differences: [],
      ...(passed ? {} : { error: 'pg_restore exited with 1' }),
    };
  }
  const entries = (...drills: DrillRecord[]): CatalogEntry[] =>
    [{ drills }] as unknown as CatalogEntry[];

  it('asks for a drill when there has been none', () => {
    expect(drillReasons(entries(), 30 * day, now)).toEqual([
      'no disaster-recovery drill has been run in the last 30d (run `lifeboat drill`)',
    ]);
  });

  it('passes on any passing drill within the window, even when a later one failed', () => {
    expect(
      drillReasons(
        entries(drill('2026-11-10T00:00:00Z', true), drill('2026-11-20T00:00:00Z', false)),
        30 * day,
        now,
      ),
    ).toEqual([]);
  });

  it('says the last drill failed, and why', () => {
    expect(drillReasons(entries(drill('2026-11-20T00:00:00Z', false)), 30 * day, now)).toEqual([
      'no passing disaster-recovery drill in the last 30d; the last, at 2026-11-20T00:00:00Z from offsite, failed: pg_restore exited with 1 (run `lifeboat drill`)',
    ]);
  });

  it('says a passing drill is too old, and how old', () => {
    const [reason] = drillReasons(entries(drill('2026-10-01T12:00:00Z', true)), 30 * day, now);
    expect(reason).toMatch(
      /the last, at 2026-10-01T12:00:00Z from offsite, passed, but is 51d old/,
    );
  });
});
