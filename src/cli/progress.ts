import cliProgress from 'cli-progress';
import {
  Listr,
  ListrLogLevels,
  ListrLogger,
  PRESET_TIMER,
  PRESET_TIMESTAMP,
  ProcessOutput,
} from 'listr2';
import type { Amount, Progress } from '../progress.js';
import { silentProgress } from '../progress.js';
import { redact } from '../secrets.js';

/**
 * listr2 behind the library's Progress, always on stderr (stdout holds the
 * result): a live task list with progress bars on a terminal, plain
 * timestamped lines with ASCII markers otherwise (CI, pipes, files), and in
 * GitHub Actions one collapsible group per phase. Nothing but warnings under
 * --json or --quiet.
 */
export function terminalProgress(options: { json: boolean; quiet?: boolean }): Progress {
  // Warnings are logs: on stderr even under --json, whose stdout holds the one document.
  if (options.json || options.quiet) return { ...silentProgress, warn: (m) => warnLine(m) };
  const tty = Boolean(process.stderr.isTTY) && !process.env.CI;
  const groups = process.env.GITHUB_ACTIONS === 'true';
  return {
    async task<T>(title: string, fn: (update: Update) => Promise<T>): Promise<T> {
      let result: T | undefined;
      let lastPlain = 0;
      if (groups) process.stderr.write(`::group::${redact(title)}\n`);
      try {
        await new Listr(
          [
            {
              title,
              task: async (_ctx, task): Promise<void> => {
                result = await fn((detail, amount) => {
                  // Plain output prints every update as a line; keep one in ten seconds.
                  if (!tty && Date.now() - lastPlain < 10_000) return;
                  lastPlain = Date.now();
                  task.output = redact(tty && amount ? `${bar(amount)} ${detail}` : detail);
                });
              },
            },
          ],
          {
            renderer: tty ? 'default' : 'simple',
            rendererOptions: tty
              ? {
                  timer: PRESET_TIMER,
                  collapseErrors: false,
                  showErrorMessage: false,
                  logger: stderrLogger(false),
                }
              : {
                  timer: PRESET_TIMER,
                  timestamp: PRESET_TIMESTAMP,
                  logger: stderrLogger(true),
                  // The renderer hands these to its logger: plain text, ASCII markers.
                  icon: PLAIN_ICONS,
                  color: PLAIN_COLORS,
                },
            exitOnError: true,
            registerSignalListeners: false,
            collectErrors: false,
          },
        ).run();
      } finally {
        if (groups) process.stderr.write('::endgroup::\n');
      }
      return result as T;
    },
    warn: warnLine,
  };
}

type Update = (detail: string, amount?: Amount) => void;

/** The ASCII markers of plain output: a log file or a CI console shows them as they are. */
const PLAIN_ICONS: Partial<Record<ListrLogLevels, string>> = {
  [ListrLogLevels.STARTED]: '..',
  [ListrLogLevels.COMPLETED]: 'ok',
  [ListrLogLevels.FAILED]: 'FAIL',
  [ListrLogLevels.SKIPPED]: 'skip',
  [ListrLogLevels.OUTPUT]: '  >',
  [ListrLogLevels.TITLE]: '->',
  [ListrLogLevels.RETRY]: 'retry',
  [ListrLogLevels.ROLLBACK]: 'undo',
  [ListrLogLevels.PAUSED]: 'wait',
};

const PLAIN_COLORS = Object.fromEntries(
  Object.values(ListrLogLevels).map((level) => [level, (text?: string) => text ?? '']),
) as Partial<Record<ListrLogLevels, (text?: string) => string>>;

/** Both of listr2's streams go to stderr. */
function stderrLogger(plain: boolean): ListrLogger<ListrLogLevels> {
  const logger = new ListrLogger<ListrLogLevels>({
    processOutput: new ProcessOutput(process.stderr, process.stderr),
    useIcons: true,
    toStderr: plain ? Object.values(ListrLogLevels) : [],
  });
  return logger;
}

const BAR_SIZE = 24;
const BAR = {
  barsize: BAR_SIZE,
  barCompleteString: cliProgress.Presets.shades_classic.barCompleteChar.repeat(BAR_SIZE),
  barIncompleteString: cliProgress.Presets.shades_classic.barIncompleteChar.repeat(BAR_SIZE),
  barGlue: '',
};

/** `█████░░░░  42%`: how far, drawn by cli-progress's bar formatter. */
function bar(amount: Amount): string {
  const share = amount.total > 0 ? Math.min(Math.max(amount.done / amount.total, 0), 1) : 0;
  const percent = `${Math.floor(share * 100)}%`.padStart(4);
  return `${cliProgress.Format.BarFormat(share, BAR)} ${percent}`;
}

function warnLine(message: string): void {
  process.stderr.write(`warning: ${redact(message)}\n`);
}
