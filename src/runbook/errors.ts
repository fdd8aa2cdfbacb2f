import { BadInputError } from '../errors.js';
import type { Problem } from './types.js';

export function formatProblem(problem: Problem): string {
  return `${problem.file}:${problem.line}:${problem.column}: ${problem.message}`;
}

/** Exit 2: the runbook is malformed; nothing ran. `details` lists every problem, one per line. */
export class RunbookError extends BadInputError {
  override readonly kind = 'runbook';
  readonly problems: readonly Problem[];

  constructor(file: string, problems: Problem[], options: { cause?: unknown } = {}) {
    const count = `${problems.length} problem${problems.length === 1 ? '' : 's'}`;
    super(`Runbook ${file} has ${count}.`, {
      cause: options.cause,
      details: problems.map(formatProblem),
    });
    this.problems = problems;
  }
}
