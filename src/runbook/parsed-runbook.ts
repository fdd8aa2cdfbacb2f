import type { ParsedRunbook, ParsedStep, TextSource, Timeouts } from './types.js';
import type { RunbookSpec, StepSpec } from './schema.js';
import type { YamlLocator } from './yaml-locations.js';

export const DEFAULT_KNEX_TABLE = 'knex_migrations';
/** knex's own default (MigrationsLoader's DEFAULT_LOAD_EXTENSIONS), so lifeboat sees the files knex sees. */
export const DEFAULT_KNEX_EXTENSIONS = [
  '.co',
  '.coffee',
  '.eg',
  '.iced',
  '.js',
  '.cjs',
  '.litcoffee',
  '.ls',
  '.ts',
];

/**
 * Turn the validated YAML data into a ParsedRunbook, recording where each
 * step and each piece of text is written so later problems can name a line.
 */
export function buildParsedRunbook(
  spec: RunbookSpec,
  file: string,
  locator: YamlLocator,
): ParsedRunbook {
  return {
    name: spec.name,
    description: spec.description,
    file,
    policy:
      spec.policy === undefined
        ? undefined
        : {
            maxAgeMs: spec.policy.maxAge,
            copies: spec.policy.copies,
            requireOffsite: spec.policy.requireOffsite,
          },
    defaults: timeouts(spec.defaults),
    steps: spec.steps.map((step, index) => buildParsedStep(step, ['steps', index], locator)),
  };
}

function timeouts(spec: { lockTimeout?: number; statementTimeout?: number } | undefined): Timeouts {
  return { lockTimeoutMs: spec?.lockTimeout, statementTimeoutMs: spec?.statementTimeout };
}

export function buildParsedStep(
  spec: StepSpec,
  at: (string | number)[],
  locator: YamlLocator,
): ParsedStep {
  const common = {
    id: spec.id,
    description: spec.description,
    at: locator.locate(at),
    timeouts: timeouts(spec),
  };
  const inline = (text: string, path: (string | number)[]) => ({
    text,
    origin: locator.textOrigin([...at, ...path]),
  });
  const source = (
    text: string | undefined,
    fileRef: string | undefined,
    key: string,
  ): TextSource | undefined => {
    if (text !== undefined) return { from: 'inline', ...inline(text, ['sql', key]) };
    if (fileRef !== undefined)
      return { from: 'file', path: fileRef, at: locator.locate([...at, 'sql', `${key}File`]) };
    return undefined;
  };
  if (spec.sql !== undefined) {
    const { up, upFile, down, downFile, verify, transaction } = spec.sql;
    return {
      ...common,
      kind: 'sql',
      // runbook-structure guarantees exactly one of up and upFile.
      up: source(up, upFile, 'up') as TextSource,
      down: source(down, downFile, 'down'),
      verify: verify === undefined ? undefined : inline(verify, ['sql', 'verify']),
      transaction,
    };
  }
  if (spec.check !== undefined) {
    return {
      ...common,
      kind: 'check',
      query: inline(spec.check.query, ['check', 'query']),
      message: spec.check.message,
    };
  }
  if (spec.shell !== undefined) {
    const { up, down, verify, timeout, secrets } = spec.shell;
    return {
      ...common,
      kind: 'shell',
      up,
      down,
      verify: verify === undefined ? undefined : inline(verify, ['shell', 'verify']),
      timeoutMs: timeout,
      ...(secrets ? { secrets } : {}),
    };
  }
  // runbook-structure guarantees exactly one kind, so this is the knex step.
  const knex = spec.knex as NonNullable<StepSpec['knex']>;
  return {
    ...common,
    kind: 'knex',
    directory: knex.directory,
    directoryAt: locator.locate([...at, 'knex', 'directory']),
    tableName: knex.tableName ?? DEFAULT_KNEX_TABLE,
    schemaName: knex.schemaName,
    loadExtensions: knex.loadExtensions ?? DEFAULT_KNEX_EXTENSIONS,
    verify: new Map(
      Object.entries(knex.verify ?? {}).map(([name, query]) => [
        name,
        inline(query, ['knex', 'verify', name]),
      ]),
    ),
  };
}
