import { pausePoint } from '../../faults.js';
import type { ShellStep } from '../../runbook/types.js';
import { redact } from '../../secrets.js';
import { umaskPrefix } from '../../step-env.js';
import type { Undo } from '../journal.js';
import { booleanQuery, outsideTransaction } from './checkpoint.js';
import type { StepKind, UndoKind } from './kind.js';
import { stepEnv, type StepRunner } from './runner.js';

/** A shell command: never transactional, so `started` before it and `done` after. */
export const shellStep: StepKind<ShellStep> = {
  label: () => 'shell',
  transactional: () => false,
  undo: (step, directory) =>
    step.down
      ? {
          kind: 'shell',
          command: step.down,
          timeoutMs: step.timeoutMs,
          directory,
          ...(step.secrets.length > 0 ? { secrets: step.secrets } : {}),
        }
      : { kind: 'none' },
  verify: (step) => step.verify ?? null,
  async apply(r, step, base) {
    await outsideTransaction(r, base, async () => {
      await runShell(r, step.up, step.timeoutMs, step.secrets);
      if (step.verify && !(await booleanQuery(r.client, step.verify))) {
        throw new Error('its verify query returned false after up');
      }
    });
  },
};

export const shellUndo: UndoKind<Extract<Undo, { kind: 'shell' }>> = {
  transactional: () => false,
  async run(r, undo, base) {
    await pausePoint(`undo:${base.stepId}:before`);
    await outsideTransaction(r, base, () =>
      runShell(
        { ...r, directory: undo.directory },
        undo.command,
        undo.timeoutMs,
        undo.secrets ?? [],
      ),
    );
  },
};

async function runShell(
  r: StepRunner,
  command: string,
  timeoutMs: number,
  secrets: readonly string[],
): Promise<void> {
  await runShellCommand(command, { cwd: r.directory, env: stepEnv(r, secrets), timeoutMs });
}

/** A shell command with the user's umask; a failure says how it ended and its last lines, redacted. */
export async function runShellCommand(
  command: string,
  opts: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<void> {
  const { $ } = await import('zx');
  const out = await $({
    cwd: opts.cwd,
    env: opts.env,
    prefix: `${$.prefix}${umaskPrefix()}`,
    quiet: true,
    nothrow: true,
    timeout: opts.timeoutMs,
    // No stdin: nobody types into a step. On a pipe (a socket, as Node makes them) bash would
    // take itself for a remote shell and run the user's ~/.bashrc before the command.
    stdio: ['ignore', 'pipe', 'pipe'],
  })`bash -c ${command}`;
  if (out.exitCode !== 0) {
    const tail = `${out.stderr}\n${out.stdout}`.trim().split('\n').slice(-3).join(' | ');
    const why =
      out.signal === 'SIGINT'
        ? 'was interrupted (Ctrl-C)'
        : out.signal
          ? `was stopped by ${out.signal}${out.signal === 'SIGTERM' ? ' (timeout?)' : ''}`
          : `exited with ${out.exitCode}`;
    throw new Error(redact(`the command ${why}${tail ? `: ${tail}` : ''}`));
  }
}
