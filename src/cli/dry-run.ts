import {
  BadInputError,
  GuardRefusedError,
  LockHeldError,
  RollbackIncompleteError,
  type LifeboatError,
} from '../errors.js';
import type { CommandDocument } from '../report.js';
import { redact } from '../secrets.js';
import type { GlobalArgs } from './context.js';
import { emit } from './output.js';

/**
 * Show a dry run (what would happen, in order; nothing changed) and end with
 * the exit code the real command would have reached before changing anything:
 * 0 when it would go ahead, else its refusal's code.
 */
export function showDryRun<D extends CommandDocument>(
  argv: GlobalArgs,
  doc: D,
  lines: string[],
  outcome: { wouldExit: number; why: string[] },
): D {
  if (outcome.wouldExit === 0) return emit(argv, doc, [...lines, 'Nothing was changed (dry run).']);
  if (!argv.json)
    process.stdout.write(`${redact([...lines, 'Nothing was changed (dry run).'].join('\n'))}\n`);
  throw refusal(outcome.wouldExit, outcome.why, doc);
}

function refusal(code: number, why: string[], data: CommandDocument): LifeboatError {
  const message = `It would stop before changing anything (exit ${code}): ${why[0] ?? ''}`;
  const options = { details: why.slice(1), data };
  if (code === 3) return new GuardRefusedError(message, options);
  if (code === 6) return new RollbackIncompleteError(message, options);
  if (code === 7) return new LockHeldError(message, options);
  return new BadInputError(message, options);
}
