import { analyzeSql } from './sql-analysis.js';
import type { RiskCode } from './types.js';
import {
  children,
  functionBody,
  isNode,
  lineOf,
  memberProperty,
  nameOf,
  type AnyNode,
} from './js-ast.js';

// The risk lint of a knex migration's `up`: knex's schema builder on existing
// tables, unbounded updates and deletes, and the SQL in knex.raw / schema.raw,
// read like a sql step's. Code for other database clients is left out.

/** A risk found in `up`. */
export interface InspectedRisk {
  code: RiskCode;
  message: string;
  /** 1-based line in the migration file. */
  line: number;
}

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

export function upRisks(up: AnyNode): InspectedRisk[] {
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
