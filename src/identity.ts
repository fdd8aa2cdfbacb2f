import type pg from 'pg';
import { BadInputError } from './errors.js';
import { JOURNAL_SCHEMA } from './run/journal.js';

/** What makes a backup "of this target": the server's system identifier and the database. */
export interface TargetIdentity {
  systemIdentifier: string;
  database: string;
  databaseOid: number;
  serverVersion: string;
  serverMajor: number;
  encoding: string;
}

export async function readIdentity(client: pg.ClientBase): Promise<TargetIdentity> {
  let row: Record<string, string> | undefined;
  try {
    const res = await client.query<Record<string, string>>(
      `select (select system_identifier::text from pg_control_system()) as system_identifier,
              current_database() as database,
              (select oid::text from pg_database where datname = current_database()) as oid,
              current_setting('server_version') as version,
              current_setting('server_version_num') as version_num,
              pg_encoding_to_char((select encoding from pg_database where datname = current_database())) as encoding`,
    );
    row = res.rows[0];
  } catch (cause) {
    if ((cause as { code?: string }).code === '42501') {
      throw new BadInputError(
        'The role may not read the server identity (pg_control_system); grant it with: GRANT pg_monitor TO <role>, or use a superuser.',
        { cause },
      );
    }
    throw cause;
  }
  if (!row) throw new Error('identity query returned no row');
  return {
    systemIdentifier: row.system_identifier!,
    database: row.database!,
    databaseOid: Number(row.oid),
    serverVersion: row.version!,
    serverMajor: Math.floor(Number(row.version_num) / 10000),
    encoding: row.encoding!,
  };
}

export function sameTarget(a: TargetIdentity, b: TargetIdentity): boolean {
  return a.systemIdentifier === b.systemIdentifier && a.database === b.database;
}

/**
 * The database's own write counters, so lifeboat can say how much changed
 * since a backup's snapshot. Statistics are approximate and can be reset;
 * `statsReset` tells when a comparison is no longer meaningful.
 */
export interface WriteCounters {
  rowWrites: string;
  commits: string;
  statsReset: string | null;
  /** `rowWrites` counts user tables only (absent: every table, catalogs included, as before). */
  scope?: 'user-tables';
}

export async function readWriteCounters(client: pg.ClientBase): Promise<WriteCounters> {
  // Rows written in user tables only: the catalog writes of DDL (a run's own CREATE TABLE) and
  // lifeboat's journal are not data a restore would lose.
  const res = await client.query<{ writes: string; commits: string; reset: Date | null }>(
    `select coalesce((select sum(n_tup_ins + n_tup_upd + n_tup_del) from pg_stat_user_tables
                       where schemaname <> $1), 0)::text as writes,
            xact_commit::text as commits, stats_reset as reset
       from pg_stat_database where datname = current_database()`,
    [JOURNAL_SCHEMA],
  );
  const row = res.rows[0];
  return {
    rowWrites: row?.writes ?? '0',
    commits: row?.commits ?? '0',
    statsReset: row?.reset ? row.reset.toISOString() : null,
    scope: 'user-tables',
  };
}
