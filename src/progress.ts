import { formatDuration } from './units.js';

/**
 * How the library tells about long work without printing: the CLI gives a
 * listr2-backed implementation, tests and --json give a silent one.
 */
export interface Progress {
  /**
   * Run one named piece of work; `update` reports how far it got, in words
   * (bytes, rows, time left) and, when the whole is known, as an amount a
   * terminal draws as a bar.
   */
  task<T>(
    title: string,
    fn: (update: (detail: string, amount?: Amount) => void) => Promise<T>,
  ): Promise<T>;
  warn(message: string): void;
}

/** How much of a whole is done, in any unit (bytes, rows). */
export interface Amount {
  done: number;
  total: number;
}

export const silentProgress: Progress = {
  task: (_title, fn) => fn(() => undefined),
  warn: () => undefined,
};

/**
 * `1.2 GiB of 3.4 GiB restored, about 40s left`: words for how far a piece of
 * work got, with the time left estimated from the pace so far, and the
 * amount a terminal draws as a bar.
 */
export function howFar(
  done: number,
  total: number,
  elapsedMs: number,
  show: (n: number) => string,
  verb: string,
): [string, Amount] {
  const share = total > 0 ? Math.min(done / total, 1) : 0;
  const left =
    share > 0.01 && share < 1
      ? `, about ${formatDuration((elapsedMs / share) * (1 - share))} left`
      : '';
  return [`${show(done)} of ${show(total)} ${verb}${left}`, { done, total }];
}
