/**
 * A small PostgreSQL lexer, just enough to split a script into statements and
 * to read each statement's keywords while ignoring comments, string literals,
 * dollar-quoted bodies and quoted identifiers. It follows the server's rules
 * (nested block comments, E'' escapes, $tag$ quotes, `BEGIN ATOMIC` bodies as
 * psql splits them); it does not parse SQL.
 */

export type SqlTokenKind =
  'word' | 'quoted-identifier' | 'string' | 'number' | 'parameter' | 'punctuation' | 'operator';

export interface SqlToken {
  kind: SqlTokenKind;
  /** Words upper-cased; quoted identifiers without quotes; other tokens as written. */
  value: string;
  offset: number;
  /** Parenthesis depth within its statement (0 = top level). */
  depth: number;
}

export interface SqlStatement {
  tokens: SqlToken[];
  /** Offset of the first token. */
  offset: number;
  /** Offset of the terminating semicolon, or the script's length. */
  end: number;
}

export interface Unterminated {
  what: 'string' | 'quoted identifier' | 'dollar-quoted string' | 'block comment';
  offset: number;
}

export interface SqlScan {
  statements: SqlStatement[];
  unterminated?: Unterminated;
}

const IDENT_START = /[A-Za-z_\u0080-\uffff]/;
const IDENT_PART = /[A-Za-z0-9_$\u0080-\uffff]/;
const DOLLAR_TAG = /\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/y;

interface RawToken {
  kind: SqlTokenKind;
  value: string;
  offset: number;
}

function lex(sql: string): { tokens: RawToken[]; unterminated?: Unterminated } {
  const tokens: RawToken[] = [];
  let i = 0;
  const n = sql.length;
  const push = (kind: SqlTokenKind, value: string, offset: number): void => {
    tokens.push({ kind, value, offset });
  };
  while (i < n) {
    const c = sql[i] as string;
    const next = sql[i + 1];
    if (/\s/.test(c)) {
      i++;
    } else if (c === '-' && next === '-') {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? n : end + 1;
    } else if (c === '/' && next === '*') {
      const start = i;
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (sql.startsWith('/*', i)) {
          depth++;
          i += 2;
        } else if (sql.startsWith('*/', i)) {
          depth--;
          i += 2;
        } else {
          i++;
        }
      }
      if (depth > 0) return { tokens, unterminated: { what: 'block comment', offset: start } };
    } else if (c === "'") {
      // E'...' strings take backslash escapes; the lexer saw the E as a word just before.
      const prev = tokens[tokens.length - 1];
      const escapes =
        prev !== undefined && prev.kind === 'word' && prev.value === 'E' && prev.offset + 1 === i;
      const end = scanQuoted(sql, i, "'", escapes);
      if (end < 0) return { tokens, unterminated: { what: 'string', offset: i } };
      push('string', '', i);
      i = end;
    } else if (c === '"') {
      const end = scanQuoted(sql, i, '"', false);
      if (end < 0) return { tokens, unterminated: { what: 'quoted identifier', offset: i } };
      push('quoted-identifier', sql.slice(i + 1, end - 1).replaceAll('""', '"'), i);
      i = end;
    } else if (c === '$' && next !== undefined && /[0-9]/.test(next)) {
      const start = i;
      i++;
      while (i < n && /[0-9]/.test(sql[i] as string)) i++;
      push('parameter', sql.slice(start, i), start);
    } else if (c === '$' && matchDollarTag(sql, i) !== undefined) {
      const tag = matchDollarTag(sql, i) as string;
      const close = sql.indexOf(tag, i + tag.length);
      if (close < 0) return { tokens, unterminated: { what: 'dollar-quoted string', offset: i } };
      push('string', '', i);
      i = close + tag.length;
    } else if (IDENT_START.test(c)) {
      const start = i;
      while (i < n && IDENT_PART.test(sql[i] as string)) i++;
      push('word', sql.slice(start, i).toUpperCase(), start);
    } else if (/[0-9]/.test(c) || (c === '.' && next !== undefined && /[0-9]/.test(next))) {
      const start = i;
      while (i < n && /[0-9A-Za-z_.]/.test(sql[i] as string)) i++;
      push('number', sql.slice(start, i), start);
    } else if ('();,[]'.includes(c)) {
      push('punctuation', c, i);
      i++;
    } else {
      push('operator', c, i);
      i++;
    }
  }
  return { tokens };
}

/** Index just past the closing quote, or -1 when the literal never ends. */
function scanQuoted(sql: string, start: number, quote: string, backslashEscapes: boolean): number {
  let i = start + 1;
  while (i < sql.length) {
    const c = sql[i];
    if (backslashEscapes && c === '\\') {
      i += 2;
    } else if (c === quote) {
      if (sql[i + 1] === quote) i += 2;
      else return i + 1;
    } else {
      i++;
    }
  }
  return -1;
}

function matchDollarTag(sql: string, i: number): string | undefined {
  // `$` inside an identifier (a$b) does not open a dollar quote.
  if (i > 0 && IDENT_PART.test(sql[i - 1] as string)) return undefined;
  DOLLAR_TAG.lastIndex = i;
  return DOLLAR_TAG.exec(sql)?.[0];
}

/**
 * psql's rule for SQL-standard function bodies: inside CREATE [OR REPLACE]
 * FUNCTION/PROCEDURE, BEGIN and CASE open a block and END closes it, and a
 * semicolon inside a block does not end the statement.
 */
function opensBody(statement: RawToken[]): boolean {
  const words = statement.slice(0, 4).map((t) => (t.kind === 'word' ? t.value : ''));
  if (words[0] !== 'CREATE') return false;
  const kind = words[1] === 'OR' && words[2] === 'REPLACE' ? words[3] : words[1];
  return kind === 'FUNCTION' || kind === 'PROCEDURE';
}

/** Split a script into statements; empty statements (`;;`) are dropped. */
export function scanSql(sql: string): SqlScan {
  const { tokens, unterminated } = lex(sql);
  const statements: SqlStatement[] = [];
  let current: RawToken[] = [];
  let blockDepth = 0;
  const finish = (end: number): void => {
    if (current.length > 0) statements.push(withDepths(current, end));
    current = [];
    blockDepth = 0;
  };
  for (const token of tokens) {
    if (token.kind === 'punctuation' && token.value === ';' && blockDepth === 0) {
      finish(token.offset);
      continue;
    }
    current.push(token);
    if (token.kind === 'word' && opensBody(current)) {
      if (token.value === 'BEGIN' || token.value === 'CASE') blockDepth++;
      else if (token.value === 'END' && blockDepth > 0) blockDepth--;
    }
  }
  finish(sql.length);
  return unterminated === undefined ? { statements } : { statements, unterminated };
}

function withDepths(raw: RawToken[], end: number): SqlStatement {
  let depth = 0;
  const tokens = raw.map((t): SqlToken => {
    if (t.kind === 'punctuation' && (t.value === ')' || t.value === ']')) {
      depth = Math.max(0, depth - 1);
      return { ...t, depth };
    }
    const token = { ...t, depth };
    if (t.kind === 'punctuation' && (t.value === '(' || t.value === '[')) depth++;
    return token;
  });
  return { tokens, offset: raw[0]?.offset ?? 0, end };
}

/** Maps offsets in `text` to 1-based line and column; built once, looked up by binary search. */
export function lineLocator(text: string): (offset: number) => { line: number; column: number } {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === '\n') starts.push(i + 1);
  return (offset) => {
    let low = 0;
    let high = starts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if ((starts[mid] ?? 0) <= offset) low = mid;
      else high = mid - 1;
    }
    return { line: low + 1, column: offset - (starts[low] ?? 0) + 1 };
  };
}
