import type { RiskCode } from './types.js';
import { lineLocator, scanSql } from './sql-tokens.js';
import { StatementWords } from './sql-words.js';
import { statementRisks } from './sql-risks.js';

/** A finding at a 1-based line and column of the analysed text. */
export interface SqlFinding {
  line: number;
  column: number;
  message: string;
}

export interface SqlRiskFinding extends SqlFinding {
  code: RiskCode;
}

export interface SqlAnalysis {
  readonly statementCount: number;
  /** Statements PostgreSQL refuses inside a transaction block. */
  readonly nonTransactional: readonly SqlFinding[];
  /** BEGIN, COMMIT, ROLLBACK … written in the script itself. */
  readonly transactionControl: readonly SqlFinding[];
  readonly risks: readonly SqlRiskFinding[];
  /** A string, quoted name, dollar quote or comment that never ends; the rest was not analysed. */
  readonly unterminated?: SqlFinding;
}

// A runbook's scripts are analysed when it is parsed and again when it is resolved.
const analysed = new Map<string, SqlAnalysis>();

/**
 * Analyse a SQL script without running it: comments, literals and quoted
 * names are ignored. The same text gives the same (shared) analysis: read it,
 * never change it.
 */
export function analyzeSql(sql: string): SqlAnalysis {
  let analysis = analysed.get(sql);
  if (analysis === undefined) {
    if (analysed.size >= 4096) analysed.clear();
    analysis = analyse(sql);
    analysed.set(sql, analysis);
  }
  return analysis;
}

function analyse(sql: string): SqlAnalysis {
  const scan = scanSql(sql);
  const nonTransactional: SqlFinding[] = [];
  const controlling: SqlFinding[] = [];
  const risks: SqlRiskFinding[] = [];
  const lineAndColumn = lineLocator(sql);
  const created = new Set<string>();
  for (const statement of scan.statements) {
    const at = lineAndColumn(statement.offset);
    const words = new StatementWords(statement);
    const reason = nonTransactionalReason(words);
    if (reason !== undefined) {
      nonTransactional.push({
        ...at,
        message: `${reason} cannot run inside a transaction block`,
      });
    }
    const control = transactionControl(words);
    if (control !== undefined) {
      controlling.push({ ...at, message: `${control} controls the transaction` });
    }
    for (const risk of statementRisks(words, created)) risks.push({ ...at, ...risk });
  }
  const analysis = {
    statementCount: scan.statements.length,
    nonTransactional,
    transactionControl: controlling,
    risks,
  };
  if (scan.unterminated === undefined) return analysis;
  const { what, offset } = scan.unterminated;
  return {
    ...analysis,
    unterminated: { ...lineAndColumn(offset), message: `unterminated ${what}` },
  };
}

/** The script's statements as separate texts, to run a non-transactional script one statement at a time. */
export function splitSqlStatements(sql: string): string[] {
  return scanSql(sql).statements.map((s) => sql.slice(s.offset, s.end).trim());
}

/** The clear cases from the PostgreSQL docs ("cannot be executed inside a transaction block"). */
function nonTransactionalReason(words: StatementWords): string | undefined {
  const [first, second] = [words.word(0), words.word(1)];
  switch (first) {
    case 'VACUUM':
      return 'VACUUM';
    case 'CREATE': {
      const index = words.skip(1, ['UNIQUE']);
      if (words.word(index) === 'INDEX' && words.word(index + 1) === 'CONCURRENTLY') {
        return 'CREATE INDEX CONCURRENTLY';
      }
      return second === 'DATABASE' || second === 'TABLESPACE' ? `CREATE ${second}` : undefined;
    }
    case 'DROP':
      if (second === 'INDEX' && words.word(2) === 'CONCURRENTLY') return 'DROP INDEX CONCURRENTLY';
      return second === 'DATABASE' || second === 'TABLESPACE' ? `DROP ${second}` : undefined;
    case 'REINDEX': {
      // Options in parentheses are not top-level words; skip the parentheses themselves.
      const target = words.tokens.slice(1).find((t) => t.kind === 'word')?.value;
      if (words.has('CONCURRENTLY')) return 'REINDEX … CONCURRENTLY';
      return target === 'SCHEMA' || target === 'DATABASE' || target === 'SYSTEM'
        ? `REINDEX ${target}`
        : undefined;
    }
    case 'ALTER':
      if (second === 'SYSTEM') return 'ALTER SYSTEM';
      if (second === 'DATABASE' && words.hasSequence(['SET', 'TABLESPACE'])) {
        return 'ALTER DATABASE … SET TABLESPACE';
      }
      if (second === 'TABLE' && words.has('DETACH') && words.has('CONCURRENTLY')) {
        return 'DETACH PARTITION … CONCURRENTLY';
      }
      return undefined;
    case 'CLUSTER': {
      const args = words.tokens.slice(1).filter((t) => t.kind !== 'punctuation');
      return args.every((t) => t.kind === 'word' && t.value === 'VERBOSE')
        ? 'CLUSTER without a table'
        : undefined;
    }
    default:
      return undefined;
  }
}

function transactionControl(words: StatementWords): string | undefined {
  const first = words.word(0);
  switch (first) {
    case 'BEGIN':
    case 'COMMIT':
    case 'END':
    case 'ABORT':
      return first;
    case 'START':
      return words.word(1) === 'TRANSACTION' ? 'START TRANSACTION' : undefined;
    case 'ROLLBACK':
      // ROLLBACK TO SAVEPOINT stays inside the transaction.
      return words.has('TO') ? undefined : 'ROLLBACK';
    case 'PREPARE':
      return words.word(1) === 'TRANSACTION' ? 'PREPARE TRANSACTION' : undefined;
    default:
      return undefined;
  }
}
