import { describe, expect, it } from 'vitest';
import {
  afterFailure,
  openMoveOf,
  pendingPhases,
  rollbackVerdict,
  type MoveState,
} from '../../src/move/plan.js';
import type { MoveRecord } from '../../src/move/record.js';

function record(state: MoveState, done: MoveRecord['phases'][number]['phase'][] = []): MoveRecord {
  return {
    id: `move-${state}`,
    state,
    source: {
      described: 'ops@old:5432/shop',
      systemIdentifier: '7',
      database: 'shop',
      serverVersion: '15.8',
    },
    destination: {
      server: 'ops@new:5432',
      database: 'shop',
      connection: 'postgresql://ops@new:5432/shop',
    },
    cutover: null,
    createRoles: false,
    startedAt: '2026-11-29T08:00:00Z',
    phases: done.map((phase) => ({ phase, at: '2026-11-29T08:00:01Z', ms: 1 })),
    frozenSince: '2026-11-29T08:00:01Z',
  };
}

describe('the phases of a move', () => {
  it('resumes at the first phase without a checkpoint, in order', () => {
    expect(pendingPhases(record('moving'))).toEqual([
      'guard',
      'preflight',
      'freeze',
      'copy',
      'checks',
      'cutover',
    ]);
    expect(pendingPhases(record('moving', ['guard', 'preflight', 'freeze']))).toEqual([
      'copy',
      'checks',
      'cutover',
    ]);
    expect(
      pendingPhases(record('moved', ['guard', 'preflight', 'freeze', 'copy', 'checks', 'cutover'])),
    ).toEqual([]);
  });

  it('goes back by itself before the cutover, and waits for the operator after it', () => {
    expect(afterFailure('freeze')).toBe('roll-back');
    expect(afterFailure('copy')).toBe('roll-back');
    expect(afterFailure('checks')).toBe('roll-back');
    expect(afterFailure('cutover')).toBe('stop');
  });

  it('finds the one open move of a source: same server identity and database, not finished or rolled back', () => {
    const moves = [record('finished'), record('rolled-back'), record('moved')];
    expect(openMoveOf(moves, { systemIdentifier: '7', database: 'shop' })?.id).toBe('move-moved');
    expect(openMoveOf(moves, { systemIdentifier: '8', database: 'shop' })).toBeUndefined();
    expect(openMoveOf(moves, { systemIdentifier: '7', database: 'other' })).toBeUndefined();
    expect(
      openMoveOf([record('needs-operator')], { systemIdentifier: '7', database: 'shop' })?.state,
    ).toBe('needs-operator');
  });
});

describe('going back from a move', () => {
  it('goes back when the destination took no writes, or was never checked', () => {
    expect(rollbackVerdict(record('moved'), 0, false)).toEqual({ go: true, unfreeze: true });
    expect(rollbackVerdict(record('moving'), undefined, false)).toEqual({
      go: true,
      unfreeze: true,
    });
  });

  it('stops (exit 6) when the destination holds writes or cannot be read, unless forced', () => {
    const writes = rollbackVerdict(record('moved'), 3, false);
    expect(writes).toMatchObject({ go: false, exitCode: 6 });
    expect(!writes.go && writes.why).toContain('took 3 row write(s)');
    expect(rollbackVerdict(record('moved'), 'unknown', false)).toMatchObject({
      go: false,
      exitCode: 6,
    });
    expect(rollbackVerdict(record('moved'), 3, true)).toEqual({ go: true, unfreeze: true });
    expect(rollbackVerdict(record('moved'), 'unknown', true)).toEqual({ go: true, unfreeze: true });
  });

  it('has no way back from a finished move, and nothing to do for a rolled-back one', () => {
    const finished = rollbackVerdict(record('finished'), 0, true);
    expect(finished).toMatchObject({ go: false, exitCode: 2 });
    expect(!finished.go && finished.why).toContain('the source was retired');
    expect(rollbackVerdict(record('rolled-back'), 0, true)).toMatchObject({
      go: false,
      exitCode: 2,
    });
  });
});
