import { createInterface } from 'node:readline/promises';
import { BadInputError } from '../errors.js';

/**
 * A destructive command asks first on a terminal, and takes --yes for
 * scripts; without a terminal to ask on and without --yes, it refuses before
 * doing anything (exit 2) rather than guess.
 */
export async function confirm(
  question: string,
  opts: { yes: boolean; command: string },
): Promise<void> {
  if (opts.yes) return;
  if (!process.stdin.isTTY || !process.stderr.isTTY) {
    throw new BadInputError(
      `${question} No terminal to ask on: confirm with --yes, or see what ${opts.command} would do with --dry-run.`,
    );
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`${question} [y/N] `);
    if (!/^y(es)?$/i.test(answer.trim())) {
      throw new BadInputError(`Not confirmed; ${opts.command} changed nothing.`);
    }
  } finally {
    rl.close();
  }
}
