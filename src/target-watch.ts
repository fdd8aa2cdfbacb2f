import { setTimeout as sleep } from 'node:timers/promises';
import { withClient } from './db.js';
import { describeSchema } from './fingerprint.js';
import { sha256Hex } from './repository/manifest.js';
import type { Target } from './target.js';

/**
 * What a rehearsal must leave as it found it: the rows written to the
 * target's tables (its own statistics) and its schema. A step that reaches
 * the target despite being pointed at the scratch copy shows in one of them.
 * Writes by other sessions show too: the check cannot tell them apart.
 */
export interface TargetState {
  rowWrites: string;
  /** Rows written to pg_class: a relation created and dropped again leaves no other trace. */
  catalogWrites: string;
  schemaSha256: string;
}

export async function readTargetState(target: Target, exclude: string[]): Promise<TargetState> {
  return withClient(
    target,
    async (client) => {
      const writes = await client.query<{ rows: string; catalog: string }>(
        `select (select coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)
                   from pg_catalog.pg_stat_user_tables where schemaname <> all($1::text[]))::text as rows,
                (select n_tup_ins + n_tup_upd + n_tup_del from pg_catalog.pg_stat_sys_tables
                  where relid = 'pg_catalog.pg_class'::pg_catalog.regclass)::text as catalog`,
        [exclude],
      );
      const schema = await describeSchema(client, exclude);
      return {
        rowWrites: writes.rows[0]!.rows,
        catalogWrites: writes.rows[0]!.catalog,
        schemaSha256: sha256Hex(schema.join('\n')),
      };
    },
    'lifeboat target check',
  );
}

/** How the target changed, in words; undefined when it did not. */
export function targetChange(before: TargetState, after: TargetState): string | undefined {
  const writes = BigInt(after.rowWrites) - BigInt(before.rowWrites);
  const catalog = BigInt(after.catalogWrites) - BigInt(before.catalogWrites);
  const parts = [
    ...(writes !== 0n ? [`${writes} row write(s) to its tables`] : []),
    ...(after.schemaSha256 !== before.schemaSha256
      ? ['its schema changed']
      : catalog !== 0n
        ? [`${catalog} change(s) to its schema, since undone`]
        : []),
  ];
  return parts.length > 0 ? parts.join(', and ') : undefined;
}

/**
 * Wait (a few seconds at most) until no session announcing `applicationName`
 * is connected to the target: a session's statistics are counted once it ends.
 */
export async function waitForSessionsToLeave(
  target: Target,
  applicationName: string,
): Promise<void> {
  const deadline = Date.now() + 5000;
  await withClient(target, async (client) => {
    while (Date.now() < deadline) {
      const res = await client.query(
        `select 1 from pg_catalog.pg_stat_activity
          where datname = current_database() and application_name = $1 and pid <> pg_backend_pid()`,
        [applicationName],
      );
      if ((res.rowCount ?? 0) === 0) return;
      await sleep(100);
    }
  });
}
