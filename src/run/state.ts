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

/** Steps applied (or in doubt) by one run, newest first: what undoing that run must undo. */
export function touchedByRun(
  events: readonly StepEvent[],
  runId: string,
  runbook: string,
): StepState[] {
  const states = stepStates(events, runbook);
  const order: string[] = [];
  for (const e of events) {
    if (e.runId === runId && e.direction === 'up' && !order.includes(e.stepId))
      order.push(e.stepId);
  }
  return order
    .reverse()
    .map((id) => states.get(id)!)
    .filter((s) => s.effect !== 'not-applied');
}
