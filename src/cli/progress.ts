import cliProgress from 'cli-progress';
import {
  Listr,
  ListrDefaultRendererLogLevels,
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
  const inGroup = async <T>(title: string, work: () => Promise<T>): Promise<T> => {
    if (groups) process.stderr.write(`::group::${redact(title)}\n`);
    try {
      return await work();
    } finally {
      if (groups) process.stderr.write('::endgroup::\n');
    }
  };
  if (!tty) {
    const logger = plainLines();
    return {
      task: (title, fn) => inGroup(title, () => plainTask(logger, title, fn)),
      warn: warnLine,
    };
  }
  return {
    async task<T>(title: string, fn: (update: Update) => Promise<T>): Promise<T> {
      let result: T | undefined;
      await inGroup(title, () =>
        new Listr(
          [
            {
              title,
              task: async (_ctx, task): Promise<void> => {
                result = await fn((detail, amount) => {
                  task.output = redact(amount ? `${bar(amount)} ${detail}` : detail);
                });
              },
            },
          ],
          {
            renderer: 'default',
            rendererOptions: {
              timer: PRESET_TIMER,
              collapseErrors: false,
              showErrorMessage: false,
              logger: stderrLogger(),
            },
            exitOnError: true,
            registerSignalListeners: false,
            collectErrors: false,
          },
        ).run(),
      );
      return result as T;
    },
    warn: warnLine,
  };
}

/**
 * Plain output (CI, pipes, files) is a line per event, nothing redrawn: the
 * lines listr2's simple renderer prints, written by one listr2 logger for the
 * whole command instead of a task list built and torn down for every task
 * (a third of a millisecond a step, 6 % of a 300-step run).
 */
async function plainTask<T>(
  logger: ListrLogger<ListrLogLevels>,
  title: string,
  fn: (update: Update) => Promise<T>,
): Promise<T> {
  logger.log(ListrLogLevels.STARTED, title);
  const started = Date.now();
  let lastPlain = 0;
  try {
    const result = await fn((detail) => {
      // Every update would be a line; keep one in ten seconds.
      if (Date.now() - lastPlain < 10_000) return;
      lastPlain = Date.now();
      logger.log(ListrLogLevels.OUTPUT, redact(detail));
    });
    logger.log(ListrLogLevels.COMPLETED, title, {
      suffix: { ...PRESET_TIMER, args: [Date.now() - started] },
    });
    return result;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    logger.log(ListrLogLevels.FAILED, title, {
      suffix: { field: `${ListrLogLevels.FAILED}: ${redact(message)}`, format: () => plain },
    });
    throw err;
  }
}

/** On stderr: ASCII markers, no colours, a timestamp before each line. */
function plainLines(): ListrLogger<ListrLogLevels> {
  return new ListrLogger<ListrLogLevels>({
    processOutput: new ProcessOutput(process.stderr, process.stderr),
    useIcons: true,
    toStderr: Object.values(ListrLogLevels),
    icon: PLAIN_ICONS,
    color: PLAIN_COLORS,
    fields: { prefix: [PRESET_TIMESTAMP] },
  });
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

const plain = (text?: string): string => text ?? '';
const PLAIN_COLORS = Object.fromEntries(
  Object.values(ListrLogLevels).map((level) => [level, plain]),
) as Partial<Record<ListrLogLevels, (text?: string) => string>>;

/** The task list's logger: both of listr2's streams go to stderr. */
function stderrLogger(): ListrLogger<ListrDefaultRendererLogLevels> {
  return new ListrLogger<ListrDefaultRendererLogLevels>({
    processOutput: new ProcessOutput(process.stderr, process.stderr),
    useIcons: true,
    toStderr: [],
  });
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
