import type { Step, Timeouts } from '../runbook/types.js';
import { pausePoint } from '../faults.js';
import { knexBatch, knexTableKey, readKnexTables, type KnexTableRef } from './knex-table.js';
import { recordEvent } from './journal.js';
import { knexRefOf, type StepState } from './state.js';
import { booleanQuery } from './steps/checkpoint.js';
import { stepKind, undoKind } from './steps/registry.js';
import { StepFailure, type Checkpoint, type StepRunner } from './steps/runner.js';

export { StepFailure, type StepRunner } from './steps/runner.js';

/** Apply one step with its checkpoint, the way its kind does. */
export async function applyStep(r: StepRunner, step: Step): Promise<void> {
  const kind = stepKind(step);
  const base: Checkpoint = {
    runId: r.runId,
    stepId: step.id,
    kind: step.kind,
    checksum: step.checksum,
    direction: 'up',
    transactional: kind.transactional(step),
    undo: kind.undo(step, r.directory),
    verify: kind.verify(step),
  };
  await pausePoint(`step:${step.id}:before`);
  await kind.apply(r, step, base);
}

/** How a run's progress names a step. */
export function stepLabel(step: Step): string {
  return stepKind(step).label(step);
}

/** Undo an applied step with its stored undo, checkpointed like an up. */
export async function undoStep(r: StepRunner, state: StepState, timeouts: Timeouts): Promise<void> {
  const undo = state.undo;
  if (!undo || undo.kind === 'none') throw new StepFailure(state.stepId, 'down', 'it has no down');
  const kind = undoKind(undo);
  await kind.run(
    r,
    undo,
    {
      runId: r.runId,
      stepId: state.stepId,
      kind: state.last.kind,
      checksum: state.checksum,
      direction: 'down',
      transactional: kind.transactional(undo),
      undo: null,
      verify: state.verify,
    },
    timeouts,
  );
}

/**
 * Decide a step left in doubt by a crash: by knex's own table for a knex
 * migration it lists (knex writes its row only once the migration ended),
 * else by the step's verify query. A knex migration run in a transaction
 * commits with its row, so knex's table alone decides it. Undefined when
 * nothing can tell.
 */
export async function probeInDoubt(
  r: StepRunner,
  state: StepState,
): Promise<{ applied: boolean; how: string } | undefined> {
  const knex = knexRefOf(state);
  if (knex) {
    const listed = knexBatch(await readKnexTables(r.client, [knex]), knex) !== undefined;
    if (listed || knex.transaction !== false)
      return { applied: listed, how: "by knex's migrations table" };
  }
  if (state.verify) {
    const applied = await booleanQuery(r.client, state.verify);
    // Its up ended but knex had not written its row yet: write it, as knex would have.
    if (knex && applied && state.last.direction === 'up') await r.knex.markApplied(knex);
    return { applied, how: 'by its verify query' };
  }
  return undefined;
}

/**
 * A run stopped by a crash inside knex (between knex taking its own lock and
 * releasing it) leaves knex's lock taken. The run is being continued under
 * lifeboat's run lock, so that lock was the stopped run's: free it, as
 * `knex migrate:unlock` would.
 */
export async function releaseStaleKnexLocks(
  r: StepRunner,
  refs: Iterable<KnexTableRef>,
): Promise<void> {
  const seen = new Set<string>();
  for (const ref of refs) {
    if (seen.has(knexTableKey(ref))) continue;
    seen.add(knexTableKey(ref));
    await r.knex.releaseLock(ref);
  }
}

/** Record how a step in doubt was decided, as an event whose effect is that decision. */
export async function recordResolution(
  r: StepRunner,
  state: StepState,
  applied: boolean,
  how: string,
): Promise<void> {
  await recordEvent(r.client, {
    runId: r.runId,
    stepId: state.stepId,
    kind: state.last.kind,
    checksum: state.checksum,
    direction: applied ? 'up' : 'down',
    status: 'done',
    transactional: true,
    undo: applied ? state.undo : null,
    verify: state.verify,
    error: `resolved ${applied ? 'applied' : 'not applied'}: ${how}`,
  });
}
