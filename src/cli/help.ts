const meanings: Record<number, string> = {
  0: 'success / gate passed',
  1: 'internal error (a bug)',
  2: 'bad input: usage, config, runbook, connection, missing tools, storage',
  3: 'guard refused: no fresh, verified backup with enough copies (nothing changed)',
  4: 'verification failed: the backup does not restore, or its content differs',
  5: 'a step failed and the run was rolled back',
  6: 'a step failed and rollback is incomplete: operator action needed',
  7: 'another run holds the lock on this database',
};

/** The exit codes a command can return, for its --help epilog. */
export function exitCodes(...codes: number[]): string {
  return ['Exit codes:', ...codes.map((c) => `  ${c}  ${meanings[c]}`)].join('\n');
}
