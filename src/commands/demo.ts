import type { Argv, CommandModule } from 'yargs';
import { globalOptions, type GlobalArgs } from '../cli/context.js';
import { exitCodes } from '../cli/help.js';
import { terminalProgress } from '../cli/progress.js';
import { emit, runCommand } from '../cli/output.js';
import { runReportLines } from '../cli/run-report.js';
import { runDemo, type DemoResult } from '../demo.js';
import { InterruptedError } from '../errors.js';
import { formatBytes, formatDuration } from '../units.js';

const DEMO_STOPPED =
  'Interrupted: the demo was stopped; its temporary PostgreSQL and files were removed.';

interface DemoArgs extends GlobalArgs {
  freeze: boolean;
}

export const demoCommand: CommandModule<object, DemoArgs> = {
  command: 'demo',
  describe:
    'A throwaway PostgreSQL, sample data, and a guarded run whose third step fails and rolls back',
  builder: (y: Argv) =>
    globalOptions(y)
      .option('freeze', {
        type: 'boolean',
        default: false,
        describe:
          'A frozen run whose failed upgrade dropped a column: rolled back by restoring the backup',
      })
      .example('$0 demo', 'watch backup → verification → steps → failure → rollback → proof')
      .example(
        '$0 demo --freeze',
        'the last rung: a step with no down, undone by restoring the backup',
      )
      .epilog(exitCodes(0, 1, 2)),
  handler: (argv) =>
    runCommand(
      argv,
      async (signal) => {
        const started = Date.now();
        const result = await runDemo(terminalProgress({ json: argv.json, quiet: argv.quiet }), {
          freeze: argv.freeze,
          signal,
        });
        if (signal.aborted) throw new InterruptedError(DEMO_STOPPED);
        emit(argv, { demo: result }, demoLines(result, Date.now() - started));
      },
      undefined,
      { kind: 'abort', stopping: 'the demo' },
    ),
};

function demoLines(d: DemoResult, ms: number): string[] {
  const m = d.manifest;
  const v = d.verification;
  const failed = d.run.failure;
  const undone =
    d.run.rollback?.outcomes.filter((o) => o.outcome === 'undone').map((o) => o.id) ?? [];
  return [
    '',
    'lifeboat demo: a failed upgrade, undone with proof',
    `  1. PostgreSQL ${d.serverVersion} started in a temporary directory (stopped and removed again).`,
    `  2. A sample shop: ${Object.entries(d.rows)
      .map(([t, n]) => `${n} ${t}`)
      .join(', ')}.`,
    m
      ? `  3. Backup ${m.id}: ${formatBytes(m.dump.bytes)} dumped at one snapshot, ${m.fingerprints.tables.length} tables fingerprinted.`
      : '  3. Backup: (not found)',
    v
      ? `  4. Verified: restored into ${v.scratch.database} in ${formatDuration(v.restoreMs)}; ${v.compared.tables} tables, ${v.compared.sequences} sequences and the schema matched.`
      : '  4. Verified: (no record)',
    `  5. Runbook ${d.run.runbook}, step by step:`,
    ...runReportLines(d.run)
      .slice(2)
      .map((l) => `   ${l}`),
    failed ? `  6. ${failed.stepId} failed: ${failed.error}` : '  6. (no step failed)',
    d.run.restoredBy
      ? `  7. ${d.run.rollback?.blockers.map((b) => `${b.stepId} cannot be undone (${b.reason})`).join('; ')}: the run held the database frozen since its backup, so lifeboat restored backup ${d.run.restoredBy.backupId} beside it, proved it by fingerprints, and swapped it in; the failed database was kept as ${d.run.restoredBy.replacedAs}.`
      : `  7. lifeboat undid ${undone.join(', ') || 'nothing'} (newest first) and proved the database equal to its state before the run.`,
    `  \`lifeboat run\` would have exited 5: a step failed and the run was rolled back. Demo took ${formatDuration(ms)}.`,
  ];
}
