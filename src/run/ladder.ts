import type { StepState } from './state.js';

/**
 * The rollback ladder as a pure decision. The failed step's own transaction
 * is the first rung (already taken when this is consulted); then each applied
 * step's down, newest first. A step with no way back stops the ladder before
 * anything is undone: undoing only the steps after it would leave a state that
 * is neither the old one nor the new one.
 */
export type RollbackAction =
  | { kind: 'undo'; stepId: string; state: StepState }
  | { kind: 'skip'; stepId: string; state: StepState; reason: string };

export type RollbackPlan =
  | { possible: true; actions: RollbackAction[] }
  | { possible: false; blockers: { stepId: string; reason: string }[]; actions: RollbackAction[] };

export function planRollback(touched: readonly StepState[]): RollbackPlan {
  const actions: RollbackAction[] = [];
  const blockers: { stepId: string; reason: string }[] = [];
  for (const state of touched) {
    const undo = state.undo;
    if (!undo || undo.kind === 'none') {
      blockers.push({
        stepId: state.stepId,
        reason:
          state.effect === 'in-doubt'
            ? 'it may have partly run, and it has no down'
            : 'it has no down',
      });
    } else if (undo.kind === 'nothing-to-undo') {
      actions.push({
        kind: 'skip',
        stepId: state.stepId,
        state,
        reason: 'a check changes nothing',
      });
    } else {
      actions.push({ kind: 'undo', stepId: state.stepId, state });
    }
  }
  return blockers.length > 0 ? { possible: false, blockers, actions } : { possible: true, actions };
}

/**
 * The last rung: when the downs could not bring the database back (a step with
 * no down, a down that failed, a proof that still differs), restore the run's
 * backup, but only while the database has been frozen by this run since that
 * backup was taken, so that restoring it loses no one's writes.
 */
export type LastRung =
  | { restore: true; backupId: string }
  | { restore: false; why: 'downs-were-enough' | 'not-frozen' | 'no-backup' };

export function decideLastRung(facts: {
  /** The downs undid every step and the proof holds. */
  complete: boolean;
  /** The database is still frozen, and by this run. */
  frozenByRun: boolean;
  backupId: string | null;
}): LastRung {
  if (facts.complete) return { restore: false, why: 'downs-were-enough' };
  if (!facts.frozenByRun) return { restore: false, why: 'not-frozen' };
  if (!facts.backupId) return { restore: false, why: 'no-backup' };
  return { restore: true, backupId: facts.backupId };
}
