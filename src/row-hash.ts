import pg from 'pg';

/**
 * How a table's rows are hashed for its content fingerprint. Either way one
 * 64-bit hash per row is summed over the table (fingerprint.ts), and the
 * method is recorded in the fingerprints, so a copy is hashed the way its
 * source was.
 *
 * `text` (every server; fingerprints that name no method): the hash of each
 * row's text form, `(t.*)::text`, under the pinned output settings. It sees
 * every difference that shows in text: a float's -0 and NaN, a numeric's
 * scale (1.0 and 1.00), case in citext or under a case-insensitive collation,
 * an interval's units ('1 day' and '24 hours'), a timetz's offset, every
 * element of an array, a domain's or composite's fields, jsonb's numbers as
 * written. Rendering every value as text is what it costs: about half the
 * time of a fingerprint.
 *
 * `columns` (PostgreSQL 14+, backups before `typed`): the columns whose type's own
 * hash function tells apart every pair of values that text tells apart are
 * hashed by it, without rendering text, in one `hash_record_extended` per row;
 * the rest of the row, if any, is hashed in its text form and its 64-bit hash
 * is one more value of that record; the record's hash is hashed again, so no
 * value can move between rows unseen. A table with none
 * of those columns is hashed exactly as by `text`. Hashed by their own
 * function: bool, "char", int2, int4, oid, date, bytea, uuid, and text and
 * varchar under a deterministic collation (their hash is of the bytes). The
 * 64-bit types (int8, timestamp, timestamptz, time) and bpchar are hashed as
 * their binary send form, their exact stored bytes: their own hash functions
 * fold 64 bits into 32 (int8) or drop trailing blanks (bpchar). Everything
 * else takes the text path, as do domains, enums (their hash is of an OID a
 * restore renumbers), arrays, ranges, composites, numerics, floats, json and
 * jsonb, intervals, timetz, citext and text under a nondeterministic collation
 * (their hash functions equate values that text tells apart). What `columns`
 * cannot see that `text` can: nothing, for these types; a row whose hash
 * collides stays 2^-64 likely as before.
 *
 * `typed` (PostgreSQL 14+, what new fingerprints take there): the row's
 * values hashed exactly as by `columns`, but the record's hash is finished by
 * `hashint4extended(0, <record hash>)` rather than by a second record of its
 * send form: the 64-bit hash is that function's seed, and both its halves go
 * into lookup3's mixing, so the result is as far from linear as before. It
 * spares a record and a bytea per row (pgbench_accounts: a fifth of the
 * hashing) and sees what `columns` sees.
 */
export type ContentMethod = 'text' | 'columns' | 'typed';

const METHODS: readonly string[] = ['text', 'columns', 'typed'] satisfies ContentMethod[];

/** The method new fingerprints take on a server of this `server_version_num`. */
export function fastestContentMethod(serverVersionNum: number): ContentMethod {
  return serverVersionNum >= 140000 ? 'typed' : 'text';
}

/** A method named in stored fingerprints that this version cannot hash by: written by a newer lifeboat. */
export function unknownContentMethod(method: string): string | undefined {
  return METHODS.includes(method)
    ? undefined
    : `These fingerprints were hashed by the "${method}" method, which this version of lifeboat does not know; use the version that wrote them, or a newer one.`;
}

/** One column of a table: its name, its type's name when it is a built-in type, its collation's determinism. */
export interface ColumnType {
  column: string;
  /** pg_catalog's name of the type (`int4`), or null for a type elsewhere (a domain, an enum, an extension's). */
  builtin: string | null;
  /** null when the type has no collation. */
  deterministic: boolean | null;
}

const OWN_HASH = new Set(['bool', 'char', 'int2', 'int4', 'oid', 'date', 'bytea', 'uuid']);
const BYTES_HASH = new Set(['text', 'varchar']);
const SEND: Record<string, string> = {
  int8: 'int8send',
  timestamp: 'timestamp_send',
  timestamptz: 'timestamptz_send',
  time: 'time_send',
  bpchar: 'bpcharsend',
};

/** How one column is hashed under `columns`. */
export function columnHashing(c: ColumnType): 'own' | 'send' | 'text' {
  if (c.builtin === null) return 'text';
  if (OWN_HASH.has(c.builtin)) return 'own';
  if (BYTES_HASH.has(c.builtin) && c.deterministic !== false) return 'own';
  if (c.builtin in SEND) return 'send';
  return 'text';
}

/**
 * The SQL expression of one row's 64-bit hash, for rows of `alias`. Without
 * its columns (or under `text`) the text form of the whole row.
 */
export function rowHashSql(
  alias: string,
  method: ContentMethod,
  columns: ColumnType[] | undefined,
): string {
  const whole = `hashtextextended((${alias}.*)::text, 0)`;
  if (method === 'text' || !columns) return whole;
  const hashed: string[] = [];
  const rest: string[] = [];
  for (const c of columns) {
    const ref = `${alias}.${pg.escapeIdentifier(c.column)}`;
    const how = columnHashing(c);
    if (how === 'own') hashed.push(ref);
    else if (how === 'send') hashed.push(`pg_catalog.${SEND[c.builtin!]}(${ref})`);
    else rest.push(ref);
  }
  if (hashed.length === 0) return whole;
  // As bytes: hash_record_extended would fold a bigint's 64 bits into 32.
  if (rest.length > 0)
    hashed.push(
      `pg_catalog.int8send(pg_catalog.hashtextextended(row(${rest.join(', ')})::text, 0))`,
    );
  // hash_record_extended combines its values' hashes linearly, so summed over rows a column's
  // values could swap between rows unseen: the row's hash is hashed once more.
  const record = `pg_catalog.hash_record_extended(row(${hashed.join(', ')}), 0)`;
  return method === 'typed'
    ? `pg_catalog.hashint4extended(0, ${record})`
    : `pg_catalog.hash_record_extended(row(pg_catalog.int8send(${record})), 0)`;
}
