/**
 * One answer to Ctrl-C (SIGINT) and SIGTERM for every command. A command that
 * only reads stops at once. A command that writes is handed an AbortSignal:
 * the library stops its child tools, removes what it half did, and the
 * command ends with exit 130 and one sentence saying what was stopped. A
 * second interrupt says what is still being finished instead of leaving half
 * a state behind. `run` and `rollback` stop at their next safe point (between
 * steps, each checkpointed) and roll back as a failure would.
 */
export type InterruptPolicy =
  /** Reads only: stop now. */
  | { kind: 'exit' }
  /** Writes: the library stops through the signal. `stopping` completes "interrupt: stopping …". */
  | { kind: 'abort'; stopping: string }
  /** Steps: the library stops at its next safe point; the messages say so. */
  | { kind: 'safe-point'; first: string; later: string };

export interface Interrupts {
  signal: AbortSignal;
  /** Remove the handlers (the command has ended). */
  done(): void;
}

export function handleInterrupts(policy: InterruptPolicy): Interrupts {
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals): void => {
    if (policy.kind === 'exit') {
      showCursor();
      process.stderr.write(`\ninterrupt: stopped (${name}); this command changes nothing.\n`);
      process.exit(130);
    }
    if (!controller.signal.aborted) {
      process.stderr.write(
        policy.kind === 'abort'
          ? `\ninterrupt: stopping ${policy.stopping}, and removing what it had half done.\n`
          : `\n${policy.first}\n`,
      );
      // The library says what it stopped (InterruptedError); the reason is only the cause.
      controller.abort(new Error(`interrupted by ${name}`));
    } else {
      process.stderr.write(
        policy.kind === 'abort'
          ? '\ninterrupt: still removing what was half done; lifeboat ends by itself in a moment.\n'
          : `\n${policy.later}\n`,
      );
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    done() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** A task list's spinner hides the cursor; an abrupt exit must not leave it hidden. */
function showCursor(): void {
  if (process.stderr.isTTY) process.stderr.write('\u001B[?25h');
}
