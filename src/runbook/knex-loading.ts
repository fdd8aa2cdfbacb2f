import type { Exports } from './knex-exports.js';
import { lineOf, nameOf, walk, type AnyNode, type Program } from './js-ast.js';

/**
 * How knex would load a migration, decided by knex as Node decides: it imports
 * a file in an ESM scope (and .mjs), requires it otherwise, and needs the
 * project's loader for TypeScript.
 */
export interface ModuleContext {
  /** The nearest package.json's `type` for `.js`/`.ts` (knex asks get-package-type, as Node does). */
  scope: 'module' | 'commonjs';
  /** The package.json that decided it, for the message; absent when none did. */
  scopeFile?: string;
  /** A TypeScript loader the project has, found from the migrations directory. */
  typescriptLoader?: 'tsx' | 'ts-node';
  /** This Node can `require()` a file written as an ES module (20.19+, 22.12+). */
  requireLoadsEsm: boolean;
}

/** Why knex could not load the file, at a 1-based line and column. */
export interface LoadProblem {
  line: number;
  column: number;
  message: string;
}

export function moduleProblems(
  program: Program,
  exported: Exports,
  fileName: string,
  context: ModuleContext,
): LoadProblem[] {
  const kind = fileName.endsWith('.mjs')
    ? 'module'
    : fileName.endsWith('.cjs')
      ? 'commonjs'
      : context.scope;
  const why =
    fileName.endsWith('.mjs') || fileName.endsWith('.cjs')
      ? `its extension is ${fileName.slice(fileName.lastIndexOf('.'))}`
      : context.scopeFile
        ? `${context.scopeFile} says "type": "${context.scope}"`
        : 'no package.json above it says "type": "module"';
  if (kind === 'module') {
    const usage = exported.commonJs[0] ?? freeRequire(program);
    if (!usage) return [];
    return [
      {
        line: lineOf(usage),
        column: (usage.loc?.start.column ?? 0) + 1,
        message: `it is written as CommonJS (exports, module.exports or require), but knex loads it as an ES module because ${why}, where that fails; rename it to .cjs, or write it as ESM (export async function up)`,
      },
    ];
  }
  const esm = exported.esm[0];
  if (!esm) return [];
  if (fileName.endsWith('.cjs') || !context.requireLoadsEsm) {
    return [
      {
        line: lineOf(esm),
        column: (esm.loc?.start.column ?? 0) + 1,
        message: `it is written as an ES module (import/export), but knex loads it with require() because ${why}${fileName.endsWith('.cjs') ? '' : `, which Node ${process.versions.node} refuses for ES module syntax`}; rename it to .mjs and add .mjs to loadExtensions, or write it as CommonJS (exports.up = ...)`,
      },
    ];
  }
  return [];
}

/** A `require(...)` call where no `require` is declared at the top level (ESM has none). */
function freeRequire(program: Program): AnyNode | undefined {
  const declaresRequire = program.body.some(
    (s) =>
      (s.type === 'VariableDeclaration' &&
        s.declarations.some((d) => d.id.type === 'Identifier' && d.id.name === 'require')) ||
      (s.type === 'ImportDeclaration' && s.specifiers.some((sp) => sp.local.name === 'require')),
  );
  if (declaresRequire) return undefined;
  let found: AnyNode | undefined;
  walk(program.body, (node) => {
    if (found) return false;
    if (node.type === 'CallExpression' && nameOf(node.callee) === 'require') found = node;
    return true;
  });
  return found;
}

export function typescriptProblems(fileName: string, context: ModuleContext): LoadProblem[] {
  const esm =
    fileName.endsWith('.mts') || (!fileName.endsWith('.cts') && context.scope === 'module');
  if (context.typescriptLoader === 'tsx') return [];
  if (context.typescriptLoader === 'ts-node' && !esm) return [];
  return [
    {
      line: 1,
      column: 1,
      message:
        context.typescriptLoader === 'ts-node'
          ? 'it is TypeScript loaded as an ES module, and the only TypeScript loader found (ts-node) is registered for CommonJS; install tsx in the project (npm install --save-dev tsx)'
          : 'it is TypeScript, and no TypeScript loader (tsx or ts-node) is installed where the migrations are; install one in the project (npm install --save-dev tsx)',
    },
  ];
}
