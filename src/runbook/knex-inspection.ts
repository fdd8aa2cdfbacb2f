import type { Risk, RiskCode } from './types.js';

export interface KnexMigrationInspection {
  hasDown: boolean;
  /** No `down` at all: knex refuses to run such a migration ("must have both an up and down"). */
  downMissing: boolean;
  transaction: boolean;
  risks: Risk[];
}

/** The ways a migration file defines `down` (CommonJS, ESM, object literal, method). */
const DOWN_DEFINITIONS = [
  /\bexports\.down\s*=/,
  /\bexport\s+(?:async\s+)?function\s*\*?\s*down\s*\(/,
  /\bexport\s+(?:const|let|var)\s+down\s*=/,
  /\bexport\s*\{[^}]*\bdown\b[^}]*\}/,
  /(?:^|[{,\s])(?:async\s+)?down\s*(?::|\()/m,
];

/** `down` defined as a function whose body is empty: it undoes nothing. */
const EMPTY_DOWN = [
  /\bdown\s*[:=]\s*(?:async\s*)?(?:function\s*\w*\s*)?\([^)]*\)\s*(?:=>\s*)?\{\s*\}/,
  /\bdown\s*[:=]\s*(?:async\s*)?\w+\s*=>\s*\{\s*\}/,
  /\bfunction\s+down\s*\([^)]*\)\s*\{\s*\}/,
  /(?:^|[{,\s])(?:async\s+)?down\s*\([^)]*\)\s*\{\s*\}/m,
];

/** knex schema-builder calls in `up` that deserve a look, with what they risk. */
const RISKY_CALLS: { pattern: RegExp; code: RiskCode; message: string }[] = [
  { pattern: /\.dropTable(?:IfExists)?\s*\(/, code: 'drop', message: 'drops a table and its rows' },
  { pattern: /\.dropColumns?\s*\(/, code: 'drop', message: 'drops a column and its data' },
  { pattern: /\.dropSchema(?:IfExists)?\s*\(/, code: 'drop', message: 'drops a schema' },
  { pattern: /\.truncate\s*\(/, code: 'truncate', message: 'deletes every row of a table' },
  {
    pattern: /\.alter\s*\(/,
    code: 'column-type-change',
    message: 'alters a column (a type change rewrites the table under an ACCESS EXCLUSIVE lock)',
  },
  {
    pattern: /\.rename(?:Column|Table)\s*\(/,
    code: 'rename',
    message: 'renames, which breaks running code that uses the old name',
  },
];

/**
 * A cheap static look at a knex migration's source: lifeboat does not run it
 * to plan. Good enough for the plan's column "how would this be undone"; the
 * run itself still proves a rollback by comparing fingerprints.
 */
export function inspectKnexMigration(source: string): KnexMigrationInspection {
  const code = withoutComments(source);
  const definesDown = DOWN_DEFINITIONS.some((p) => p.test(code));
  const emptyDown = EMPTY_DOWN.some((p) => p.test(code));
  return {
    hasDown: definesDown && !emptyDown,
    downMissing: !definesDown,
    transaction: !/\btransaction\s*:\s*false\b/.test(code),
    risks: upRisks(code),
  };
}

/** Risky calls in the text of `up`: from its definition to the next definition of down or config. */
function upRisks(code: string): Risk[] {
  const up = /\b(?:exports\.up\s*=|function\s+up\s*\(|(?:const|let|var)\s+up\s*=|up\s*[:(])/.exec(
    code,
  );
  if (up === null) return [];
  const rest = code.slice(up.index + up[0].length);
  const next =
    /\b(?:exports\.(?:down|config)\s*=|function\s+down\s*\(|(?:const|let|var)\s+(?:down|config)\s*=|down\s*[:(])/.exec(
      rest,
    );
  const body = next === null ? rest : rest.slice(0, next.index);
  const risks: Risk[] = [];
  for (const { pattern, code: riskCode, message } of RISKY_CALLS) {
    if (pattern.test(body)) risks.push({ code: riskCode, message: `up ${message}` });
  }
  return risks;
}

/** Remove // and /* *\/ comments, leaving strings and template literals alone. */
export function withoutComments(source: string): string {
  let out = '';
  let i = 0;
  while (i < source.length) {
    const c = source[i] as string;
    if (c === '"' || c === "'" || c === '`') {
      const start = i;
      i++;
      while (i < source.length && source[i] !== c) i += source[i] === '\\' ? 2 : 1;
      i++;
      out += source.slice(start, i);
    } else if (source.startsWith('//', i)) {
      const end = source.indexOf('\n', i);
      i = end < 0 ? source.length : end;
    } else if (source.startsWith('/*', i)) {
      const end = source.indexOf('*/', i + 2);
      i = end < 0 ? source.length : end + 2;
      out += ' ';
    } else {
      out += c;
      i++;
    }
  }
  return out;
}
