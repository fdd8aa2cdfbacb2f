import { describe, expect, it } from 'vitest';
import type { CatalogEntry } from '../../src/catalog.js';
import type { Manifest, VerificationRecord } from '../../src/manifest.js';
import { planPrune } from '../../src/prune.js';

function entry(
  id: string,
  createdAt: string,
  verified: boolean | undefined,
  database = 'app',
): CatalogEntry {
  const manifest = {
    id,
    createdAt,
    target: { systemIdentifier: '42', database },
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
    copies: [],
    verifications,
    rehearsals: [],
  };
}

const actions = (decisions: ReturnType<typeof planPrune>): Record<string, string> =>
  Object.fromEntries(decisions.map((d) => [d.id, d.action]));

describe('planPrune', () => {
  it('keeps the newest N verified backups and removes older ones', () => {
    const entries = [
      entry('b1', '2026-11-01T00:00:00Z', true),
      entry('b2', '2026-11-02T00:00:00Z', true),
      entry('b3', '2026-11-03T00:00:00Z', true),
    ];
    expect(actions(planPrune(entries, 2))).toEqual({ b1: 'remove', b2: 'keep', b3: 'keep' });
  });

  it('never removes the newest verified backup, even with keep 0', () => {
    const entries = [
      entry('b1', '2026-11-01T00:00:00Z', true),
      entry('b2', '2026-11-02T00:00:00Z', false),
    ];
    const decisions = planPrune(entries, 0);
    expect(actions(decisions)).toEqual({ b1: 'keep', b2: 'keep' });
    expect(decisions.find((d) => d.id === 'b1')?.reason).toBe('newest verified');
  });

  it('removes failed or unverified backups older than the newest verified, keeps newer ones', () => {
    const entries = [
      entry('b1', '2026-11-01T00:00:00Z', false),
      entry('b2', '2026-11-02T00:00:00Z', undefined),
      entry('b3', '2026-11-03T00:00:00Z', true),
      entry('b4', '2026-11-04T00:00:00Z', undefined),
    ];
    expect(actions(planPrune(entries, 5))).toEqual({
      b1: 'remove',
      b2: 'remove',
      b3: 'keep',
      b4: 'keep',
    });
  });

  it('removes nothing of a database that has no verified backup', () => {
    const entries = [
      entry('b1', '2026-11-01T00:00:00Z', false),
      entry('b2', '2026-11-02T00:00:00Z', undefined),
    ];
    expect(actions(planPrune(entries, 1))).toEqual({ b1: 'keep', b2: 'keep' });
  });

  it('decides per database, and never touches a backup whose manifest is unreadable', () => {
    const broken: CatalogEntry = {
      id: 'b0',
      manifest: undefined,
      claimed: undefined,
      manifestProblems: ['x'],
      copies: [],
      verifications: [],
      rehearsals: [],
    };
    const entries = [
      broken,
      entry('a1', '2026-11-01T00:00:00Z', true, 'app'),
      entry('a2', '2026-11-02T00:00:00Z', true, 'app'),
      entry('o1', '2026-11-01T00:00:00Z', true, 'other'),
    ];
    expect(actions(planPrune(entries, 1))).toEqual({
      b0: 'keep',
      a1: 'remove',
      a2: 'keep',
      o1: 'keep',
    });
  });
});
