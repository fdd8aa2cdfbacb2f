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
