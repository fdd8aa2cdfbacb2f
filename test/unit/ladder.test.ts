import { describe, expect, it } from 'vitest';
import type { Undo } from '../../src/run/journal.js';
import { decideLastRung, planRollback } from '../../src/run/ladder.js';
import type { Effect, StepState } from '../../src/run/state.js';

function state(stepId: string, undo: Undo | null, effect: Effect = 'applied'): StepState {
  return {
    stepId,
    effect,
    last: {
      runId: 'r1',
      runbook: 'rb',
      seq: 1,
      stepId,
      kind: 'sql',
      checksum: 'c',
      direction: 'up',
      status: effect === 'in-doubt' ? 'started' : 'done',
      transactional: true,
      undo,
      verify: null,
      startedAt: '2026-11-21T10:00:00Z',
      finishedAt: null,
      error: null,
    },
    undo,
    checksum: 'c',
    verify: null,
  };
}

const sqlDown: Undo = { kind: 'sql', text: 'drop table t', transaction: true };

describe('planRollback: the downs', () => {
  it('undoes each touched step in the order given (newest first), skipping checks', () => {
    const plan = planRollback([
      state('s3', sqlDown),
      state('s2', { kind: 'nothing-to-undo' }),
      state('s1', { kind: 'shell', command: 'true', timeoutMs: 1000, directory: '/' }),
    ]);
    expect(plan.possible).toBe(true);
    expect(plan.actions.map((a) => [a.kind, a.stepId])).toEqual([
      ['undo', 's3'],
      ['skip', 's2'],
      ['undo', 's1'],
    ]);
    expect(plan.actions[1]).toMatchObject({ reason: 'a check changes nothing' });
  });

  it('plans nothing when the run touched nothing', () => {
    expect(planRollback([])).toEqual({ possible: true, actions: [] });
  });

  it('stops before undoing anything when a step has no down', () => {
    const plan = planRollback([state('s2', sqlDown), state('s1', { kind: 'none' })]);
    expect(plan.possible).toBe(false);
    if (plan.possible) return;
    expect(plan.blockers).toEqual([{ stepId: 's1', reason: 'it has no down' }]);
  });

  it('names a step in doubt with no down, and one with no stored undo at all', () => {
    const plan = planRollback([state('s2', { kind: 'none' }, 'in-doubt'), state('s1', null)]);
    expect(plan.possible).toBe(false);
    if (plan.possible) return;
    expect(plan.blockers).toEqual([
      { stepId: 's2', reason: 'it may have partly run, and it has no down' },
      { stepId: 's1', reason: 'it has no down' },
    ]);
  });
});

describe('decideLastRung: restore the backup', () => {
  const frozen = { frozenByRun: true, backupId: 'b1' };

  it('is not taken when the downs brought the database back (proved)', () => {
    expect(decideLastRung({ ...frozen, complete: true })).toEqual({
      restore: false,
      why: 'downs-were-enough',
    });
  });

  it('is taken by a frozen run whose downs fell short: no down, a failed down, a proof that differs', () => {
    // Each of these leaves the rollback incomplete; the last rung needs only that.
    expect(decideLastRung({ ...frozen, complete: false })).toEqual({
      restore: true,
      backupId: 'b1',
    });
  });

  it('is not taken when the database is not frozen by this run: others may have written since the backup', () => {
    expect(decideLastRung({ complete: false, frozenByRun: false, backupId: 'b1' })).toEqual({
      restore: false,
      why: 'not-frozen',
    });
  });

  it('is not taken without a backup', () => {
    expect(decideLastRung({ complete: false, frozenByRun: true, backupId: null })).toEqual({
      restore: false,
      why: 'no-backup',
    });
  });
});
