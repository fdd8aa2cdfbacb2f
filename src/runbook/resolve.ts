import path from 'node:path';
import type {
  ParsedKnexStep,
  ParsedRunbook,
  ParsedSqlStep,
  ParsedStep,
  Problem,
  Risk,
  Runbook,
  SqlScript,
  Step,
  TextOrigin,
  TextSource,
  Timeouts,
} from './types.js';
import { checkSqlScript, risksOf } from './sql-checks.js';
import { inspectKnexMigration, type ModuleContext } from './knex-inspection.js';
import { stepChecksum } from './checksum.js';

/** A shell step without `timeout` is stopped after this long. */
export const DEFAULT_SHELL_TIMEOUT_MS = 10 * 60_000;

export interface KnexMigrationFile {
  /** File name, as knex records it. */
  name: string;
  /** Absolute path. */
  file: string;
  text: string;
  /** How knex would load it (default: CommonJS scope, no TypeScript loader). */
  context?: ModuleContext;
}

/** What loadRunbook read from disk, handed to the pure resolver. */
export interface RunbookInputs {
  /** Absolute path of the runbook's directory, symlinks resolved. */
  directory: string;
  /** Contents of `upFile`/`downFile` references, keyed by the path as written. */
  files: ReadonlyMap<string, string>;
  /** Each knex step's migration files in knex's order, keyed by step id. */
  knexMigrations: ReadonlyMap<string, readonly KnexMigrationFile[]>;
}

export interface ResolveResult {
  runbook?: Runbook;
  problems: Problem[];
}

/**
 * Combine a parsed runbook with the files it references into the Runbook the
 * core runs: SQL from files checked like inline SQL, transaction modes
 * decided, knex directories expanded, timeouts merged, checksums computed.
 */
export function resolveRunbook(parsed: ParsedRunbook, inputs: RunbookInputs): ResolveResult {
  const problems: Problem[] = [];
  const steps = parsed.steps.flatMap((step) => resolveStep(step, parsed, inputs, problems));
  problems.push(...sharedKnexDirectories(parsed));
  if (problems.length > 0) return { problems };
  return {
    runbook: {
      name: parsed.name,
      description: parsed.description,
      file: parsed.file,
      directory: inputs.directory,
      policy: parsed.policy,
      steps,
    },
    problems,
  };
}

/** Two knex steps over one directory and table would run each migration twice. */
function sharedKnexDirectories(parsed: ParsedRunbook): Problem[] {
  const seen = new Map<string, string>();
  const problems: Problem[] = [];
  for (const step of parsed.steps) {
    if (step.kind !== 'knex') continue;
    const key = `${path.normalize(step.directory)}\u0000${step.schemaName ?? ''}.${step.tableName}`;
    const first = seen.get(key);
    if (first) {
      problems.push({
        ...step.directoryAt,
        message: `step ${first} already runs the migrations in ${step.directory}; each would run twice`,
      });
    } else seen.set(key, step.id);
  }
  return problems;
}

function mergeTimeouts(defaults: Timeouts, own: Timeouts): Timeouts {
  return {
    lockTimeoutMs: own.lockTimeoutMs ?? defaults.lockTimeoutMs,
    statementTimeoutMs: own.statementTimeoutMs ?? defaults.statementTimeoutMs,
  };
}

function resolveStep(
  step: ParsedStep,
  parsed: ParsedRunbook,
  inputs: RunbookInputs,
  problems: Problem[],
): Step[] {
  const common = {
    id: step.id,
    description: step.description,
    at: step.at,
    timeouts: mergeTimeouts(parsed.defaults, step.timeouts),
  };
  switch (step.kind) {
    case 'sql':
      return resolveSqlStep(step, common, parsed, inputs, problems);
    case 'check':
      return [
        {
          ...common,
          kind: 'check',
          query: step.query.text,
          message: step.message ?? `check "${step.id}" did not hold`,
          checksum: stepChecksum('check', [step.query.text]),
          risks: [],
        },
      ];
    case 'shell':
      return [
        {
          ...common,
          kind: 'shell',
          up: step.up,
          down: step.down,
          verify: step.verify?.text,
          timeoutMs: step.timeoutMs ?? DEFAULT_SHELL_TIMEOUT_MS,
          // The environment, not the content: giving a step a secret is not an edit of it.
          secrets: step.secrets ?? [],
          checksum: stepChecksum('shell', [step.up, step.down, step.verify?.text]),
          risks: [
            {
              code: 'opaque-command',
              message: 'lifeboat cannot see what a shell command changes; review it and its down',
            },
          ],
        },
      ];
    case 'knex':
      return expandKnexStep(step, common, parsed, inputs, problems);
  }
}

type Common = Pick<Step, 'id' | 'description' | 'at' | 'timeouts'>;

function resolveSqlStep(
  step: ParsedSqlStep,
  common: Common,
  parsed: ParsedRunbook,
  inputs: RunbookInputs,
  problems: Problem[],
): Step[] {
  const script = (role: 'up' | 'down', source: TextSource) => {
    const text = textOf(source, parsed, inputs, problems);
    if (text === undefined) return undefined;
    const checked = checkSqlScript(role, text.text, text.origin, step.transaction);
    problems.push(...checked.problems);
    const resolved: SqlScript = {
      text: text.text,
      transaction: checked.transaction,
      origin: text.origin,
    };
    return { resolved, risks: risksOf(checked.analysis, text.origin) };
  };
  const up = script('up', step.up);
  const down = step.down === undefined ? undefined : script('down', step.down);
  if (up === undefined || (step.down !== undefined && down === undefined)) return [];
  const verify = step.verify?.text;
  return [
    {
      ...common,
      kind: 'sql',
      up: up.resolved,
      down: down?.resolved,
      verify,
      checksum: stepChecksum('sql', [up.resolved.text, down?.resolved.text, verify]),
      risks: up.risks,
    },
  ];
}

function textOf(
  source: TextSource,
  parsed: ParsedRunbook,
  inputs: RunbookInputs,
  problems: Problem[],
): { text: string; origin: TextOrigin } | undefined {
  if (source.from === 'inline') return { text: source.text, origin: source.origin };
  const text = inputs.files.get(source.path);
  if (text === undefined) {
    problems.push({ ...source.at, message: `${source.path} was not read` });
    return undefined;
  }
  const file = path.join(path.dirname(parsed.file), source.path);
  return { text, origin: { file, line: 1, column: 1, linesMatch: true } };
}

function expandKnexStep(
  step: ParsedKnexStep,
  common: Common,
  parsed: ParsedRunbook,
  inputs: RunbookInputs,
  problems: Problem[],
): Step[] {
  const migrations = inputs.knexMigrations.get(step.id) ?? [];
  if (migrations.length === 0) {
    problems.push({
      ...step.directoryAt,
      message: `no migration files (${step.loadExtensions.join(', ')}) in ${step.directory}`,
    });
  }
  const displayDirectory = path.join(path.dirname(parsed.file), step.directory);
  for (const [name, query] of step.verify) {
    if (!migrations.some((m) => m.name === name)) {
      problems.push({
        ...query.origin,
        message: `verify names ${name}, which is not a migration in ${step.directory}`,
      });
    }
  }
  return migrations.map((migration): Step => {
    const verify = step.verify.get(migration.name)?.text;
    const inspection = inspectKnexMigration(migration.text, migration.name, migration.context);
    const where = path.join(displayDirectory, migration.name);
    for (const p of inspection.loadProblems) problems.push({ file: where, ...p });
    if (inspection.downMissing) {
      problems.push({
        file: where,
        line: 1,
        column: 1,
        message:
          'exports no down, and knex refuses to run a migration without one; export a down (an empty one counts as "no down" in the plan)',
      });
    }
    return {
      ...common,
      id: `${step.id}/${migration.name}`,
      kind: 'knex-migration',
      group: step.id,
      name: migration.name,
      file: migration.file,
      directory: path.join(inputs.directory, step.directory),
      tableName: step.tableName,
      schemaName: step.schemaName,
      loadExtensions: step.loadExtensions,
      hasDown: inspection.hasDown,
      transaction: inspection.transaction,
      ...(verify === undefined ? {} : { verify }),
      // The verify query counts only where there is one, so adding none changes no checksum.
      checksum: stepChecksum(
        'knex-migration',
        verify === undefined ? [migration.text] : [migration.text, verify],
      ),
      risks: inspection.risks.map((r): Risk => ({
        code: r.code,
        message: r.message,
        where: `${where}:${r.line}`,
      })),
    };
  });
}
