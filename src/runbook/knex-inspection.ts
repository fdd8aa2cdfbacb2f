import { parse } from '@babel/parser';
import type { Node } from '@babel/types';
import { analyzeSql } from './sql-analysis.js';
import type { RiskCode } from './types.js';

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
  loadProblems: { line: number; column: number; message: string }[];
}

export interface InspectedRisk {
  code: RiskCode;
  message: string;
  /** 1-based line in the migration file. */
  line: number;
}

/** How knex would load the file: import() or require(), decided by knex as Node decides. */
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

const DEFAULT_CONTEXT: ModuleContext = { scope: 'commonjs', requireLoadsEsm: true };

export function inspectKnexMigration(
  source: string,
  fileName = 'migration.js',
  context: ModuleContext = DEFAULT_CONTEXT,
): KnexMigrationInspection {
  const typescript = /\.[cm]?ts$/.test(fileName);
  let program: Program;
  try {
    const file = parse(source, {
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

// ---------------------------------------------------------------------------
// A minimal view of Babel's AST: every node has a type, a location, children.

interface Program {
  body: AnyNode[];
}
type AnyNode = Node & Record<string, unknown>;

function isNode(value: unknown): value is AnyNode {
  return typeof value === 'object' && value !== null && typeof (value as Node).type === 'string';
}

function children(node: AnyNode): AnyNode[] {
  const out: AnyNode[] = [];
  for (const [key, value] of Object.entries(node)) {
    if (key === 'loc' || key.endsWith('Comments') || key === 'extra') continue;
    if (Array.isArray(value)) for (const v of value) if (isNode(v)) out.push(v);
    if (isNode(value)) out.push(value);
  }
  return out;
}

function lineOf(node: AnyNode): number {
  return node.loc?.start.line ?? 1;
}

/** The name of an identifier, a string literal, or a non-computed member's property. */
function nameOf(node: unknown): string | undefined {
  if (!isNode(node)) return undefined;
  if (node.type === 'Identifier') return node.name;
  if (node.type === 'StringLiteral') return node.value;
  return undefined;
}

function memberProperty(node: AnyNode): string | undefined {
  if (node.type !== 'MemberExpression' && node.type !== 'OptionalMemberExpression')
    return undefined;
  return node.computed && node.property.type !== 'StringLiteral'
    ? undefined
    : nameOf(node.property);
}

/** `exports.x`, `module.exports.x`: the exported name; `module.exports`: '*'. */
function commonJsTarget(node: AnyNode): string | undefined {
  if (node.type !== 'MemberExpression') return undefined;
  const object = node.object as AnyNode;
  const property = memberProperty(node);
  if (object.type === 'Identifier' && object.name === 'exports') return property;
  if (object.type === 'Identifier' && object.name === 'module' && property === 'exports')
    return '*';
  if (commonJsTarget(object) === '*') return property;
  return undefined;
}

// ---------------------------------------------------------------------------
// What the module exports: up, down, config, found in CommonJS and ESM forms.

interface Exports {
  get(name: string): AnyNode | undefined;
  /** Something is exported that cannot be read statically (`module.exports = make()`). */
  opaque: boolean;
  commonJs: AnyNode[];
  esm: AnyNode[];
}

function exportsOf(program: Program): Exports {
  const declared = new Map<string, AnyNode>();
  for (const statement of program.body) {
    if (statement.type === 'FunctionDeclaration' && statement.id)
      declared.set(statement.id.name, statement);
    const declaration = (
      statement.type === 'ExportNamedDeclaration' ? statement.declaration : statement
    ) as AnyNode | null;
    if (declaration?.type === 'VariableDeclaration') {
      for (const d of declaration.declarations) {
        if (d.id.type === 'Identifier' && d.init) declared.set(d.id.name, d.init as AnyNode);
      }
    }
    if (declaration?.type === 'FunctionDeclaration' && declaration.id)
      declared.set(declaration.id.name, declaration);
  }
  const resolve = (node: AnyNode): AnyNode => {
    let current = node;
    for (let i = 0; i < 5 && current.type === 'Identifier'; i++) {
      const next = declared.get(current.name);
      if (!next) break;
      current = next;
    }
    return unwrap(current);
  };
  const found = new Map<string, AnyNode>();
  let opaque = false;
  const commonJs: AnyNode[] = [];
  const esm: AnyNode[] = [];
  const fromObject = (object: AnyNode): void => {
    const resolved = resolve(object);
    if (resolved.type !== 'ObjectExpression') {
      opaque = true;
      return;
    }
    for (const property of resolved.properties) {
      if (property.type === 'SpreadElement') opaque = true;
      const name = 'key' in property ? nameOf(property.key) : undefined;
      if (!name) continue;
      if (property.type === 'ObjectMethod') found.set(name, property as AnyNode);
      else if (property.type === 'ObjectProperty')
        found.set(name, resolve(property.value as AnyNode));
    }
  };
  walk(program.body, (node) => {
    if (node.type === 'AssignmentExpression') {
      const target = commonJsTarget(node.left as AnyNode);
      if (target === '*') fromObject(node.right as AnyNode);
      else if (target) found.set(target, resolve(node.right as AnyNode));
      if (target) commonJs.push(node);
    }
    if (node.type === 'ExportNamedDeclaration' || node.type === 'ExportDefaultDeclaration') {
      esm.push(node);
    }
    if (node.type === 'ImportDeclaration' || node.type === 'ExportAllDeclaration') esm.push(node);
    return true;
  });
  for (const statement of program.body) {
    if (statement.type === 'ExportNamedDeclaration') {
      const declaration = statement.declaration as AnyNode | null;
      if (declaration?.type === 'FunctionDeclaration' && declaration.id)
        found.set(declaration.id.name, declaration);
      if (declaration?.type === 'VariableDeclaration') {
        for (const d of declaration.declarations) {
          if (d.id.type === 'Identifier' && d.init)
            found.set(d.id.name, resolve(d.init as AnyNode));
        }
      }
      for (const specifier of statement.specifiers) {
        if (specifier.type !== 'ExportSpecifier') continue;
        const name = nameOf(specifier.exported);
        if (name) found.set(name, resolve(specifier.local as AnyNode));
      }
    }
    if (statement.type === 'ExportDefaultDeclaration') fromObject(statement.declaration as AnyNode);
  }
  return { get: (name) => found.get(name), opaque, commonJs, esm };
}

/** `x as Foo`, `(x)`, `x satisfies Foo`: the expression itself. */
function unwrap(node: AnyNode): AnyNode {
  let current = node;
  while (
    [
      'TSAsExpression',
      'TSSatisfiesExpression',
      'ParenthesizedExpression',
      'TSNonNullExpression',
    ].includes(current.type)
  ) {
    current = current.expression as AnyNode;
  }
  return current;
}

function functionBody(node: AnyNode): AnyNode | undefined {
  if (
    [
      'FunctionDeclaration',
      'FunctionExpression',
      'ArrowFunctionExpression',
      'ObjectMethod',
    ].includes(node.type)
  )
    return node.body as AnyNode;
  return undefined;
}

function isEmptyFunction(node: AnyNode): boolean {
  const body = functionBody(node);
  return body?.type === 'BlockStatement' && (body.body as unknown[]).length === 0;
}

function declaresNoTransaction(config: AnyNode | undefined): boolean {
  if (config?.type !== 'ObjectExpression') return false;
  return config.properties.some(
    (p) =>
      p.type === 'ObjectProperty' &&
      nameOf(p.key) === 'transaction' &&
      p.value.type === 'BooleanLiteral' &&
      !p.value.value,
  );
}

/** Visit every node depth-first; `visit` returns false to skip a node's children. */
function walk(nodes: AnyNode[], visit: (node: AnyNode) => boolean): void {
  for (const node of nodes) if (visit(node)) walk(children(node), visit);
}

// ---------------------------------------------------------------------------
// Risks: knex's schema builder on existing tables, unbounded updates and
// deletes, and the SQL in knex.raw / schema.raw, read like a sql step's.

const BUILDER_RISKS: Record<string, { code: RiskCode; message: string; onExisting?: boolean }> = {
  dropTable: { code: 'drop', message: 'drops a table and its rows' },
  dropTableIfExists: { code: 'drop', message: 'drops a table and its rows' },
  dropColumn: { code: 'drop', message: 'drops a column and its data' },
  dropColumns: { code: 'drop', message: 'drops columns and their data' },
  dropSchema: { code: 'drop', message: 'drops a schema' },
  dropSchemaIfExists: { code: 'drop', message: 'drops a schema' },
  truncate: { code: 'truncate', message: 'deletes every row of a table' },
  alter: {
    code: 'column-type-change',
    message: 'alters a column (a type change rewrites the table under an ACCESS EXCLUSIVE lock)',
  },
  renameColumn: {
    code: 'rename',
    message: 'renames a column, which breaks running code that uses the old name',
  },
  renameTable: {
    code: 'rename',
    message: 'renames a table, which breaks running code that uses the old name',
  },
  index: {
    code: 'index-without-concurrently',
    message:
      'builds an index on an existing table without CONCURRENTLY: writes wait until it is built',
    onExisting: true,
  },
  unique: {
    code: 'index-without-concurrently',
    message:
      'adds a unique index on an existing table without CONCURRENTLY: writes wait until it is built',
    onExisting: true,
  },
  primary: {
    code: 'index-without-concurrently',
    message: 'adds a primary key on an existing table: writes wait while its index is built',
    onExisting: true,
  },
  dropNullable: {
    code: 'set-not-null',
    message: 'sets NOT NULL on an existing column (a full scan under an exclusive lock)',
    onExisting: true,
  },
  foreign: {
    code: 'constraint-validation',
    message: 'adds a foreign key on an existing table, validated under lock (no NOT VALID)',
    onExisting: true,
  },
};

const TABLE_BUILDERS = new Set(['alterTable', 'table', 'createTable', 'createTableIfNotExists']);

function upRisks(up: AnyNode): InspectedRisk[] {
  const risks: InspectedRisk[] = [];
  const body = functionBody(up) ?? up;
  const seen = new Set<string>();
  const chained = new WeakSet<AnyNode>();
  // The names knex goes by in up: its first parameter, and the usual ones.
  const param = (up.params as AnyNode[] | undefined)?.[0];
  const knexNames = new Set([
    'knex',
    'trx',
    'db',
    ...(param?.type === 'Identifier' ? [param.name] : []),
  ]);
  const add = (code: RiskCode, message: string, line: number): void => {
    const key = `${code}\u0000${message}\u0000${line}`;
    if (seen.has(key)) return;
    seen.add(key);
    risks.push({ code, message: `up ${message}`, line });
  };
  const visit = (node: AnyNode, onExisting: boolean): void => {
    // Code for another database client (sqlite, mysql ...) never runs on PostgreSQL.
    if (node.type === 'IfStatement' || node.type === 'ConditionalExpression') {
      const client = clientTest(node.test as AnyNode);
      visit(node.test as AnyNode, onExisting);
      if (client !== 'other') visit(node.consequent as AnyNode, onExisting);
      if (client !== 'pg' && node.alternate) visit(node.alternate as AnyNode, onExisting);
      return;
    }
    if (node.type === 'SwitchCase' && node.test && clientTest(node.test as AnyNode) === 'other') {
      return;
    }
    if (node.type === 'CallExpression' || node.type === 'OptionalCallExpression') {
      const callee = node.callee as AnyNode;
      const method = memberProperty(callee);
      if (method === 'raw') {
        const sql = literalText(node.arguments[0] as AnyNode | undefined);
        if (sql !== undefined) {
          for (const r of analyzeSql(sql).risks)
            add(r.code, `runs SQL that ${r.message}`, lineOf(node) + r.line - 1);
        }
      }
      const builder = method ? BUILDER_RISKS[method] : undefined;
      if (builder && (!builder.onExisting || onExisting))
        add(builder.code, builder.message, lineOf(node));
      if (!chained.has(node)) {
        const chain = callChain(node);
        for (const call of chain.calls) chained.add(call);
        const writes = chain.methods.find((m) => m === 'update' || m === 'del' || m === 'delete');
        const bounded = chain.methods.some((m) => /where|^(on|join|limit)$|join$/i.test(m));
        if (writes && !bounded && chain.root !== undefined && knexNames.has(chain.root)) {
          add(
            writes === 'update' ? 'update-all' : 'delete-all',
            `${writes === 'update' ? 'updates' : 'deletes'} every row of a table (no where)`,
            lineOf(node),
          );
        }
      }
      if (method && TABLE_BUILDERS.has(method)) {
        // The callback of alterTable/table works on an existing table; createTable's on a new one.
        const existing = method === 'alterTable' || method === 'table';
        visit(callee, onExisting);
        for (const arg of node.arguments as AnyNode[]) visit(arg, existing);
        return;
      }
    }
    for (const child of children(node)) visit(child, onExisting);
  };
  visit(body, false);
  return risks;
}

/** A string literal or a template literal (its `${…}` parts read as a name). */
function literalText(node: AnyNode | undefined): string | undefined {
  if (!node) return undefined;
  if (node.type === 'StringLiteral') return node.value;
  if (node.type === 'TemplateLiteral') {
    const quasis = node.quasis as { value: { cooked?: string | null; raw: string } }[];
    return quasis.map((q) => q.value.cooked ?? q.value.raw).join('x');
  }
  return undefined;
}

/**
 * A chain of calls such as `knex('t').where(...).update(...)`, outermost
 * first: the methods called, and the identifier it starts from (`knex` in
 * `knex('t')` or `knex.from('t')`).
 */
function callChain(outer: AnyNode): { calls: AnyNode[]; methods: string[]; root?: string } {
  const calls: AnyNode[] = [];
  const methods: string[] = [];
  let current: AnyNode | undefined = outer;
  while (current) {
    if (current.type === 'CallExpression' || current.type === 'OptionalCallExpression') {
      calls.push(current);
      const callee = current.callee as AnyNode;
      const name = memberProperty(callee);
      if (name === undefined) return { calls, methods, root: nameOf(callee) };
      methods.push(name);
      current = callee.object as AnyNode;
    } else if (current.type === 'MemberExpression' || current.type === 'OptionalMemberExpression') {
      current = current.object as AnyNode;
    } else if (current.type === 'Identifier') {
      return { calls, methods, root: current.name };
    } else break;
  }
  return { calls, methods };
}

const OTHER_CLIENTS = /sqlite|mysql|maria|mssql|sqlserver|oracle|oracledb|redshift|cockroach/i;
const POSTGRES = /^(pg|postgres|postgresql|pg-native)$|^pg\b|postgres/i;

/** Whether a condition tests for PostgreSQL, for another client, or for neither. */
function clientTest(node: AnyNode): 'pg' | 'other' | undefined {
  const invert = (t: 'pg' | 'other' | undefined) =>
    t === 'pg' ? 'other' : t === 'other' ? 'pg' : undefined;
  const classify = (text: string): 'pg' | 'other' | undefined =>
    OTHER_CLIENTS.test(text) ? 'other' : POSTGRES.test(text) ? 'pg' : undefined;
  switch (node.type) {
    case 'UnaryExpression':
      return node.operator === '!' ? invert(clientTest(node.argument as AnyNode)) : undefined;
    case 'ParenthesizedExpression':
      return clientTest(node.expression as AnyNode);
    case 'StringLiteral':
      return classify(node.value);
    case 'BinaryExpression': {
      const side = [node.left, node.right].find((s) => isNode(s) && s.type === 'StringLiteral') as
        AnyNode | undefined;
      const t = side ? clientTest(side) : undefined;
      if (node.operator === '===' || node.operator === '==') return t;
      if (node.operator === '!==' || node.operator === '!=') return invert(t);
      return undefined;
    }
    case 'LogicalExpression': {
      const left = clientTest(node.left as AnyNode);
      const right = clientTest(node.right as AnyNode);
      if (node.operator === '||') return left === right ? left : undefined;
      return left === 'other' || right === 'other' ? 'other' : (left ?? right);
    }
    case 'CallExpression': {
      const method = memberProperty(node.callee as AnyNode);
      if (method && ['includes', 'startsWith', 'endsWith', 'test', 'match'].includes(method)) {
        const arg = node.arguments[0] as AnyNode | undefined;
        if (arg?.type === 'StringLiteral') return classify(arg.value);
        if (arg?.type === 'RegExpLiteral') return classify(arg.pattern);
        const object = (node.callee as AnyNode).object as AnyNode;
        if (object.type === 'RegExpLiteral') return classify(object.pattern);
      }
      const name = method ?? nameOf(node.callee);
      return name ? classifyName(name) : undefined;
    }
    case 'Identifier':
      return classifyName(node.name);
    case 'MemberExpression':
      return classifyName(memberProperty(node) ?? '');
    default:
      return undefined;
  }
}

/** `isSqlite`, `isMySQL`, `isPg`, `usePostgres` ... */
function classifyName(name: string): 'pg' | 'other' | undefined {
  if (!/^(is|use|has)/i.test(name)) return undefined;
  if (OTHER_CLIENTS.test(name)) return 'other';
  if (/pg|postgres/i.test(name)) return 'pg';
  return undefined;
}

// ---------------------------------------------------------------------------
// Loading: knex imports a file in an ESM scope (and .mjs), requires it otherwise.

function moduleProblems(
  program: Program,
  exported: Exports,
  fileName: string,
  context: ModuleContext,
): KnexMigrationInspection['loadProblems'] {
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

function typescriptProblems(
  fileName: string,
  context: ModuleContext,
): KnexMigrationInspection['loadProblems'] {
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
