import { createRequire } from 'node:module';
import type { Program } from './js-ast.js';
import { declaresNoTransaction, exportsOf, isEmptyFunction } from './knex-exports.js';
import {
  moduleProblems,
  typescriptProblems,
  type LoadProblem,
  type ModuleContext,
} from './knex-loading.js';
import { upRisks, type InspectedRisk } from './knex-risks.js';

// The parser is large: loaded when a runbook first has a knex migration to read, not by every command.
const require = createRequire(import.meta.url);
let parser: typeof import('@babel/parser') | undefined;

export type { InspectedRisk } from './knex-risks.js';
export type { ModuleContext } from './knex-loading.js';

/**
 * A static look at a knex migration's source, parsed with a real JavaScript
 * and TypeScript parser and never run: planning (and the CI gate) must not
 * execute migration code. It finds what `plan` shows (has a down, runs in a
 * transaction, risks in `up`) and whether knex could load the file the way
 * the project's knex would.
 */
export interface KnexMigrationInspection {
  hasDown: boolean;
  /** No `down` at all: knex refuses to run such a migration ("must have both an up and down"). */
  downMissing: boolean;
  transaction: boolean;
  risks: InspectedRisk[];
  /** Why knex could not load the file as the project's knex would; empty when it can. */
  loadProblems: LoadProblem[];
}

const DEFAULT_CONTEXT: ModuleContext = { scope: 'commonjs', requireLoadsEsm: true };

export function inspectKnexMigration(
  source: string,
  fileName = 'migration.js',
  context: ModuleContext = DEFAULT_CONTEXT,
): KnexMigrationInspection {
  const typescript = /\.[cm]?ts$/.test(fileName);
  let program: Program;
  try {
    parser ??= require('@babel/parser') as typeof import('@babel/parser');
    const file = parser.parse(source, {
      sourceType: 'unambiguous',
      plugins: typescript ? ['typescript'] : [],
      errorRecovery: true,
      allowReturnOutsideFunction: true,
      allowAwaitOutsideFunction: true,
    });
    const first = file.errors?.[0];
    if (first) throw first;
    program = file.program as unknown as Program;
  } catch (err) {
    const loc = (err as { loc?: { line: number; column: number } }).loc;
    return {
      hasDown: false,
      downMissing: false,
      transaction: true,
      risks: [],
      loadProblems: [
        {
          line: loc?.line ?? 1,
          column: (loc?.column ?? 0) + 1,
          message: `it cannot be parsed, so knex could not load it: ${(err as Error).message.replace(/ \(\d+:\d+\)$/, '')}`,
        },
      ],
    };
  }
  const exported = exportsOf(program);
  const down = exported.get('down');
  const up = exported.get('up');
  return {
    hasDown: down !== undefined && !isEmptyFunction(down),
    downMissing: down === undefined && !exported.opaque,
    transaction: !declaresNoTransaction(exported.get('config')),
    risks: up ? upRisks(up) : [],
    loadProblems: typescript
      ? typescriptProblems(fileName, context)
      : moduleProblems(program, exported, fileName, context),
  };
}
