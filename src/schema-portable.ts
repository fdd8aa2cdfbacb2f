/**
 * The schema description (fingerprint.ts, one object a line) without what a
 * newer PostgreSQL major merely prints differently, so that a database
 * restored into a newer server can be proved against its source. Measured
 * from 15 to 17 and 18; each rule below keeps a real difference visible:
 *
 * - NOT NULL constraints: 17 lists a domain's NOT NULL, 18 every column's, as
 *   constraints of their own (named `<table>_<column>_not_null`). The column's
 *   and the domain's `not-null` flag already say it, so those lines go.
 * - View and materialized view definitions: from 16 on, a query over a single
 *   relation prints its columns unqualified (`SELECT id` where 15 printed
 *   `SELECT orders.id`). The relation's qualifier is taken off on every side.
 * - Extension versions: pg_dump does not record them, so a restore creates the
 *   destination's default version (citext 1.6 on 15, 1.8 on 18). The name and
 *   schema stay; the versions are recorded in the manifest's needs.
 */
export function portableSchemaLines(lines: readonly string[]): string[] {
  const out: string[] = [];
  for (const line of lines) {
    if (isNotNullConstraint(line)) continue;
    if (line.startsWith('extension ')) out.push(line.replace(/^(extension \S+) \S+ /, '$1 '));
    else if (line.startsWith('relation ')) out.push(portableViewLine(line));
    else out.push(line);
  }
  // Byte-wise, as the description is sorted (collate "C").
  return out.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

/** A quoted or plain identifier, as quote_ident prints it. */
const IDENT = String.raw`(?:"(?:[^"]|"")*"|[a-z_][a-z0-9_$]*)`;
const CONSTRAINT = new RegExp(String.raw`^constraint ${IDENT}\.${IDENT} ${IDENT} (.*)$`, 's');

/** `constraint <table or domain> <name> NOT NULL …`: only a NOT NULL constraint prints so. */
function isNotNullConstraint(line: string): boolean {
  const def = CONSTRAINT.exec(line)?.[1];
  return def !== undefined && /^NOT NULL\b/.test(def);
}

/** The sole relation of a top-level FROM (`   FROM sales.orders o`), then the next clause or the end. */
const SOLE_FROM = new RegExp(String.raw`^   FROM (?:${IDENT}\.)?(${IDENT})(?: (${IDENT}))?;?$`);
const TOP_LEVEL_CLAUSE = /^ {1,2}(?:WHERE|GROUP BY|HAVING|WINDOW|ORDER BY|LIMIT|OFFSET|FETCH)\b/;

function portableViewLine(line: string): string {
  const at = line.indexOf(' definition=');
  if (at < 0 || !/ kind=[vm] /.test(line.slice(0, at))) return line;
  const head = line.slice(0, at + ' definition='.length);
  return head + unqualifySoleRelation(line.slice(head.length));
}

/**
 * A view over one relation with its columns unqualified, as 16 and later print
 * it. Anything else (joins, set operations, subqueries in FROM) is left as it
 * is: every major qualifies those alike.
 */
export function unqualifySoleRelation(definition: string): string {
  const lines = definition.split('\n');
  const from = lines.findIndex((l) => l.startsWith('   FROM '));
  if (from < 0 || lines.some((l, i) => i !== from && l.startsWith('   FROM '))) return definition;
  const m = SOLE_FROM.exec(lines[from]!);
  const next = lines[from + 1];
  if (!m || (next !== undefined && !TOP_LEVEL_CLAUSE.test(next))) return definition;
  if (lines.some((l) => /^\s*(?:UNION|INTERSECT|EXCEPT)\b/.test(l))) return definition;
  const refname = m[2] ?? m[1]!;
  const qualifier = new RegExp(String.raw`(?<![\w$".])${escapeRegExp(refname)}\.(?=["\w])`, 'g');
  // Only outside string literals: a constant's text is content, not a qualifier.
  return definition
    .split(/('(?:[^']|'')*')/)
    .map((part, i) => (i % 2 === 1 ? part : part.replace(qualifier, '')))
    .join('');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
