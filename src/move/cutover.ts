import { runShellCommand } from '../run/steps/shell.js';
import { stepEnvironment } from '../step-env.js';
import { connectionString, type Target } from '../target.js';

/** How long a cutover command may take before it is stopped (and the move waits for the operator). */
const CUTOVER_TIMEOUT_MS = 15 * 60_000;

/**
 * The cutover command repoints the applications. It runs as a runbook's
 * shell step does: DATABASE_URL and the PG* variables lead to the moved
 * database on the destination, lifeboat's own secrets are left out, and
 * LIFEBOAT_MOVE_FROM names the source (without its password).
 */
export async function runCutover(
  command: string,
  at: { moveId: string; source: Target; destination: Target },
): Promise<void> {
  await runShellCommand(command, {
    cwd: process.cwd(),
    env: {
      ...stepEnvironment(at.destination, { runId: at.moveId }),
      LIFEBOAT_MOVE_ID: at.moveId,
      LIFEBOAT_MOVE_FROM: connectionString(at.source),
    },
    timeoutMs: CUTOVER_TIMEOUT_MS,
  });
}
