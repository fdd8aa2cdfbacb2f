import type { Argv, CommandModule } from 'yargs';
import { commandContext, globalOptions, type GlobalArgs } from '../cli/context.js';
import { exitCodes } from '../cli/help.js';
import { emit, runCommand } from '../cli/output.js';
import type { InterruptPolicy } from '../cli/interrupt.js';
import type { ReportSpec } from '../cli/reports.js';
import { withClient } from '../db.js';
import { requirePrivileges } from '../privileges.js';
import { describeTarget } from '../target.js';
import { runReportLines } from '../cli/run-report.js';
import { BadInputError, LifeboatError } from '../errors.js';
import type { Resolutions } from '../run/rollback.js';
import { previewRun, type RunPreview } from '../run/preview.js';
import { describeHolder } from '../run/lock.js';
import { renderPlan } from '../runbook/render-plan.js';
import { showDryRun } from '../cli/dry-run.js';
import type { RunReport } from '../run/report-types.js';
import { runRunbook } from '../run/runner.js';
import { parseDuration } from '../units.js';

interface RunArgs extends GlobalArgs {
  runbook: string;
  backup: 'auto' | 'new' | 'existing';
  lockWait: string;
  resolve: string[];
  terminateStale: boolean;
  freeze: boolean;
  rehearse: boolean;
  jobs?: number;
  scratchUrl?: string;
  dryRun: boolean;
}

export const runCommandModule: CommandModule<object, RunArgs> = {
  command: 'run <runbook>',
  describe: 'Guard, then apply the runbook step by step with checkpoints and automatic rollback',
  builder: (y: Argv) =>
    globalOptions(y)
      .positional('runbook', { type: 'string', demandOption: true, describe: 'The runbook (YAML)' })
      .option('backup', {
        choices: ['auto', 'new', 'existing'] as const,
        default: 'auto' as const,
        describe:
          'auto: reuse a fresh verified backup or take one; new: always take one; existing: never take one',
      })
      .option('lock-wait', {
        type: 'string',
        default: '0s',
        describe: 'How long to wait for another run to finish',
      })
      .option('terminate-stale', {
        type: 'boolean',
        default: false,
        describe:
          "A stopped run's work still running on the server (a CREATE INDEX CONCURRENTLY): end it instead of waiting for it before deciding its step in doubt",
      })
      .option('resolve', {
        type: 'string',
        array: true,
        default: [] as string[],
        describe: 'Decide a step left in doubt by a crash: STEP=applied or STEP=not-applied',
      })
      .option('freeze', {
        type: 'boolean',
        default: false,
        describe:
          'Hold the database read-only for every other session from before the backup to the end of the run',
      })
      .option('rehearse', {
        type: 'boolean',
        default: false,
        describe:
          'First run the steps and their rollback on a copy restored from the backup; refuse (exit 3) if that fails',
      })
      .option('jobs', {
        type: 'number',
        describe: 'Parallel pg_dump/pg_restore jobs for the guard backup',
      })
      .option('dry-run', {
        type: 'boolean',
        default: false,
        describe:
          'Say what would happen, in order, and which backup would guard it; change nothing',
      })
      .option('scratch-url', {
        type: 'string',
        describe: 'Server for the verification scratch database',
      })
      .example(
        '$0 run runbooks/add-status.yaml',
        'back up, verify, then apply; roll back by itself on failure',
      )
      .example(
        '$0 run upgrade.yaml --backup existing',
        'refuse unless a fresh verified backup already exists',
      )
      .example(
        '$0 run upgrade.yaml --dry-run',
        'the lock, the backup that would guard it, the steps',
      )
      .epilog(exitCodes(0, 2, 3, 4, 5, 6, 7)) as unknown as Argv<RunArgs>,
  handler: (argv) => {
    const spec: ReportSpec = { command: 'run' };
    return runCommand(
      argv,
      async (signal) => {
        const ctx = await commandContext(argv, { jobs: argv.jobs, scratchUrl: argv.scratchUrl });
        if (argv.dryRun) {
          const preview = await previewRun({
            ...ctx,
            runbookFile: argv.runbook,
            backup: argv.backup,
            freeze: argv.freeze,
            rehearse: argv.rehearse,
          });
          return showDryRun(argv, { dryRun: preview }, runPreviewLines(preview), {
            wouldExit: preview.wouldExit,
            why: runRefusal(preview),
          });
        }
        Object.assign(spec, { config: ctx.config, target: describeTarget(ctx.target) });
        // The journal and the fingerprints that prove a rollback: refused before anything runs.
        await withClient(ctx.target, (c) => requirePrivileges(c, ['read', 'journal'], 'A run'));
        const report = await printingReport(argv, spec, () =>
          runRunbook({
            ...ctx,
            runbookFile: argv.runbook,
            backup: argv.backup,
            lockWaitMs: lockWait(argv.lockWait),
            resolutions: parseResolutions(argv.resolve),
            freeze: argv.freeze,
            rehearse: argv.rehearse,
            terminateStale: argv.terminateStale,
            signal,
          }),
        );
        return emit(argv, { run: report }, runReportLines(report));
      },
      spec,
      STEP_INTERRUPTS,
    );
  },
};

/**
 * A failed run still shows its step-by-step record before the error; either
 * way its reports name the backup that guarded it.
 */
export async function printingReport(
  argv: GlobalArgs,
  spec: ReportSpec,
  fn: () => Promise<RunReport>,
): Promise<RunReport> {
  try {
    const report = await fn();
    if (report.backupId) spec.backup = { id: report.backupId };
    return report;
  } catch (err) {
    const data =
      err instanceof LifeboatError ? (err.data as Partial<RunReport> | undefined) : undefined;
    if (typeof data?.backupId === 'string') spec.backup = { id: data.backupId };
    if (data?.runId !== undefined && data.steps && !argv.json) {
      process.stdout.write(`${runReportLines(data as RunReport).join('\n')}\n`);
    }
    throw err;
  }
}

export function lockWait(text: string): number {
  const ms = parseDuration(text, { zero: true });
  if (typeof ms === 'string')
    throw new BadInputError(`--lock-wait: "${text}" is not a duration (write 30s, 5m).`);
  return ms;
}

export function parseResolutions(items: string[]): Resolutions {
  const out: Resolutions = {};
  for (const item of items) {
    const m = /^([a-z0-9][a-z0-9_/.-]*)=(applied|not-applied)$/.exec(item);
    if (!m)
      throw new BadInputError(`--resolve: "${item}" should read STEP=applied or STEP=not-applied.`);
    out[m[1]!] = m[2] as 'applied' | 'not-applied';
  }
  return out;
}

/** Ctrl-C during a run or rollback: the steps stop at the next safe point, each checkpointed. */
export const STEP_INTERRUPTS: InterruptPolicy = {
  kind: 'safe-point',
  first:
    'interrupt: stopping at the next safe point (after the current step), then rolling back as a failure would.',
  later:
    'interrupt: lifeboat is finishing the current step or its rollback, each checkpointed; stopping now would leave a step in doubt. It ends by itself; `lifeboat status` shows where it is.',
};

/** A dry run of `run`, in the order the run would go. */
export function runPreviewLines(p: RunPreview): string[] {
  const b = p.backup;
  return [
    `Dry run: lifeboat run ${p.runbook} on ${p.target}`,
    `  1. lock     ${p.lock ? `held by ${describeHolder(p.lock)}: the run would exit 7` : 'free: the run would take it'}`,
    ...(p.privileges.length > 0
      ? p.privileges.map((g) => `     refused  ${g.missing}: ${g.fix}`)
      : []),
    ...(p.freeze
      ? ['  2. freeze   other sessions read-only from before the backup to the end of the run']
      : []),
    `  ${p.freeze ? 3 : 2}. backup   ${
      b.action === 'reuse'
        ? `would be guarded by verified backup ${b.id}`
        : b.action === 'take'
          ? `would take and verify a new backup: ${b.because[0] ?? ''}`
          : `REFUSED (exit 3): ${b.because.join('; ')}`
    }`,
    ...(p.rehearse
      ? [
          '     rehearse the steps and their rollback on that backup first; a failure refuses the run',
        ]
      : []),
    p.resumes ? `     resumes run ${p.resumes}, after its last checkpoint` : '     a new run',
    '  steps, in order:',
    ...renderPlan(p.plan).map((l) => `  ${l}`),
  ];
}

function runRefusal(p: RunPreview): string[] {
  if (p.privileges.length > 0)
    return [
      'the role lacks privileges the run needs',
      ...p.privileges.map((g) => `${g.missing}: ${g.fix}`),
    ];
  if (p.plan.refusals.length > 0)
    return [`runbook ${p.runbook} does not fit this database's journal`, ...p.plan.refusals];
  if (p.lock) return [`another run holds the lock: ${describeHolder(p.lock)}`];
  if (p.backup.action === 'refuse') return p.backup.because;
  return [];
}
