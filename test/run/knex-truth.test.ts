import { describe, expect, test } from 'vitest';
import type { StepEvent, Undo } from '../../src/run/journal.js';
import { knexTableKey, type KnexTables } from '../../src/run/knex-table.js';
import { stepStates, touchedByRun, withKnexTruth } from '../../src/run/state.js';

/** knex's table overlaid on the journal: a pure decision, tested without a database. */
const ref = { directory: '/m', tableName: 'knex_migrations', loadExtensions: ['.js'] };
const undo = (name: string): Undo => ({ kind: 'knex', name, ...ref, transaction: true });

let seq = 0;
function event(runId: string, name: string, over: Partial<StepEvent>): StepEvent {
  return {
    runId,
    runbook: 'rb',
    seq: ++seq,
    stepId: `app/${name}`,
    kind: 'knex-migration',
    checksum: 'c',
    direction: 'up',
    status: 'done',
    transactional: true,
    undo: undo(name),
    verify: null,
    startedAt: '2026-01-01T00:00:00Z',
    finishedAt: null,
    error: null,
    ...over,
  };
}

const listing = (...names: string[]): KnexTables =>
  new Map([[knexTableKey(ref), new Map(names.map((n) => [n, 1]))]]);

describe('withKnexTruth', () => {
  const events = [
    event('r1', 'a.js', {}),
    event('r1', 'b.js', {}),
    event('r1', 'c.js', { direction: 'down' }),
    event('r1', 'd.js', { status: 'started', transactional: false }),
    event('r1', 'e.js', { status: 'failed', transactional: false }),
  ];
  const effects = (tables: KnexTables) =>
    Object.fromEntries(
      [...withKnexTruth(stepStates(events, 'rb'), tables)].map(([id, s]) => [
        id,
        `${s.effect}${s.outside ? ` (${s.outside} outside)` : ''}`,
      ]),
    );

  test('knex lists it: applied; no longer lists it: undone outside lifeboat; in doubt stays until decided', () => {
    expect(effects(listing('a.js', 'c.js', 'd.js'))).toEqual({
      'app/a.js': 'applied',
      'app/b.js': 'not-applied (undone outside)',
      'app/c.js': 'applied (applied outside)',
      'app/d.js': 'in-doubt',
      'app/e.js': 'in-doubt',
    });
    // A half-done migration knex lists after all was applied outside lifeboat, since.
    expect(effects(listing('a.js', 'b.js', 'e.js'))['app/e.js']).toBe('applied (applied outside)');
  });

  test('undoing a run leaves out what knex no longer lists and what knex applied outside lifeboat', () => {
    const touched = touchedByRun(events, 'r1', 'rb', listing('a.js', 'c.js'));
    expect(touched.map((s) => s.stepId)).toEqual(['app/e.js', 'app/d.js', 'app/a.js']);
  });
});
