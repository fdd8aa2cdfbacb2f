import type { Argv, CommandModule } from 'yargs';
import { globalOptions, type GlobalArgs } from '../cli/context.js';
import { exitCodes } from '../cli/help.js';
import { emit, runCommand } from '../cli/output.js';
import { planInit, writeInit, type InitPlan } from '../init.js';

export const initCommand: CommandModule<object, GlobalArgs> = {
  command: 'init',
  describe:
    'Write a commented lifeboat.config.yaml and a first runbook here (running your knex migrations, if any)',
  builder: (y: Argv) =>
    globalOptions(y)
      .example('$0 init', 'in a project: a config and runbooks/upgrade.yaml; never overwrites')
      .example(
        '$0 init --json',
        'the same, and print what was written and what was found in the knexfile',
      )
      .epilog(
        [
          'A knexfile (knexfile.js, .cjs, .mjs or .ts) is read as text, never run: its migrations',
          'directory (default migrations/), tableName, schemaName and loadExtensions go into a',
          'runbook lifeboat.upgrade.yaml beside it, with one knex step per directory.',
          'Without knex: runbooks/upgrade.yaml (lifeboat/upgrade.yaml when runbooks/ exists).',
          'If any of these files (or any lifeboat.config.*) exists, nothing is written.',
          '',
          exitCodes(0, 2),
        ].join('\n'),
      ),
  handler: (argv) =>
    runCommand(
      argv,
      async () => {
        const plan = await planInit(process.cwd());
        await writeInit(plan);
        emit(argv, { init: initDocument(plan) }, initLines(plan));
      },
      undefined,
      { kind: 'abort', stopping: 'the init' },
    ),
};

function nextCommands(plan: InitPlan): string[] {
  return [
    `npx lifeboat plan ${plan.runbook} --offline`,
    'export DATABASE_URL=postgres://USER@HOST:5432/DATABASE',
    'npx lifeboat doctor',
    'npx lifeboat backup',
    `npx lifeboat run ${plan.runbook}`,
  ];
}

function initDocument(plan: InitPlan) {
  return {
    written: plan.files.map((f) => ({ path: f.path, kind: f.kind })),
    config: plan.files.find((f) => f.kind === 'config')!.path,
    runbook: plan.runbook,
    knex: plan.knex
      ? {
          knexfile: plan.knex.knexfile,
          directories: plan.knex.directories,
          tableName: plan.knex.tableName,
          schemaName: plan.knex.schemaName ?? null,
          notes: plan.knex.notes,
        }
      : null,
    notes: plan.notes,
    next: nextCommands(plan),
  };
}

function initLines(plan: InitPlan): string[] {
  const knex = plan.knex;
  const ran = knex?.directories ?? [];
  const lines = [
    `Wrote ${plan.files[0]!.path}: where backups go and how fresh they must be (every key commented)`,
    ran.length > 0
      ? `Wrote ${plan.runbook}: runs the knex migrations in ${ran.map((d) => `${d.directory}/ (${d.migrations} file${d.migrations === 1 ? '' : 's'}, ${d.loadExtensions.join(' ')})`).join(', ')}`
      : `Wrote ${plan.runbook}: an example runbook (one harmless check, and commented examples of each step kind)`,
  ];
  if (knex) {
    lines.push(
      `Read ${knex.knexfile}: knex table ${knex.schemaName ? `${knex.schemaName}.` : ''}${knex.tableName}`,
    );
  }
  for (const note of [...(knex?.notes ?? []), ...plan.notes]) lines.push(`  note: ${note}`);
  lines.push(
    'Keep the backups out of git: echo .lifeboat/ >> .gitignore',
    'Next:',
    ...nextCommands(plan).map((c) => `  ${c}`),
  );
  return lines;
}
