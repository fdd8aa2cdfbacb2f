import type { Argv, CommandModule } from 'yargs';
import { commandContext, globalOptions, type GlobalArgs } from '../cli/context.js';
import { exitCodes } from '../cli/help.js';
import { emit, runCommand } from '../cli/output.js';
import {
  STEP_INTERRUPTS,
  lockWait,
  parseResolutions,
  printingReport,
  runSessionOptions,
  type RunSessionArgs,
} from '../cli/run-session.js';
import type { ReportSpec } from '../cli/reports.js';
import { describeTarget } from '../target.js';
import { runReportLines } from '../cli/run-report.js';
import { previewRun, type RunPreview } from '../run/preview.js';
import { describeHolder } from '../run/lock.js';
import { renderPlan } from '../runbook/render-plan.js';
import { showDryRun } from '../cli/dry-run.js';
import { runRunbook } from '../run/runner.js';

interface RunArgs extends GlobalArgs, RunSessionArgs {
  runbook: string;
  backup: 'auto' | 'new' | 'existing';
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
    runSessionOptions(globalOptions(y))
      .positional('runbook', { type: 'string', demandOption: true, describe: 'The runbook (YAML)' })
      .option('backup', {
        choices: ['auto', 'new', 'existing'] as const,
        default: 'auto' as const,
        describe:
          'auto: reuse a fresh verified backup or take one; new: always take one; existing: never take one',
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
