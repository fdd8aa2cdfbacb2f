import { describe, expect, it } from 'vitest';
import type { CatalogEntry } from '../../src/repository/catalog.js';
import type { TargetIdentity } from '../../src/identity.js';
import type { Manifest, VerificationRecord } from '../../src/repository/manifest.js';
import { planPrune, type PrunePolicy, type UnfinishedRun } from '../../src/prune/policy.js';
import { planReportPrune } from '../../src/prune/reports.js';
import type { StoredCopy } from '../../src/repository/copies.js';

const target = { systemIdentifier: '42', database: 'app' } as TargetIdentity;

function entry(
  id: string,
  createdAt: string,
  verified: boolean | undefined,
  opts: { database?: string; in?: string[] } = {},
): CatalogEntry {
  const database = opts.database ?? 'app';
  const manifest = {
    id,
    createdAt,
    target: { systemIdentifier: '42', database, described: `db/${database}` },
  } as unknown as Manifest;
  const verifications =
    verified === undefined
      ? []
      : [{ at: createdAt, ok: verified } as unknown as VerificationRecord];
  return {
    id,
    manifest,
    claimed: manifest,
    manifestProblems: [],
    copies: (opts.in ?? ['local']).map((destination) => ({ destination, id }) as StoredCopy),
    verifications,
    rehearsals: [],
    drills: [],
  };
}

function policy(keep: number, more: Partial<PrunePolicy> = {}): PrunePolicy {
  return { target, destinations: [{ name: 'local', keep }], unfinishedRuns: [], ...more };
}

const actions = (decisions: ReturnType<typeof planPrune>): Record<string, string> =>
  Object.fromEntries(decisions.map((d) => [`${d.id}@${d.destination}`, d.action]));

describe('planPrune', () => {
  it('keeps the newest N verified backups and removes older ones', () => {
    const entries = [
      entry('b1', '2026-11-01T00:00:00Z', true),
      entry('b2', '2026-11-02T00:00:00Z', true),
      entry('b3', '2026-11-03T00:00:00Z', true),
    ];
    expect(actions(planPrune(entries, policy(2)))).toEqual({
      'b1@local': 'remove',
      'b2@local': 'keep',
      'b3@local': 'keep',
    });
  });

  it('never removes the newest verified backup, even with keep 0', () => {
    const entries = [
      entry('b1', '2026-11-01T00:00:00Z', true),
      entry('b2', '2026-11-02T00:00:00Z', false),
    ];
    const decisions = planPrune(entries, policy(0));
    expect(actions(decisions)).toEqual({ 'b1@local': 'keep', 'b2@local': 'keep' });
    expect(decisions.find((d) => d.id === 'b1')?.reason).toBe('newest verified');
  });

  it('removes failed or unverified backups older than the newest verified, keeps newer ones', () => {
    const entries = [
      entry('b1', '2026-11-01T00:00:00Z', false),
      entry('b2', '2026-11-02T00:00:00Z', undefined),
      entry('b3', '2026-11-03T00:00:00Z', true),
      entry('b4', '2026-11-04T00:00:00Z', undefined),
    ];
    expect(actions(planPrune(entries, policy(5)))).toEqual({
      'b1@local': 'remove',
      'b2@local': 'remove',
      'b3@local': 'keep',
      'b4@local': 'keep',
    });
  });

  it('removes nothing of a database that has no verified backup', () => {
    const entries = [
      entry('b1', '2026-11-01T00:00:00Z', false),
      entry('b2', '2026-11-02T00:00:00Z', undefined),
    ];
    expect(actions(planPrune(entries, policy(1)))).toEqual({
      'b1@local': 'keep',
      'b2@local': 'keep',
    });
  });

  it("never touches another database's backups, nor one whose manifest is unreadable", () => {
    const broken: CatalogEntry = {
      id: 'b0',
      manifest: undefined,
      claimed: undefined,
      manifestProblems: ['x'],
      copies: [{ destination: 'local', id: 'b0' } as StoredCopy],
      verifications: [],
      rehearsals: [],
      drills: [],
    };
    const entries = [
      broken,
      entry('a1', '2026-11-01T00:00:00Z', true),
      entry('a2', '2026-11-02T00:00:00Z', true),
      entry('o1', '2026-10-01T00:00:00Z', true, { database: 'other' }),
      entry('o2', '2026-11-01T00:00:00Z', true, { database: 'other' }),
    ];
    const decisions = planPrune(entries, policy(1));
    expect(actions(decisions)).toEqual({
      'b0@local': 'keep',
      'a1@local': 'remove',
      'a2@local': 'keep',
      'o1@local': 'keep',
      'o2@local': 'keep',
    });
    expect(decisions.find((d) => d.id === 'o1')?.reason).toMatch(/a backup of db\/other/);
  });

  it('applies each destination its own retention', () => {
    const both = { in: ['local', 'offsite'] };
    const entries = [
      entry('b1', '2026-11-01T00:00:00Z', true, both),
      entry('b2', '2026-11-02T00:00:00Z', true, both),
      entry('b3', '2026-11-03T00:00:00Z', true, both),
      entry('b4', '2026-11-04T00:00:00Z', true, { in: ['local'] }),
    ];
    const decisions = planPrune(
      entries,
      policy(1, {
        destinations: [
          { name: 'local', keep: 1 },
          { name: 'offsite', keep: 2 },
        ],
      }),
    );
    expect(actions(decisions)).toEqual({
      'b1@local': 'remove',
      'b1@offsite': 'remove',
      'b2@local': 'remove',
      'b2@offsite': 'keep',
      'b3@local': 'remove',
      'b3@offsite': 'keep',
      'b4@local': 'keep',
    });
  });

  it('keeps what an unfinished run depends on: its own backup and the last verified one before it', () => {
    const entries = [
      entry('b1', '2026-11-01T00:00:00Z', true),
      entry('b2', '2026-11-02T00:00:00Z', true),
      entry('b3', '2026-11-03T00:00:00Z', true),
      entry('b4', '2026-11-04T00:00:00Z', true),
      entry('b5', '2026-11-05T00:00:00Z', true),
    ];
    const run: UnfinishedRun = {
      id: 'r1',
      status: 'needs-operator',
      startedAt: '2026-11-03T12:00:00Z',
      backupId: 'b1',
    };
    const decisions = planPrune(entries, policy(1, { unfinishedRuns: [run] }));
    expect(actions(decisions)).toEqual({
      'b1@local': 'keep',
      'b2@local': 'remove',
      'b3@local': 'keep',
      'b4@local': 'remove',
      'b5@local': 'keep',
    });
    const reason = (id: string): string | undefined => decisions.find((d) => d.id === id)?.reason;
    expect(reason('b1')).toBe('the backup of unfinished run r1 (needs-operator)');
    expect(reason('b3')).toBe('the last verified backup before unfinished run r1 (needs-operator)');
  });
});

describe('planReportPrune', () => {
  const now = new Date('2026-06-01T00:00:00Z');
  const day = 24 * 3600_000;
  const report = (base: string, at: string, backupId?: string) => ({ base, at, backupId });

  it('removes the reports of backups no longer listed, whatever their age, and keeps those of listed ones', () => {
    const reports = [
      report('a', '2020-01-01T00:00:00Z', 'kept'),
      report('b', '2026-05-31T00:00:00Z', 'gone'),
    ];
    expect(planReportPrune(reports, new Set(['kept']), 30 * day, now)).toEqual([reports[1]]);
  });

  it('removes a report about no backup only once older than the retention', () => {
    const reports = [report('old', '2026-04-01T00:00:00Z'), report('new', '2026-05-20T00:00:00Z')];
    expect(planReportPrune(reports, new Set(), 30 * day, now)).toEqual([reports[0]]);
  });
});
