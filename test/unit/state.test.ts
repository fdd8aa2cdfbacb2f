import { describe, expect, it } from 'vitest';
import type { StepEvent, Undo } from '../../src/run/journal.js';
import type { KnexMigrationRef } from '../../src/run/knex-migration.js';
import { knexTableKey } from '../../src/run/knex-table.js';
import { effectOf, stepStates, touchedByRun, withKnexTruth } from '../../src/run/state.js';

let seq = 0;
function event(
  stepId: string,
  direction: StepEvent['direction'],
  status: StepEvent['status'],
  more: Partial<StepEvent> = {},
): StepEvent {
  seq += 1;
  return {
    runId: 'r1',
    runbook: 'rb',
    seq,
    stepId,
    kind: 'sql',
    checksum: `c-${stepId}`,
    direction,
    status,
    transactional: true,
    undo: direction === 'up' ? { kind: 'sql', text: `undo ${stepId}`, transaction: true } : null,
    verify: null,
    startedAt: '2026-11-21T10:00:00Z',
    finishedAt: status === 'started' ? null : '2026-11-21T10:00:01Z',
    error: status === 'failed' ? 'boom' : null,
    ...more,
  };
}

describe('effectOf: the last event decides', () => {
  it.each([
    ['up', 'done', true, 'applied'],
    ['up', 'started', true, 'in-doubt'],
    ['up', 'failed', true, 'not-applied'],
    ['up', 'failed', false, 'in-doubt'],
    ['down', 'done', true, 'not-applied'],
    ['down', 'started', true, 'in-doubt'],
    ['down', 'failed', true, 'applied'],
    ['down', 'failed', false, 'in-doubt'],
  ] as const)('%s %s (transactional %s) is %s', (direction, status, transactional, effect) => {
    expect(effectOf(event('s', direction, status, { transactional }))).toBe(effect);
  });
});

describe('stepStates', () => {
  it('keeps the undo and checksum stored when the step went up through its down', () => {
    const states = stepStates(
      [event('s1', 'up', 'done', { verify: 'select 1' }), event('s1', 'down', 'failed')],
      'rb',
    );
    expect(states.get('s1')).toMatchObject({
      effect: 'applied',
      undo: { kind: 'sql', text: 'undo s1' },
      checksum: 'c-s1',
      verify: 'select 1',
      last: { direction: 'down', status: 'failed' },
    });
  });

  it('reads only the named runbook', () => {
    const states = stepStates([event('s1', 'up', 'done', { runbook: 'other' })], 'rb');
    expect(states.size).toBe(0);
  });
});

describe('touchedByRun', () => {
  it('lists the steps the run applied or left in doubt, newest first', () => {
    const events = [
      event('s1', 'up', 'done'),
      event('s2', 'up', 'failed'),
      event('s3', 'up', 'done'),
      event('s4', 'up', 'started'),
      event('s3', 'down', 'done'),
      event('s0', 'up', 'done', { runId: 'r0' }),
    ];
    expect(touchedByRun(events, 'r1', 'rb').map((s) => [s.stepId, s.effect])).toEqual([
      ['s4', 'in-doubt'],
      ['s1', 'applied'],
    ]);
  });
});

describe('withKnexTruth: knex table is the truth for knex migrations', () => {
  const ref: KnexMigrationRef = {
    name: '001_a.js',
    directory: '/m',
    tableName: 'knex_migrations',
    loadExtensions: ['.js'],
  };
  const knexUndo: Undo = { kind: 'knex', ...ref };
  const listed = new Map([[knexTableKey(ref), new Map([[ref.name, 1]])]]);
  const unlisted = new Map<string, Map<string, number>>();
  const knexEvent = (direction: StepEvent['direction'], status: StepEvent['status']) =>
    event('k1', direction, status, { kind: 'knex-migration', undo: knexUndo });

  it('agrees with the journal when knex does', () => {
    const states = stepStates([knexEvent('up', 'done')], 'rb');
    expect(withKnexTruth(states, listed).get('k1')).toMatchObject({ effect: 'applied' });
    expect(withKnexTruth(states, listed).get('k1')?.outside).toBeUndefined();
  });

  it('reads a migration knex no longer lists as undone outside lifeboat', () => {
    const states = stepStates([knexEvent('up', 'done')], 'rb');
    expect(withKnexTruth(states, unlisted).get('k1')).toMatchObject({
      effect: 'not-applied',
      outside: 'undone',
    });
  });

  it('reads a migration knex lists but lifeboat undid as applied by knex outside lifeboat', () => {
    const states = stepStates([knexEvent('up', 'done'), knexEvent('down', 'done')], 'rb');
    expect(withKnexTruth(states, listed).get('k1')).toMatchObject({
      effect: 'applied',
      outside: 'applied',
    });
  });

  it('leaves a crash in doubt until decided, even when knex lists it', () => {
    const states = stepStates([knexEvent('up', 'started')], 'rb');
    expect(withKnexTruth(states, listed).get('k1')).toMatchObject({ effect: 'in-doubt' });
  });

  it('leaves out of a run what knex undid or applied outside lifeboat', () => {
    expect(touchedByRun([knexEvent('up', 'done')], 'r1', 'rb', unlisted)).toEqual([]);
    expect(
      touchedByRun([knexEvent('up', 'done'), knexEvent('down', 'done')], 'r1', 'rb', listed),
    ).toEqual([]);
  });
});
