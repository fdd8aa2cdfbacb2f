import { quoteIdent, type SqlRunner } from '../db.js';

/** A knex bookkeeping table, as a runbook's knex step or a stored undo names it. */
export interface KnexTableRef {
  tableName: string;
  schemaName?: string;
}

/**
 * What knex's own tables list: for each table (by `knexTableKey`), each
 * migration name with its batch. A table that does not exist lists nothing.
 */
export type KnexTables = ReadonlyMap<string, ReadonlyMap<string, number>>;

export function knexTableKey(ref: KnexTableRef): string {
  return `${ref.schemaName ?? ''}.${ref.tableName}`;
}

export function tableLabel(ref: KnexTableRef): string {
  return ref.schemaName ? `${ref.schemaName}.${ref.tableName}` : ref.tableName;
}

/** Whether knex lists `name` in its table; its batch when it does. */
export function knexBatch(
  tables: KnexTables,
  ref: KnexTableRef & { name: string },
): number | undefined {
  return tables.get(knexTableKey(ref))?.get(ref.name);
}

/**
 * Read knex's tables (with lifeboat's own connection; knex itself is not
 * needed to read them). Without a schema the table is found on the search
 * path, as knex finds it.
 */
export async function readKnexTables(
  client: SqlRunner,
  refs: Iterable<KnexTableRef>,
): Promise<KnexTables> {
  const tables = new Map<string, Map<string, number>>();
  for (const ref of refs) {
    const key = knexTableKey(ref);
    if (tables.has(key)) continue;
    const qualified = ref.schemaName
      ? `${quoteIdent(ref.schemaName)}.${quoteIdent(ref.tableName)}`
      : quoteIdent(ref.tableName);
    const found = await client.query(`select to_regclass($1)::text as t`, [qualified]);
    const listed = new Map<string, number>();
    if ((found.rows[0] as { t: string | null } | undefined)?.t) {
      const res = await client.query(`select name, batch from ${qualified} order by id`);
      for (const row of res.rows as { name: string; batch: number }[])
        listed.set(row.name, row.batch);
    }
    tables.set(key, listed);
  }
  return tables;
}
