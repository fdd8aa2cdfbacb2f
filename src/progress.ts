/**
 * How the library tells about long work without printing: the CLI gives a
 * listr2-backed implementation, tests and --json give a silent one.
 */
export interface Progress {
  /** Run one named piece of work; `update` reports how far it got (bytes, tables). */
  task<T>(title: string, fn: (update: (detail: string) => void) => Promise<T>): Promise<T>;
  warn(message: string): void;
}

export const silentProgress: Progress = {
  task: (_title, fn) => fn(() => undefined),
  warn: () => undefined,
};
