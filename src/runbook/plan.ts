import type { Risk, Runbook, Step, StepKind } from './types.js';

/** A step's entry in the journal: only steps whose effect is, or may be, in the database. */
export interface AppliedStep {
  stepId: string;
  checksum: string;
  /** `in-doubt`: recorded as started, never as done (a crash in between). */
  status: 'done' | 'in-doubt';
  /** knex lists it as applied, but lifeboat did not apply it: lifeboat never runs or undoes it. */
  by?: 'knex';
}

/** `changed`: applied, but its content differs from what ran; the run is refused. */
export type StepState = 'pending' | 'done' | 'in-doubt' | 'changed';

/**
 * How an effect is undone: the step's own transaction, its `down`, not at all,
 * or nothing to undo (a check changes nothing).
 */
export type UndoPath = 'transaction' | 'down' | 'none' | 'not-needed';

export interface PlannedStep {
  id: string;
  kind: StepKind;
  state: StepState;
  transaction: boolean;
  /** How a failure part-way through the step is undone. */
  onFailure: UndoPath;
  /** How the step is undone once applied (a later step fails, or `lifeboat rollback`). */
  undo: UndoPath;
  /** Done, but applied outside lifeboat (knex lists it): never run or undone by lifeboat. */
  appliedBy?: 'knex';
  risks: Risk[];
}

export interface Plan {
  runbook: string;
  file: string;
  steps: PlannedStep[];
  counts: Record<StepState, number>;
  /** Every pending or in-doubt step can be undone: what `gate --runbook` demands. */
  undoable: boolean;
  /** Why `run` would refuse this runbook against this journal; empty when it may proceed. */
  refusals: string[];
}

/** Plan a runbook against the journal's record of applied steps. Pure. */
export function planRunbook(runbook: Runbook, applied: readonly AppliedStep[]): Plan {
  const byId = new Map(applied.map((a) => [a.stepId, a]));
  const steps = runbook.steps.map((step) => planStep(step, byId.get(step.id)));
  const counts: Record<StepState, number> = { pending: 0, done: 0, 'in-doubt': 0, changed: 0 };
  for (const s of steps) counts[s.state]++;
  const open = steps.filter((s) => s.state === 'pending' || s.state === 'in-doubt');
  return {
    runbook: runbook.name,
    file: runbook.file,
    steps,
    counts,
    undoable: open.every((s) => s.undo === 'down' || s.undo === 'not-needed'),
    refusals: refusals(runbook, steps, applied),
  };
}

function planStep(step: Step, applied: AppliedStep | undefined): PlannedStep {
  const state: StepState =
    applied === undefined
      ? 'pending'
      : applied.checksum !== step.checksum
        ? 'changed'
        : applied.status;
  const { transaction, onFailure, undo } = undoPaths(step);
  const risks = [...step.risks];
  if (!transaction && step.kind !== 'shell') {
    risks.push({
      code: 'non-transactional',
      message: `runs outside a transaction: a failure part-way leaves earlier statements applied${
        onFailure === 'down'
          ? ', to be undone by its down (write it to cope with a half-done up)'
          : ''
      }`,
    });
  }
  if (!transaction && !decidesDoubt(step)) {
    risks.push({
      code: 'no-verify',
      message:
        step.kind === 'knex-migration'
          ? 'knex records it only after it ends, so after a crash part-way nobody can tell whether it took effect; give it a verify query in the runbook (knex: { verify: { <file>: <query> } })'
          : 'no verify query: after a crash part-way, lifeboat cannot tell whether it took effect',
    });
  }
  if (undo === 'none') {
    risks.push({
      code: 'no-down',
      message:
        'no down: a later failure can only be rolled back by restoring the backup (the last rung), which lifeboat does by itself only in a run with --freeze; otherwise it stops for the operator (exit 6)',
    });
  }
  return {
    id: step.id,
    kind: step.kind,
    state,
    transaction,
    onFailure,
    undo,
    ...(applied?.by ? { appliedBy: applied.by } : {}),
    risks,
  };
}

function undoPaths(step: Step): Pick<PlannedStep, 'transaction' | 'onFailure' | 'undo'> {
  switch (step.kind) {
    case 'check':
      return { transaction: true, onFailure: 'not-needed', undo: 'not-needed' };
    case 'sql': {
      const undo = step.down === undefined ? 'none' : 'down';
      return {
        transaction: step.up.transaction,
        onFailure: step.up.transaction ? 'transaction' : undo,
        undo,
      };
    }
    case 'shell': {
      const undo = step.down === undefined ? 'none' : 'down';
      return { transaction: false, onFailure: undo, undo };
    }
    case 'knex-migration': {
      const undo = step.hasDown ? 'down' : 'none';
      return {
        transaction: step.transaction,
        onFailure: step.transaction ? 'transaction' : undo,
        undo,
      };
    }
  }
}

/**
 * Whether a step left in doubt by a crash can be decided: a check changes
 * nothing (run it again); a transactional step commits together with its
 * record (lifeboat's checkpoint, or knex's own row), so it either happened
 * or not; otherwise only a verify query can tell.
 */
function decidesDoubt(step: Step): boolean {
  switch (step.kind) {
    case 'check':
      return true;
    case 'knex-migration':
      return step.transaction || step.verify !== undefined;
    case 'sql':
      return step.up.transaction || step.verify !== undefined;
    case 'shell':
      return step.verify !== undefined;
  }
}

function refusals(
  runbook: Runbook,
  steps: PlannedStep[],
  applied: readonly AppliedStep[],
): string[] {
  const reasons: string[] = [];
  const known = new Set(runbook.steps.map((s) => s.id));
  for (const a of applied) {
    if (!known.has(a.stepId)) {
      reasons.push(
        a.by === 'knex'
          ? `knex lists migration "${a.stepId}" as applied, but its file is not in the directory; knex refuses to run any migration until it is back`
          : `step "${a.stepId}" was applied but is no longer in the runbook; put it back`,
      );
    }
  }
  for (const s of steps) {
    if (s.state === 'changed') {
      reasons.push(
        `step "${s.id}" changed since it was applied; put back the version that ran (lifeboat never re-runs or skips an edited step)`,
      );
    }
  }
  // Only what lifeboat applied has an order to keep: a pending knex migration before one that knex
  // applied is what knex itself would run (it runs migrations out of order).
  const lastApplied = steps.findLastIndex((s) => s.state !== 'pending' && !s.appliedBy);
  steps.slice(0, Math.max(lastApplied, 0)).forEach((s) => {
    if (s.state === 'pending') {
      const after = steps[lastApplied]?.id ?? '';
      reasons.push(
        `step "${s.id}" is new but comes before applied step "${after}"; add new steps after the last applied one`,
      );
    }
  });
  for (const step of runbook.steps) {
    const planned = steps.find((s) => s.id === step.id);
    if (planned?.state === 'in-doubt' && !decidesDoubt(step)) {
      reasons.push(
        `step "${step.id}" is in doubt (it started, its end was not recorded) and has no verify query to tell whether it took effect; check the database, then add a verify query or run lifeboat rollback`,
      );
    }
  }
  return reasons;
}
