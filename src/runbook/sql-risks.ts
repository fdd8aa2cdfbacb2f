import type { RiskCode } from './types.js';
import { StatementWords } from './sql-words.js';

export interface StatementRisk {
  code: RiskCode;
  message: string;
}

/** Objects whose DROP loses data (views, indexes, functions can be recreated from code). */
const DATA_OBJECTS: Record<string, string> = {
  TABLE: 'the table and its rows',
  SCHEMA: 'the schema and everything in it',
  DATABASE: 'the whole database',
  SEQUENCE: 'the sequence and its current value',
  TYPE: 'the type',
  DOMAIN: 'the domain',
};

/** Defaults that make ADD COLUMN rewrite every row (non-volatile defaults are instant since PG 11). */
const VOLATILE_DEFAULTS = [
  'RANDOM',
  'GEN_RANDOM_UUID',
  'UUID_GENERATE_V1',
  'UUID_GENERATE_V4',
  'CLOCK_TIMESTAMP',
  'TIMEOFDAY',
  'NEXTVAL',
];

/**
 * Risks of one statement. `created` holds the tables created earlier in the
 * same script: locking or emptying a table nobody else can see yet is harmless.
 * CREATE TABLE adds to it.
 */
export function statementRisks(words: StatementWords, created: Set<string>): StatementRisk[] {
  switch (words.word(0)) {
    case 'CREATE':
      return createRisks(words, created);
    case 'DROP':
      return dropRisks(words, created);
    case 'ALTER':
      return words.word(1) === 'TABLE' ? alterTableRisks(words, created) : renameRisks(words);
    case 'TRUNCATE': {
      const tables = words.names(words.skip(1, ['TABLE'], ['ONLY'])).filter((t) => !created.has(t));
      return tables.length === 0
        ? []
        : [{ code: 'truncate', message: `TRUNCATE ${tables.join(', ')} deletes every row` }];
    }
    case 'DELETE':
    case 'UPDATE':
    case 'WITH':
      return unboundedWriteRisks(words, created);
    case 'VACUUM':
      return words.hasAnywhere('FULL') ? [rewrite('VACUUM FULL')] : [];
    case 'CLUSTER':
      return [rewrite('CLUSTER')];
    default:
      return [];
  }
}

function rewrite(what: string): StatementRisk {
  return {
    code: 'table-rewrite',
    message: `${what} rewrites the table under an ACCESS EXCLUSIVE lock (reads and writes wait)`,
  };
}

function createRisks(words: StatementWords, created: Set<string>): StatementRisk[] {
  const tableAt = words.skip(1, ['GLOBAL'], ['LOCAL'], ['TEMP'], ['TEMPORARY'], ['UNLOGGED']);
  if (words.word(tableAt) === 'TABLE') {
    const table = words.name(words.skip(tableAt + 1, ['IF', 'NOT', 'EXISTS']));
    if (table !== undefined) created.add(table.name);
    return [];
  }
  const indexAt = words.skip(1, ['UNIQUE']);
  if (words.word(indexAt) !== 'INDEX' || words.word(indexAt + 1) === 'CONCURRENTLY') return [];
  const on = words.find(['ON'], indexAt);
  const table = on < 0 ? undefined : words.name(words.skip(on + 1, ['ONLY']));
  if (table === undefined || created.has(table.name)) return [];
  return [
    {
      code: 'index-without-concurrently',
      message: `CREATE INDEX on ${table.name} blocks writes to it until the index is built; use CREATE INDEX CONCURRENTLY (outside a transaction)`,
    },
  ];
}

function dropRisks(words: StatementWords, created: Set<string>): StatementRisk[] {
  const typeAt = words.skip(1, ['MATERIALIZED'], ['FOREIGN']);
  const type = words.word(typeAt) ?? '';
  const names = words
    .names(words.skip(typeAt + 1, ['IF', 'EXISTS']))
    .filter((n) => !(type === 'TABLE' && created.has(n)));
  const lost = DATA_OBJECTS[type];
  const cascade = words.has('CASCADE');
  if (names.length === 0 || (lost === undefined && !cascade)) return [];
  const what = `DROP ${type} ${names.join(', ')}`;
  const parts = [lost === undefined ? what : `${what} deletes ${lost}`];
  if (cascade) parts.push('CASCADE also drops every object that depends on it');
  return [{ code: 'drop', message: parts.join('; ') }];
}

function alterTableRisks(words: StatementWords, created: Set<string>): StatementRisk[] {
  const table = words.name(words.skip(2, ['IF', 'EXISTS'], ['ONLY']));
  if (table === undefined || created.has(table.name)) return [];
  const t = table.name;
  const risks: StatementRisk[] = [];
  for (const action of words.splitAtCommas(table.next)) {
    const verb = action.word(0);
    if (verb === 'DROP' && action.word(1) !== 'CONSTRAINT') {
      const column = action.name(action.skip(1, ['COLUMN'], ['IF', 'EXISTS']));
      risks.push({
        code: 'drop',
        message: `DROP COLUMN ${t}.${column?.name ?? '?'} deletes the column and its data`,
      });
    } else if (verb === 'ALTER') {
      const column = action.name(action.skip(1, ['COLUMN']));
      const rest = column?.next ?? 1;
      if (action.hasSequence(['TYPE'], rest)) {
        risks.push({
          code: 'column-type-change',
          message: `changing the type of ${t}.${column?.name ?? '?'} usually rewrites the table under an ACCESS EXCLUSIVE lock (reads and writes wait)`,
        });
      } else if (action.hasSequence(['SET', 'NOT', 'NULL'], rest)) {
        risks.push({
          code: 'set-not-null',
          message: `SET NOT NULL on ${t}.${column?.name ?? '?'} scans the whole table under an ACCESS EXCLUSIVE lock; a validated CHECK (… IS NOT NULL) constraint lets PostgreSQL 12+ skip the scan`,
        });
      }
    } else if (verb === 'ADD') {
      risks.push(...addRisks(action, t));
    } else if (verb === 'RENAME' && action.word(1) !== 'CONSTRAINT') {
      risks.push({
        code: 'rename',
        message: `renaming in ${t} breaks running code that still uses the old name`,
      });
    } else if (
      verb === 'SET' &&
      ['TABLESPACE', 'LOGGED', 'UNLOGGED'].includes(action.word(1) ?? '')
    ) {
      risks.push(rewrite(`SET ${action.word(1) ?? ''} on ${t}`));
    }
  }
  return risks;
}

const CONSTRAINT_KINDS = ['CHECK', 'FOREIGN', 'UNIQUE', 'PRIMARY', 'EXCLUDE'];

function addRisks(action: StatementWords, table: string): StatementRisk[] {
  const kindAt = action.word(1) === 'CONSTRAINT' ? 3 : 1;
  const kind = action.word(kindAt);
  if (kind !== undefined && CONSTRAINT_KINDS.includes(kind)) {
    if (action.hasSequence(['NOT', 'VALID']) || action.hasSequence(['USING', 'INDEX'])) return [];
    if (kind === 'CHECK' || kind === 'FOREIGN') {
      return [
        {
          code: 'constraint-validation',
          message: `adding a ${kind === 'CHECK' ? 'CHECK' : 'FOREIGN KEY'} constraint to ${table} scans the whole table while holding a lock; add it NOT VALID, then VALIDATE CONSTRAINT`,
        },
      ];
    }
    return [
      {
        code: 'index-without-concurrently',
        message: `adding a ${kind} constraint to ${table} builds an index while blocking writes; CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT … USING INDEX`,
      },
    ];
  }
  const defaultAt = action.find(['DEFAULT']);
  const volatileDefault =
    defaultAt >= 0 && VOLATILE_DEFAULTS.includes(action.word(defaultAt + 1) ?? '');
  const storedGenerated = action.has('GENERATED') && action.has('STORED');
  if (!volatileDefault && !storedGenerated) return [];
  return [
    rewrite(
      `ADD COLUMN with a ${volatileDefault ? 'volatile default' : 'stored generated value'} on ${table}`,
    ),
  ];
}

/** ALTER <view, schema, type, …> … RENAME: code using the old name breaks. Index renames are harmless. */
function renameRisks(words: StatementWords): StatementRisk[] {
  const object = words.word(1);
  if (object === 'INDEX' || !words.has('RENAME') || words.has('CONSTRAINT')) return [];
  return [
    {
      code: 'rename',
      message: `ALTER ${object ?? ''} … RENAME breaks running code that still uses the old name`,
    },
  ];
}

/** DELETE or UPDATE without a top-level WHERE touches every row. */
function unboundedWriteRisks(words: StatementWords, created: Set<string>): StatementRisk[] {
  const verbAt = words.find(['DELETE', 'UPDATE', 'INSERT', 'SELECT', 'MERGE']);
  const verb = words.word(verbAt);
  if (verb !== 'DELETE' && verb !== 'UPDATE') return [];
  const tableAt =
    verb === 'DELETE'
      ? words.skip(verbAt + 1, ['FROM'], ['ONLY'])
      : words.skip(verbAt + 1, ['ONLY']);
  const table = words.name(tableAt);
  if (table === undefined || created.has(table.name) || words.has('WHERE', verbAt)) return [];
  return verb === 'DELETE'
    ? [{ code: 'delete-all', message: `DELETE without WHERE deletes every row of ${table.name}` }]
    : [
        {
          code: 'update-all',
          message: `UPDATE without WHERE rewrites every row of ${table.name} (long row locks, table bloat)`,
        },
      ];
}
