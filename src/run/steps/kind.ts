import type { Step, Timeouts } from '../../runbook/types.js';
import type { Undo } from '../journal.js';
import type { Checkpoint, StepRunner } from './runner.js';

/**
 * What lifeboat does with one kind of step: each kind is one module
 * (sql.ts, check.ts, shell.ts, knex.ts) holding how it is named, applied
 * with its checkpoint, and undone, listed once in registry.ts.
 */
export interface StepKind<S extends Step = Step> {
  /** How a run's progress names it. */
  label(step: S): string;
  /** Its effect commits together with its checkpoint, or not at all. */
  transactional(step: S): boolean;
  /** How it is undone, stored with it when it is applied. */
  undo(step: S, directory: string): Undo;
  /** The query that decides it if a crash leaves it in doubt. */
  verify(step: S): string | null;
  /** Apply it and write its checkpoint (`base` is the checkpoint less its status). */
  apply(r: StepRunner, step: S, base: Checkpoint): Promise<void>;
}

/** Running a stored undo of one kind, checkpointed like an up. */
export interface UndoKind<U extends Undo = Undo> {
  /** The undo commits together with its checkpoint. */
  transactional(undo: U): boolean;
  run(r: StepRunner, undo: U, base: Checkpoint, timeouts: Timeouts): Promise<void>;
}
