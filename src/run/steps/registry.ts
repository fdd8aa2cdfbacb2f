import type { Step } from '../../runbook/types.js';
import type { Undo } from '../journal.js';
import { checkStep, nothingToUndo } from './check.js';
import { knexStep, knexUndo } from './knex.js';
import type { StepKind, UndoKind } from './kind.js';
import { shellStep, shellUndo } from './shell.js';
import { sqlStep, sqlUndo } from './sql.js';

/** Every kind of step, and every kind of stored undo: a new kind is one module and one line here. */
const STEPS: { [K in Step['kind']]: StepKind<Extract<Step, { kind: K }>> } = {
  sql: sqlStep,
  check: checkStep,
  shell: shellStep,
  'knex-migration': knexStep,
};

type RunnableUndo = Exclude<Undo, { kind: 'none' }>;
const UNDOS: { [K in RunnableUndo['kind']]: UndoKind<Extract<RunnableUndo, { kind: K }>> } = {
  sql: sqlUndo,
  shell: shellUndo,
  knex: knexUndo,
  'nothing-to-undo': nothingToUndo,
};

export function stepKind<S extends Step>(step: S): StepKind<S> {
  return STEPS[step.kind] as unknown as StepKind<S>;
}

export function undoKind<U extends RunnableUndo>(undo: U): UndoKind<U> {
  return UNDOS[undo.kind] as unknown as UndoKind<U>;
}
