import type { SqlStatement, SqlToken } from './sql-tokens.js';

/**
 * A statement's top-level tokens (outside parentheses) as a list of words, the
 * shape the rules in sql-analysis and sql-risks match against. Keywords and
 * unquoted names are upper-cased words; literals and quoted names never look
 * like keywords, so `"DROP"` or `'VACUUM'` cannot trigger a rule.
 */
export class StatementWords {
  /** Top-level tokens. */
  readonly tokens: SqlToken[];
  /** Every token, including those inside parentheses. */
  readonly all: SqlToken[];

  constructor(statement: SqlStatement) {
    this.all = statement.tokens;
    this.tokens = statement.tokens.filter((t) => t.depth === 0);
  }

  /** Whether the keyword appears anywhere, even inside parentheses (VACUUM (FULL)). */
  hasAnywhere(word: string): boolean {
    return this.all.some((t) => t.kind === 'word' && t.value === word);
  }

  /** The keyword at position i, or undefined when that token is not a plain word. */
  word(i: number): string | undefined {
    const token = this.tokens[i];
    return token?.kind === 'word' ? token.value : undefined;
  }

  /** Position of the first plain word equal to one of `words` at or after `from`, or -1. */
  find(words: string[], from = 0): number {
    for (let i = from; i < this.tokens.length; i++) {
      const w = this.word(i);
      if (w !== undefined && words.includes(w)) return i;
    }
    return -1;
  }

  has(word: string, from = 0): boolean {
    return this.find([word], from) >= 0;
  }

  /** Whether the words appear one after another somewhere at or after `from`. */
  hasSequence(words: string[], from = 0): boolean {
    for (let i = from; i + words.length <= this.tokens.length; i++) {
      if (words.every((w, k) => this.word(i + k) === w)) return true;
    }
    return false;
  }

  /** Skip optional words at i (in order, each at most once); returns the new position. */
  skip(i: number, ...optional: string[][]): number {
    let at = i;
    for (const words of optional) {
      if (words.every((w, k) => this.word(at + k) === w)) at += words.length;
    }
    return at;
  }

  /**
   * Read a possibly qualified name (`a`, `s.a`, `"A"`) at i. Unquoted parts
   * are lower-cased as the server folds them.
   */
  name(i: number): { name: string; next: number } | undefined {
    const parts: string[] = [];
    let at = i;
    for (;;) {
      const token = this.tokens[at];
      if (token?.kind === 'word') parts.push(token.value.toLowerCase());
      else if (token?.kind === 'quoted-identifier') parts.push(token.value);
      else break;
      at++;
      const dot = this.tokens[at];
      if (dot?.kind !== 'operator' || dot.value !== '.') break;
      at++;
    }
    return parts.length === 0 ? undefined : { name: parts.join('.'), next: at };
  }

  /** Comma-separated names at i (as in DROP TABLE a, b). */
  names(i: number): string[] {
    const names: string[] = [];
    let at = i;
    for (;;) {
      const read = this.name(at);
      if (read === undefined) break;
      names.push(read.name);
      const comma = this.tokens[read.next];
      if (comma?.kind !== 'punctuation' || comma.value !== ',') break;
      at = read.next + 1;
    }
    return names;
  }

  /** Split the tokens from `from` at top-level commas (ALTER TABLE's action list). */
  splitAtCommas(from: number): StatementWords[] {
    const parts: SqlToken[][] = [[]];
    for (const token of this.tokens.slice(from)) {
      if (token.kind === 'punctuation' && token.value === ',') parts.push([]);
      else parts[parts.length - 1]?.push(token);
    }
    return parts.map((tokens) => StatementWords.of(tokens));
  }

  static of(tokens: SqlToken[]): StatementWords {
    return new StatementWords({ tokens, offset: tokens[0]?.offset ?? 0, end: 0 });
  }
}
