import type { Progress } from '../progress.js';
import type { Step } from '../runbook/types.js';
import { applyStep, type StepRunner } from './execute.js';
import { knexBatch, type KnexTables } from './knex-table.js';
import type { RunReport } from './report-types.js';
import type { StepOutcome } from './rollback.js';
import type { StepState } from './state.js';

/** What the journal (knex's table overlaid) says of a step before the run reaches it. */
export type PriorEffect = StepState['effect'] | undefined;

/** A step lifeboat never ran counts as applied when knex lists it. */
export function priorEffect(
  step: Step,
  states: ReadonlyMap<string, StepState>,
  tables: KnexTables,
): PriorEffect {
  const state = states.get(step.id);
  if (state) return state.effect;
  return step.kind === 'knex-migration' && knexBatch(tables, step) !== undefined
    ? 'applied'
    : undefined;
}

export interface StepsResult {
  /** One outcome per step of the runbook, in order: what ran, what was there already, what did not run. */
  outcomes: StepOutcome[];
  /** Why the steps stopped, when they did. */
  failure?: NonNullable<RunReport['failure']>;
}

/**
 * The steps of a run (or of its rehearsal), each with its checkpoint: a step
 * already applied is skipped, the first that fails or cannot run ends the
 * loop, and every step after it is `not-run`. The caller decides what a
 * failure leads to (the rollback ladder, or a failed rehearsal).
 */
export async function applySteps(
  runner: StepRunner,
  steps: readonly Step[],
  opts: {
    prior: (step: Step) => PriorEffect;
    /** Why a step in doubt stops the loop (a run decides its doubts before it begins). */
    inDoubt?: string;
    title: (i: number, step: Step) => string;
    progress: Progress;
    signal?: AbortSignal;
  },
): Promise<StepsResult> {
  const outcomes: StepOutcome[] = [];
  const stop = (from: number, failure: StepsResult['failure']): StepsResult => {
    for (const rest of steps.slice(from)) outcomes.push({ id: rest.id, outcome: 'not-run' });
    return { outcomes, failure };
  };
  for (const [i, step] of steps.entries()) {
    const prior = opts.prior(step);
    if (prior === 'applied') {
      outcomes.push({ id: step.id, outcome: 'already-applied' });
      continue;
    }
    if (prior === 'in-doubt' && opts.inDoubt) {
      return stop(i, { stepId: step.id, error: opts.inDoubt });
    }
    if (opts.signal?.aborted) {
      const error = `stopped by the operator (interrupt) before step ${step.id}`;
      return stop(i, { stepId: step.id, error, interrupted: true });
    }
    const started = Date.now();
    try {
      await opts.progress.task(opts.title(i, step), () => applyStep(runner, step));
      outcomes.push({ id: step.id, outcome: 'applied', durationMs: Date.now() - started });
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      // Ctrl-C reaches a step's command too: stopped by the operator, not a failure of the step.
      const interrupted = opts.signal?.aborted === true;
      outcomes.push({
        id: step.id,
        outcome: interrupted ? 'interrupted' : 'failed',
        durationMs: Date.now() - started,
        error,
      });
      return stop(i + 1, {
        stepId: step.id,
        error,
        ...(interrupted ? { interrupted, during: true } : {}),
      });
    }
  }
  return { outcomes };
}
