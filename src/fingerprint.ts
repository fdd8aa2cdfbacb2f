import { createHash } from 'node:crypto';
import pg from 'pg';
import { ToolError } from './errors.js';
import {
  fastestContentMethod,
  rowHashSql,
  unknownContentMethod,
  type ColumnType,
  type ContentMethod,
} from './row-hash.js';
import { schemaObjects } from './schema-objects.js';
import { portableSchemaLines } from './schema-portable.js';

/**
 * Fingerprints prove that a restored copy holds what the dump's snapshot held
 * (DESIGN.md promise 2). Content is hashed inside the database, so no rows
 * travel to Node: per table a row count and two order-independent sums of
 * 64-bit row hashes. Everything here is JSON and goes into the manifest.
 */
export interface TableFingerprint {
  schema: string;
  name: string;
  rows: number;
  /** Hex; `not populated` for a materialized view created WITH NO DATA. */
  hash: string;
}

export interface SequenceFingerprint {
  schema: string;
  name: string;
  lastValue: string;
  isCalled: boolean;
  increment: string;
}

export interface Fingerprints {
  /** The output settings the values were rendered under, and the server encoding. */
  settings: Record<string, string>;
  schemaHash: string;
  /** `<hash> <object>` for each line of the schema description, to name what changed later. */
  schemaObjects?: string[];
  /**
   * The schema as any newer major describes it too (schema-portable.ts), and the
   * major it was read on: what is compared when the two sides' majors differ.
   * Absent in manifests written before it.
   */
  schemaAcrossVersions?: { serverMajor: number; hash: string };
  tables: TableFingerprint[];
  sequences: SequenceFingerprint[];
  largeObjects: { count: number; hash: string };
  /** How rows were hashed (row-hash.ts); absent: `text`, as before methods were named. */
  contentMethod?: ContentMethod;
}

export interface Difference {
  kind: 'table' | 'sequence' | 'schema' | 'large-objects' | 'settings';
  /** What differs, e.g. `public.orders`. */
  object: string;
  expected: string;
  found: string;
}

export interface FingerprintOptions {
  /** Schemas left out entirely (lifeboat's own journal, for instance). */
  excludeSchemas?: string[];
  onTable?: (done: number, total: number, table: string) => void;
  /** Bytes of table data hashed so far, of the whole, after each piece. */
  onBytes?: (done: number, total: number) => void;
  /**
   * More sessions reading the same snapshot, to fingerprint tables in parallel;
   * or how to open them, called only when the tables hold enough data to share
   * (SHARED_FROM_BYTES). The caller closes what it opened.
   */
  helpers?: pg.ClientBase[] | (() => Promise<pg.ClientBase[]>);
  /** Blocks per query when a big table is cut into ranges (default 4096, 32 MiB). */
  pieceBlocks?: number;
  /**
   * How rows are hashed (default `text`). A copy must be hashed as its source
   * was: pass the method the expected fingerprints name. `fastest`: the
   * method new fingerprints take on this server (row-hash.ts).
   */
  contentMethod?: ContentMethod | 'fastest';
}

/**
 * Every setting that changes how a value is written as text, and so its hash.
 * search_path '' makes regclass values and the catalog's deparsed definitions
 * schema-qualified; standard_conforming_strings changes how those definitions
 * quote backslashes; row_security off makes a policy that would hide rows an
 * error instead of a silently smaller count (pg_dump does the same).
 */
const PINNED: Record<string, string> = {
  DateStyle: 'ISO, MDY',
  TimeZone: 'UTC',
  IntervalStyle: 'postgres',
  extra_float_digits: '3',
  bytea_output: 'hex',
  lc_monetary: 'C',
  standard_conforming_strings: 'on',
  search_path: '',
  quote_all_identifiers: 'off',
  row_security: 'off',
};

/**
 * Pin the output settings for the session, like a plain SET: it works inside
 * or outside a transaction (a rollback undoes it). Returns what is in force,
 * plus the server encoding, which decides the bytes that are hashed.
 */
export async function pinOutputSettings(client: pg.ClientBase): Promise<Record<string, string>> {
  // One round trip: set_config gives back each setting as the server now shows it.
  const res = await client.query<{ name: string; value: string }>(
    `select s.name, pg_catalog.set_config(s.name, s.value, false) as value
       from rows from (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[])) as s(name, value)
     union all
     select 'server_encoding', pg_catalog.current_setting('server_encoding')`,
    [Object.keys(PINNED), Object.values(PINNED)],
  );
  return Object.fromEntries(res.rows.map((r) => [r.name, r.value]));
}

/**
 * What is in scope: non-system schemas not excluded, and relations in them
 * that no extension owns (an extension recreates its own objects). $1 is the
 * list of excluded schemas. These queries run after pinOutputSettings set
 * search_path to '', so pg_catalog is searched first and nothing can shadow it.
 */
const SCOPE = `
  ext as (select classid, objid from pg_depend where deptype = 'e'),
  ns as (
    select n.oid, n.nspname from pg_namespace n
     where n.nspname !~ '^pg_' and n.nspname <> 'information_schema'
       and n.nspname <> all($1::text[])
       and (n.tableoid, n.oid) not in (select classid, objid from ext)),
  rel as (
    select c.*, ns.nspname, format('%I.%I', ns.nspname, c.relname) as qname
      from pg_class c join ns on ns.oid = c.relnamespace
     where (c.tableoid, c.oid) not in (select classid, objid from ext)),
  typ as (
    select t.*, format('%I.%I', ns.nspname, t.typname) as qname
      from pg_type t join ns on ns.oid = t.typnamespace
     where (t.tableoid, t.oid) not in (select classid, objid from ext))`;

/**
 * One line per object, free of OIDs, owners and privileges (a restore with
 * --no-owner --no-privileges must still match), sorted byte-wise. Columns are
 * listed in attnum order without the number, so dropped columns leave no trace.
 * Objects derived from a partitioned parent (cloned constraints and triggers)
 * are left out: the parent's definition implies them.
 */
const SCHEMA_DESCRIPTION = `
with ${SCOPE}
select line from (
  select 'schema ' || quote_ident(nspname) as line from ns
  union all
  select concat_ws(' ', 'relation', r.qname, 'kind=' || r.relkind::text,
           'persistence=' || r.relpersistence::text,
           'options=' || array_to_string(r.reloptions, ','),
           'partition-key=' || pg_get_partkeydef(r.oid),
           'partition-bound=' || pg_get_expr(r.relpartbound, r.oid),
           'inherits=' || (select string_agg(p.qname, ',' order by i.inhseqno)
                             from pg_inherits i join rel p on p.oid = i.inhparent
                            where i.inhrelid = r.oid),
           case when r.relrowsecurity then 'row-security' end,
           case when r.relforcerowsecurity then 'force-row-security' end,
           'columns=(' || (
             select string_agg(concat_ws(' ', quote_ident(a.attname),
                      format_type(a.atttypid, a.atttypmod),
                      case when a.attnotnull then 'not-null' end,
                      'default=' || pg_get_expr(d.adbin, d.adrelid),
                      case when a.attidentity <> '' then 'identity=' || a.attidentity::text end,
                      case when a.attgenerated <> '' then 'generated=' || a.attgenerated::text end,
                      'collate=' || (select format('%I.%I', cn.nspname, co.collname)
                                       from pg_collation co
                                       join pg_namespace cn on cn.oid = co.collnamespace
                                      where co.oid = a.attcollation)),
                    ', ' order by a.attnum)
               from pg_attribute a
               left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
              where a.attrelid = r.oid and a.attnum > 0 and not a.attisdropped) || ')',
           'definition=' || case when r.relkind in ('v', 'm') then pg_get_viewdef(r.oid) end)
    from rel r where r.relkind in ('r', 'p', 'v', 'm', 'f', 'c')
  union all
  select concat_ws(' ', 'constraint', coalesce(r.qname, t.qname), quote_ident(c.conname),
           pg_get_constraintdef(c.oid))
    from pg_constraint c
    left join rel r on r.oid = c.conrelid
    left join typ t on t.oid = c.contypid
   where coalesce(r.oid, t.oid) is not null and c.conparentid = 0
  union all
  select 'index ' || pg_get_indexdef(i.indexrelid)
    from pg_index i join rel r on r.oid = i.indrelid join rel x on x.oid = i.indexrelid
  union all
  select concat_ws(' ', 'trigger', pg_get_triggerdef(g.oid), 'enabled=' || g.tgenabled::text)
    from pg_trigger g join rel r on r.oid = g.tgrelid
   where not g.tgisinternal and g.tgparentid = 0
  union all
  select 'rule ' || pg_get_ruledef(w.oid)
    from pg_rewrite w join rel r on r.oid = w.ev_class where w.rulename <> '_RETURN'
  union all
  select concat_ws(' ', 'policy', r.qname, quote_ident(p.polname), p.polcmd::text,
           case when p.polpermissive then 'permissive' else 'restrictive' end,
           'roles=' || (select string_agg(case when o = 0 then 'public'
                                          else pg_get_userbyid(o)::text end, ',' order by 1)
                          from unnest(p.polroles) o),
           'using=' || pg_get_expr(p.polqual, p.polrelid),
           'check=' || pg_get_expr(p.polwithcheck, p.polrelid))
    from pg_policy p join rel r on r.oid = p.polrelid
  union all
  select concat_ws(' ', 'sequence', r.qname, format_type(s.seqtypid, null),
           'start=' || s.seqstart, 'increment=' || s.seqincrement, 'min=' || s.seqmin,
           'max=' || s.seqmax, 'cache=' || s.seqcache, case when s.seqcycle then 'cycle' end,
           'owned-by=' || (select o.qname || '.' || quote_ident(a.attname)
                             from pg_depend d
                             join rel o on o.oid = d.refobjid
                             join pg_attribute a
                               on a.attrelid = d.refobjid and a.attnum = d.refobjsubid
                            where d.classid = 'pg_class'::regclass
                              and d.objid = s.seqrelid and d.refobjsubid > 0
                              and d.deptype in ('a', 'i')))
    from pg_sequence s join rel r on r.oid = s.seqrelid
  union all
  select concat_ws(' ', 'function',
           format('%I.%I', ns.nspname, p.proname)
             || '(' || pg_get_function_identity_arguments(p.oid) || ')',
           case when p.prokind in ('f', 'p') then pg_get_functiondef(p.oid)
                else concat_ws(' ', 'kind=' || p.prokind::text, pg_get_function_result(p.oid),
                       (select concat_ws(' ', a.aggtransfn, a.aggfinalfn, a.aggcombinefn,
                                 format_type(a.aggtranstype, null), a.agginitval)
                          from pg_aggregate a where a.aggfnoid = p.oid)) end)
    from pg_proc p join ns on ns.oid = p.pronamespace
   where (p.tableoid, p.oid) not in (select classid, objid from ext)
  union all
  select concat_ws(' ', 'enum', t.qname, '(' || (
           select string_agg(quote_literal(e.enumlabel), ', ' order by e.enumsortorder)
             from pg_enum e where e.enumtypid = t.oid) || ')')
    from typ t where t.typtype = 'e'
  union all
  select concat_ws(' ', 'domain', t.qname, format_type(t.typbasetype, t.typtypmod),
           case when t.typnotnull then 'not-null' end,
           'default=' || pg_get_expr(t.typdefaultbin, 0),
           'collate=' || (select format('%I.%I', cn.nspname, co.collname)
                            from pg_collation co
                            join pg_namespace cn on cn.oid = co.collnamespace
                           where co.oid = t.typcollation))
    from typ t where t.typtype = 'd'
  union all
  select concat_ws(' ', 'range', t.qname, format_type(g.rngsubtype, null),
           'opclass=' || (select opcname from pg_opclass where oid = g.rngsubopc),
           'canonical=' || g.rngcanonical::text, 'subdiff=' || g.rngsubdiff::text)
    from typ t join pg_range g on g.rngtypid = t.oid
  union all
  select concat_ws(' ', 'extension', quote_ident(e.extname), e.extversion,
           'schema=' || quote_ident(n.nspname))
    from pg_extension e join pg_namespace n on n.oid = e.extnamespace
) description
order by line collate "C"`;

const TABLES = `
with ${SCOPE}
select nspname as schema, relname as name, relispopulated as populated,
       (pg_relation_size(oid) / current_setting('block_size')::int)::int as blocks
  from rel
 where relkind in ('r', 'm') and relpersistence <> 't'
 order by nspname collate "C", relname collate "C"`;

/** Each column of each table, in attnum order: how its values can be hashed (row-hash.ts). */
const COLUMNS = `
with ${SCOPE}
select r.nspname as schema, r.relname as name, a.attname as column,
       case when t.typnamespace = 'pg_catalog'::regnamespace then t.typname::text end as builtin,
       co.collisdeterministic as deterministic
  from rel r
  join pg_attribute a on a.attrelid = r.oid and a.attnum > 0 and not a.attisdropped
  join pg_type t on t.oid = a.atttypid
  left join pg_collation co on co.oid = a.attcollation
 where r.relkind in ('r', 'm') and r.relpersistence <> 't'
 order by r.nspname, r.relname, a.attnum`;

const SEQUENCES = `
with ${SCOPE}
select r.nspname as schema, r.relname as name, s.seqincrement::text as increment
  from pg_sequence s join rel r on r.oid = s.seqrelid
 order by r.nspname collate "C", r.relname collate "C"`;

/**
 * A 64-bit hash of each item (a row: row-hash.ts says how), summed: no
 * overflow (a sum of bigint is numeric, accumulated in 128 bits, so no cast
 * per row is needed) and the same whatever the row order. A changed row
 * changes the sum unless its new hash equals its old one (2^-64); the row
 * count is kept beside it.
 */
function contentAggregate(itemHash: string): string {
  return `count(*)::text as rows, coalesce(sum(${itemHash}), 0)::text as h0`;
}

interface ContentRow {
  rows: string;
  h0: string;
}

function contentHash(row: ContentRow): string {
  return createHash('sha256').update(`${row.rows}/${row.h0}`).digest('hex').slice(0, 32);
}

/** `public.orders`, or `"Weird Schema"."Order Items"` when a name needs quoting. */
export function qualifiedName(schema: string, name: string): string {
  const show = (id: string) => (/^[a-z_][a-z0-9_$]*$/.test(id) ? id : pg.escapeIdentifier(id));
  return `${show(schema)}.${show(name)}`;
}

function sqlName(schema: string, name: string): string {
  return `${pg.escapeIdentifier(schema)}.${pg.escapeIdentifier(name)}`;
}

async function schemaLines(client: pg.ClientBase, excludeSchemas: string[]): Promise<string[]> {
  const res = await client.query<{ line: string }>(SCHEMA_DESCRIPTION, [excludeSchemas]);
  return res.rows.map((r) => r.line);
}

function sha256(lines: readonly string[]): string {
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}

/**
 * The canonical description whose SHA-256 is `schemaHash`, one object a line:
 * what to diff when two schema hashes differ. Pins the output settings first.
 */
export async function describeSchema(
  client: pg.ClientBase,
  excludeSchemas: string[] = [],
): Promise<string[]> {
  await pinOutputSettings(client);
  return schemaLines(client, excludeSchemas);
}

/**
 * Fingerprint the database `client` is connected to. The caller puts the
 * session inside a REPEATABLE READ transaction (importing the dump's snapshot)
 * so that every table is read at that one snapshot. Sequences are not
 * transactional: their current values are read, hence the tolerance in
 * compareFingerprints. Changes the session's output settings (see PINNED).
 */
export async function computeFingerprints(
  client: pg.ClientBase,
  opts: FingerprintOptions = {},
): Promise<Fingerprints> {
  const exclude = opts.excludeSchemas ?? [];
  const settings = await pinOutputSettings(client);
  const schema = await schemaLines(client, exclude);
  const schemaHash = sha256(schema);

  const list = await client.query<TableRow>(TABLES, [exclude]);
  const version = await client.query<{ v: string }>(
    `select current_setting('server_version_num') as v`,
  );
  const versionNum = Number(version.rows[0]!.v);
  const method =
    opts.contentMethod === 'fastest'
      ? fastestContentMethod(versionNum)
      : (opts.contentMethod ?? 'text');
  const unknown = unknownContentMethod(method);
  if (unknown) throw new ToolError(unknown);
  const columns =
    method === 'text'
      ? new Map<string, ColumnType[]>()
      : await columnTypes(client, exclude, method, versionNum);
  // Tables are spread over the caller's extra sessions (same snapshot); a big table is cut
  // into block ranges so that it, too, is hashed in parallel. The sums add up to the same hash.
  const helpers = await helpersFor(list.rows, opts.helpers);
  const sessions = [client, ...helpers];
  await Promise.all(helpers.map(pinOutputSettings));
  // Block ranges are read by TID range scans, which PostgreSQL has from version 14.
  const split = sessions.length > 1 && versionNum >= 140000;
  const pieces = planPieces(list.rows, split, opts.pieceBlocks ?? PIECE_BLOCKS);
  const blocksOf = (p: Piece): number =>
    p.table.populated ? (p.to ?? p.table.blocks) - (p.from ?? 0) : 0;
  const totalBytes = pieces.reduce((sum, p) => sum + blocksOf(p) * BLOCK_SIZE, 0);
  let bytesDone = 0;
  const partial = list.rows.map(() => ({ rows: 0n, sum: 0n, left: 0 }));
  for (const piece of pieces) partial[piece.index]!.left++;
  const tables: TableFingerprint[] = new Array<TableFingerprint>(list.rows.length);
  let next = 0;
  let done = 0;
  await Promise.all(
    sessions.map(async (session) => {
      while (next < pieces.length) {
        const piece = pieces[next++]!;
        const i = piece.index;
        const t = piece.table;
        if (!t.populated) {
          tables[i] = { schema: t.schema, name: t.name, rows: 0, hash: 'not populated' };
        } else {
          const row = await pieceContent(
            session,
            piece,
            rowHashSql('t', method, columns.get(sqlName(t.schema, t.name))),
          );
          bytesDone += blocksOf(piece) * BLOCK_SIZE;
          opts.onBytes?.(bytesDone, totalBytes);
          const acc = partial[i]!;
          acc.rows += BigInt(row.rows);
          acc.sum += BigInt(row.h0);
          if (--acc.left > 0) continue;
          tables[i] = {
            schema: t.schema,
            name: t.name,
            rows: Number(acc.rows),
            hash: contentHash({ rows: String(acc.rows), h0: String(acc.sum) }),
          };
        }
        opts.onTable?.(++done, list.rows.length, qualifiedName(t.schema, t.name));
      }
    }),
  );

  const seqs = await client.query<{ schema: string; name: string; increment: string }>(SEQUENCES, [
    exclude,
  ]);
  const sequences: SequenceFingerprint[] = [];
  for (const s of seqs.rows) {
    const res = await client.query<{ last_value: string; is_called: boolean }>(
      `select last_value::text, is_called from ${sqlName(s.schema, s.name)}`,
    );
    const row = res.rows[0]!;
    sequences.push({ ...s, lastValue: row.last_value, isCalled: row.is_called });
  }

  // pg_dump keeps large objects' OIDs, so the OID is part of what must match.
  const lo = await client.query<ContentRow>(
    `select ${contentAggregate('hashtextextended(item, 0)')} from (
       select oid::text || ':' || md5(lo_get(oid)) as item
         from pg_largeobject_metadata) as lo`,
  );
  const loRow = lo.rows[0]!;
  const largeObjects = { count: Number(loRow.rows), hash: contentHash(loRow) };

  return {
    settings,
    schemaHash,
    schemaObjects: schemaObjects(schema),
    schemaAcrossVersions: {
      serverMajor: Math.floor(versionNum / 10000),
      hash: sha256(portableSchemaLines(schema)),
    },
    tables,
    sequences,
    largeObjects,
    ...(method === 'text' ? {} : { contentMethod: method }),
  };
}

/** Every table's columns by its SQL name; hashing by them needs hash_record_extended (PostgreSQL 14+). */
async function columnTypes(
  client: pg.ClientBase,
  exclude: string[],
  method: ContentMethod,
  versionNum: number,
): Promise<Map<string, ColumnType[]>> {
  if (versionNum < 140000) {
    throw new Error(
      `Rows hashed by the "${method}" method can only be hashed again on PostgreSQL 14 or later; this server is older.`,
    );
  }
  const res = await client.query<ColumnType & { schema: string; name: string }>(COLUMNS, [exclude]);
  const byTable = new Map<string, ColumnType[]>();
  for (const { schema, name, ...c } of res.rows) {
    const key = sqlName(schema, name);
    byTable.set(key, [...(byTable.get(key) ?? []), c]);
  }
  return byTable;
}

interface TableRow {
  schema: string;
  name: string;
  populated: boolean;
  blocks: number;
}

/** A table, or a range of its blocks [from, to); `to` undefined: to the end. */
interface Piece {
  table: TableRow;
  /** The table's position in the list. */
  index: number;
  from?: number;
  to?: number;
}

/** Bytes per block, for progress and sizes: PostgreSQL's default, which nearly every server keeps. */
const BLOCK_SIZE = 8192;

/** 32 MiB of a table per query: enough to keep the sessions busy, few enough queries. */
const PIECE_BLOCKS = 4096;

/**
 * 16 MiB of table data: below it one session hashes everything in less time
 * than another takes to connect, authenticate and join the snapshot.
 */
const SHARED_FROM_BYTES = 16 * 1024 * 1024;

async function helpersFor(
  tables: TableRow[],
  helpers: FingerprintOptions['helpers'],
): Promise<pg.ClientBase[]> {
  if (typeof helpers !== 'function') return helpers ?? [];
  const bytes = tables.reduce((sum, t) => sum + (t.populated ? t.blocks * BLOCK_SIZE : 0), 0);
  return bytes >= SHARED_FROM_BYTES ? helpers() : [];
}

function planPieces(tables: TableRow[], split: boolean, blocksPerPiece: number): Piece[] {
  const pieces: Piece[] = [];
  for (const [index, table] of tables.entries()) {
    if (!split || !table.populated || table.blocks <= blocksPerPiece) {
      pieces.push({ table, index });
      continue;
    }
    for (let from = 0; from < table.blocks; from += blocksPerPiece) {
      const to = from + blocksPerPiece;
      // The last range is open: nothing past the size read above is visible in the snapshot anyway.
      pieces.push({ table, index, from, to: to >= table.blocks ? undefined : to });
    }
  }
  return pieces;
}

async function pieceContent(
  client: pg.ClientBase,
  piece: Piece,
  rowHash: string,
): Promise<ContentRow> {
  const range: string[] = [];
  if (piece.from !== undefined) range.push(`t.ctid >= '(${piece.from},0)'::tid`);
  if (piece.to !== undefined) range.push(`t.ctid < '(${piece.to},0)'::tid`);
  // ONLY: a parent in plain inheritance must not count its children's rows.
  // (t.*) is the whole row even when the table has a column named t; t."t" is that column.
  const res = await client.query<ContentRow>(
    `select ${contentAggregate(rowHash)} from only ${sqlName(piece.table.schema, piece.table.name)} as t${
      range.length ? ` where ${range.join(' and ')}` : ''
    }`,
  );
  return res.rows[0]!;
}

/** The value nextval() would return next; what must never go backwards. */
function nextValue(s: SequenceFingerprint): bigint {
  return s.isCalled ? BigInt(s.lastValue) + BigInt(s.increment) : BigInt(s.lastValue);
}

function byName<T extends { schema: string; name: string }>(items: T[]): Map<string, T> {
  return new Map(items.map((i) => [qualifiedName(i.schema, i.name), i]));
}

const rowsText = (n: number) => `${n} ${n === 1 ? 'row' : 'rows'}`;

function diff(
  kind: Difference['kind'],
  object: string,
  expected: string,
  found: string,
): Difference {
  return { kind, object, expected, found };
}

/**
 * The schema hashes to compare: the exact ones on one major (as before), the
 * portable ones when the copy is on another major than its source.
 */
function schemaCompared(expected: Fingerprints, found: Fingerprints): [string, string] {
  const [e, f] = [expected.schemaAcrossVersions, found.schemaAcrossVersions];
  return e && f && e.serverMajor !== f.serverMajor
    ? [e.hash, f.hash]
    : [expected.schemaHash, found.schemaHash];
}

/**
 * Every way `found` (the restored copy) differs from `expected` (recorded at
 * the dump's snapshot). A sequence at or beyond its recorded position in the
 * direction of its increment is fine: it was read after the snapshot.
 */
export function compareFingerprints(expected: Fingerprints, found: Fingerprints): Difference[] {
  const diffs: Difference[] = [];
  for (const key of new Set([...Object.keys(expected.settings), ...Object.keys(found.settings)])) {
    const [e, f] = [expected.settings[key] ?? 'unset', found.settings[key] ?? 'unset'];
    if (e !== f) diffs.push(diff('settings', key, e, f));
  }
  const [em, fm] = [expected.contentMethod ?? 'text', found.contentMethod ?? 'text'];
  if (em !== fm) diffs.push(diff('settings', 'content hashing', em, fm));
  const [es, fs] = schemaCompared(expected, found);
  if (es !== fs) diffs.push(diff('schema', 'schema', es, fs));

  const foundTables = byName(found.tables);
  for (const [object, e] of byName(expected.tables)) {
    const f = foundTables.get(object);
    foundTables.delete(object);
    if (!f) {
      diffs.push(diff('table', object, rowsText(e.rows), 'missing'));
    } else if (e.rows !== f.rows) {
      diffs.push(diff('table', object, rowsText(e.rows), rowsText(f.rows)));
    } else if (e.hash !== f.hash) {
      diffs.push(diff('table', object, `content ${e.hash}`, `content ${f.hash}`));
    }
  }
  for (const [object, f] of foundTables) {
    diffs.push(diff('table', object, 'absent', rowsText(f.rows)));
  }

  const foundSeqs = byName(found.sequences);
  for (const [object, e] of byName(expected.sequences)) {
    const f = foundSeqs.get(object);
    foundSeqs.delete(object);
    const want = nextValue(e);
    if (!f) {
      diffs.push(diff('sequence', object, `next value ${want}`, 'missing'));
    } else if (e.increment !== f.increment) {
      diffs.push(diff('sequence', object, `increment ${e.increment}`, `increment ${f.increment}`));
    } else {
      const up = BigInt(e.increment) > 0n;
      const got = nextValue(f);
      if (up ? got < want : got > want) {
        const direction = up ? 'higher' : 'lower';
        diffs.push(
          diff('sequence', object, `next value ${want} or ${direction}`, `next value ${got}`),
        );
      }
    }
  }
  for (const [object, f] of foundSeqs) {
    diffs.push(diff('sequence', object, 'absent', `next value ${nextValue(f)}`));
  }

  const [el, fl] = [expected.largeObjects, found.largeObjects];
  if (el.count !== fl.count || el.hash !== fl.hash) {
    const show = (lo: typeof el) =>
      `${lo.count} object${lo.count === 1 ? '' : 's'}, content ${lo.hash}`;
    diffs.push(diff('large-objects', 'large objects', show(el), show(fl)));
  }
  return diffs;
}
