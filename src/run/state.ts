import type { KnexMigrationRef } from './knex-migration.js';
import { knexBatch, type KnexTables } from './knex-table.js';
import type { StepEvent, Undo } from './journal.js';

/**
 * What the journal says about each step of a runbook, as a pure function of
 * its events. The last event of a step decides:
 *
 *   up done                     applied
 *   up started                  in doubt (a crash between start and checkpoint)
 *   up failed, transactional    not applied (its transaction rolled back)
 *   up failed, otherwise        in doubt (it may have partly run)
 *   down done                   not applied
 *   down started                in doubt
 *   down failed, transactional  applied (the down rolled back)
 *   down failed, otherwise      in doubt
 */
export type Effect = 'applied' | 'not-applied' | 'in-doubt';

export interface StepState {
  stepId: string;
  effect: Effect;
  /** The event that decided it. */
  last: StepEvent;
  /** The undo stored when the step was last applied (or attempted). */
  undo: Undo | null;
  /** The checksum of the content that was applied. */
  checksum: string;
  /** The verify query stored with the step, if it has one. */
  verify: string | null;
  /**
   * knex's table contradicts the journal (see `withKnexTruth`): `applied`,
   * knex applied it outside lifeboat (lifeboat never undoes it); `undone`,
   * it was undone outside lifeboat (`knex migrate:rollback`).
   */
  outside?: 'applied' | 'undone';
}

export function effectOf(e: StepEvent): Effect {
  if (e.status === 'started') return 'in-doubt';
  if (e.status === 'done') return e.direction === 'up' ? 'applied' : 'not-applied';
  if (!e.transactional) return 'in-doubt';
  return e.direction === 'up' ? 'not-applied' : 'applied';
}

/** The state of every step of `runbook` that has any event, keyed by step id. */
export function stepStates(events: readonly StepEvent[], runbook: string): Map<string, StepState> {
  const states = new Map<string, StepState>();
  for (const e of events) {
    if (e.runbook !== runbook) continue;
    const before = states.get(e.stepId);
    states.set(e.stepId, {
      stepId: e.stepId,
      effect: effectOf(e),
      last: e,
      // A down event carries no undo of its own; keep the one stored when the step went up.
      undo: e.direction === 'up' ? e.undo : (before?.undo ?? e.undo),
      checksum: e.direction === 'up' ? e.checksum : (before?.checksum ?? e.checksum),
      verify: e.verify ?? before?.verify ?? null,
    });
  }
  return states;
}

/** The knex migration a state stands for (its stored undo names it), if it is one. */
export function knexRefOf(state: Pick<StepState, 'undo'>): KnexMigrationRef | undefined {
  if (state.undo?.kind === 'knex') return state.undo;
  if (state.undo?.kind === 'none') return state.undo.knex;
  return undefined;
}

/**
 * knex's table is the truth for knex migrations, as a pure function over the
 * journal's states:
 *
 *   knex lists it, the journal says applied     applied
 *   knex lists it, the journal says not applied applied by knex, outside lifeboat
 *   knex does not list it, journal says applied undone outside lifeboat: not applied
 *   in doubt after a crash (started, no end)    in doubt, until decided
 *   failed part-way outside a transaction       in doubt (half-done), unless knex lists it
 */
export function withKnexTruth(
  states: ReadonlyMap<string, StepState>,
  tables: KnexTables,
): Map<string, StepState> {
  const out = new Map<string, StepState>();
  for (const [id, state] of states) {
    const ref = knexRefOf(state);
    const listed = ref !== undefined && knexBatch(tables, ref) !== undefined;
    if (ref === undefined || (state.effect === 'applied') === listed) out.set(id, state);
    else if (state.effect === 'applied')
      out.set(id, { ...state, effect: 'not-applied', outside: 'undone' });
    else if (state.effect === 'not-applied' || (listed && state.last.status !== 'started'))
      out.set(id, { ...state, effect: 'applied', outside: 'applied' });
    else out.set(id, state);
  }
  return out;
}

/**
 * Steps applied (or in doubt) by one run, newest first: what undoing that run
 * must undo. Given knex's tables, a migration knex no longer lists is left
 * out, and so is one that knex applied outside lifeboat.
 */
export function touchedByRun(
  events: readonly StepEvent[],
  runId: string,
  runbook: string,
  tables?: KnexTables,
): StepState[] {
  const journal = stepStates(events, runbook);
  const states = tables ? withKnexTruth(journal, tables) : journal;
  const order: string[] = [];
  for (const e of events) {
    if (e.runId === runId && e.direction === 'up' && !order.includes(e.stepId))
      order.push(e.stepId);
  }
  return order
    .reverse()
    .map((id) => states.get(id)!)
    .filter((s) => s.effect !== 'not-applied' && s.outside !== 'applied');
}
