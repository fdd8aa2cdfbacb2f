import type { Argv, CommandModule } from 'yargs';
import { commandContext, globalOptions, type GlobalArgs } from '../cli/context.js';
import { exitCodes } from '../cli/help.js';
import { emit, runCommand } from '../cli/output.js';
import { writeFile } from 'node:fs/promises';
import type { ReportSpec } from '../cli/reports.js';
import { BadInputError, GuardRefusedError } from '../errors.js';
import { gateJunit } from '../report.js';
import { describeTarget } from '../target.js';
import { runGate, type GateVerdict } from '../gate.js';
import { loadRunbook } from '../runbook/load.js';
import { formatDuration, parseDuration } from '../units.js';

interface GateArgs extends GlobalArgs {
  junit?: string;
  maxAge?: string;
  copies?: number;
  requireOffsite?: boolean;
  runbook?: string;
  rehearsed: boolean;
  drilled?: string;
}

export const gateCommand: CommandModule<object, GateArgs> = {
  command: 'gate',
  describe: 'CI gate: exit 0 only if a fresh, verified backup of the target exists',
  builder: (y: Argv) =>
    globalOptions(y)
      .option('max-age', {
        type: 'string',
        describe: 'Oldest acceptable backup (e.g. 6h, 1d; default: policy, 24h)',
      })
      .option('copies', { type: 'number', describe: 'Intact copies required (default: policy, 1)' })
      .option('require-offsite', {
        type: 'boolean',
        describe: 'Require an intact copy in an s3:// destination (default: policy.requireOffsite)',
      })
      .option('runbook', {
        type: 'string',
        describe: 'Also require that every pending step of this runbook can be undone',
      })
      .option('junit', {
        type: 'string',
        describe: 'Also write the checks as JUnit XML to this file',
      })
      .option('rehearsed', {
        type: 'boolean',
        default: false,
        describe: 'With --runbook: require a passing rehearsal of this runbook on the backup',
      })
      .option('drilled', {
        type: 'string',
        describe:
          'Require a passing disaster-recovery drill (lifeboat drill) of the target at most this old, e.g. 30d',
      })
      .example(
        '$0 gate --runbook upgrade.yaml --rehearsed',
        'the backup was rehearsed with this exact runbook',
      )
      .example(
        '$0 gate --max-age 6h',
        'fail the pipeline unless a verified backup is at most 6 hours old',
      )
      .example('$0 gate --copies 2 --json', 'require two intact copies; print the verdict as JSON')
      .example('$0 gate --drilled 30d', 'and a disaster-recovery drill passed in the last 30 days')
      .example('$0 gate --require-offsite', 'one of the intact copies must be in object storage')
      .epilog(exitCodes(0, 2, 3)),
  handler: (argv) => {
    const spec: ReportSpec = { command: 'gate' };
    return runCommand(
      argv,
      async () => {
        const ctx = await commandContext(argv, {
          maxAge: argv.maxAge,
          copies: argv.copies,
          requireOffsite: argv.requireOffsite,
        });
        Object.assign(spec, { config: ctx.config, target: describeTarget(ctx.target) });
        const policy = {
          maxAgeMs: ctx.config.maxAgeMs,
          copies: ctx.config.copies,
          requireOffsite: ctx.config.requireOffsite,
        };
        if (argv.rehearsed && !argv.runbook) {
          throw new BadInputError(
            '--rehearsed needs --runbook FILE: a rehearsal is of one runbook.',
          );
        }
        const drilledWithinMs =
          argv.drilled === undefined ? undefined : drilledWithin(argv.drilled);
        const runbook = argv.runbook ? await loadRunbook(argv.runbook) : undefined;
        const started = Date.now();
        let verdict: GateVerdict;
        try {
          verdict = await runGate({
            ...ctx,
            policy,
            runbook,
            requireRehearsal: argv.rehearsed,
            drilledWithinMs,
          });
        } catch (err) {
          if (argv.junit && err instanceof GuardRefusedError) {
            await writeJunit(
              argv.junit,
              describeTarget(ctx.target),
              err.details.map((r) => ({ name: r, failure: r })),
              started,
            );
          }
          throw err;
        }
        if (argv.junit)
          await writeJunit(argv.junit, verdict.target, passedChecks(verdict, argv), started);
        const b = verdict.backup!;
        spec.backup = { id: b.id };
        return emit(argv, { gate: verdict }, [
          `Gate passed for ${verdict.target}`,
          `  backup   ${b.id} (taken ${b.createdAt}, verified ${b.verifiedAt})`,
          `  copies   ${b.intactCopies.join(', ')} (${policy.copies} required)`,
          `  policy   max age ${formatDuration(policy.maxAgeMs)}`,
          `  changes  ${verdict.changesSinceBackup?.note ?? 'unknown'}`,
          ...(argv.drilled ? [`  drilled  a passing drill in the last ${argv.drilled}`] : []),
          ...(runbook
            ? [
                `  runbook  ${runbook.name}: every pending step can be undone${argv.rehearsed ? ', rehearsed on this backup' : ''}`,
              ]
            : []),
        ]);
      },
      spec,
    );
  },
};

function drilledWithin(text: string): number {
  const ms = parseDuration(text);
  if (typeof ms === 'string')
    throw new BadInputError(`--drilled: "${text}" is not a duration: ${ms}.`);
  return ms;
}

/** What a passing gate checked, one JUnit test case each. */
function passedChecks(v: GateVerdict, argv: GateArgs): { name: string }[] {
  const checks = [
    { name: `a backup of ${v.identity.database} on server ${v.identity.systemIdentifier} exists` },
    { name: `it is at most ${formatDuration(v.policy.maxAgeMs)} old` },
    { name: 'its latest verification (restore and compare) passed' },
    { name: `it is intact in ${v.policy.copies} destination(s)` },
  ];
  if (v.policy.requireOffsite) checks.push({ name: 'one intact copy is off-site (s3://)' });
  if (argv.runbook) checks.push({ name: `every pending step of ${argv.runbook} can be undone` });
  if (argv.rehearsed)
    checks.push({ name: `${argv.runbook} was rehearsed on it, rollback included` });
  if (argv.drilled)
    checks.push({ name: `a disaster-recovery drill passed in the last ${argv.drilled}` });
  return checks;
}

async function writeJunit(
  file: string,
  target: string,
  checks: { name: string; failure?: string }[],
  started: number,
): Promise<void> {
  await writeFile(
    file,
    gateJunit({
      ok: checks.every((c) => !c.failure),
      target,
      checks,
      seconds: (Date.now() - started) / 1000,
    }),
  );
}
