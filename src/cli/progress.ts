import { Listr, PRESET_TIMER, PRESET_TIMESTAMP } from 'listr2';
import type { Progress } from '../progress.js';
import { silentProgress } from '../progress.js';
import { redact } from '../secrets.js';

/**
 * listr2 behind the library's Progress: a live task list on a terminal, plain
 * timestamped lines otherwise (CI, pipes), nothing at all under --json.
 */
export function terminalProgress(options: { json: boolean; quiet?: boolean }): Progress {
  // Warnings are logs: on stderr even under --json, whose stdout holds the one document.
  if (options.json || options.quiet) return { ...silentProgress, warn: (m) => warnLine(m) };
  const tty = Boolean(process.stdout.isTTY) && !process.env.CI;
  return {
    async task<T>(title: string, fn: (update: (detail: string) => void) => Promise<T>): Promise<T> {
      let result: T | undefined;
      let lastPlain = 0;
      await new Listr(
        [
          {
            title,
            task: async (_ctx, task): Promise<void> => {
              result = await fn((detail) => {
                // Plain output would print every update as a line; keep a few.
                if (!tty && Date.now() - lastPlain < 10_000) return;
                lastPlain = Date.now();
                task.output = redact(detail);
              });
            },
          },
        ],
        {
          renderer: tty ? 'default' : 'simple',
          rendererOptions: tty
            ? { timer: PRESET_TIMER, collapseErrors: false, showErrorMessage: false }
            : { timer: PRESET_TIMER, timestamp: PRESET_TIMESTAMP },
          exitOnError: true,
          registerSignalListeners: false,
          collectErrors: false,
        },
      ).run();
      return result as T;
    },
    warn: warnLine,
  };
}

function warnLine(message: string): void {
  process.stderr.write(`warning: ${redact(message)}\n`);
}
