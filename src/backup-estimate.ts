import type pg from 'pg';
import type { CatalogEntry } from './repository/catalog.js';
import { formatBytes, formatDuration } from './units.js';

/**
 * Table data of the database a session is connected to, TOAST included: an
 * upper bound for a compressed dump, and the size each phase of a backup
 * grows with (each was measured linear in it).
 */
export async function tableDataBytes(client: pg.ClientBase): Promise<number> {
  const res = await client.query<{ bytes: string | null }>(
    `select sum(pg_table_size(c.oid))::text as bytes
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind in ('r', 'm', 'p')
        and n.nspname not in ('pg_catalog', 'information_schema')
        and n.nspname not like 'pg\\_toast%' and n.nspname not like 'pg\\_temp%'`,
  );
  return Number(res.rows[0]?.bytes ?? 0);
}

export interface BackupEstimate {
  /** The whole verified backup, scaled from the last one by the data's growth since. */
  ms: number;
  /** One sentence: the estimate and what it stands on. */
  detail: string;
}

/**
 * The time of the next verified backup, from the last backup of the target:
 * its dump and fingerprints (createdAt to completedAt, checksums included)
 * plus its last successful verification, each scaled by how the table data
 * grew since (linearly: so each phase was measured to grow). Undefined when
 * there is no earlier backup to go by.
 */
export function estimateNextBackup(
  last: CatalogEntry | undefined,
  bytesNow: number,
): BackupEstimate | undefined {
  const m = last?.manifest;
  if (!m) return undefined;
  const backupMs = Math.max(0, Date.parse(m.completedAt) - Date.parse(m.createdAt));
  const verified = last.verifications.filter((v) => v.ok).at(-1);
  const bytesThen = m.dump.sourceBytes;
  const growth = bytesThen && bytesThen > 0 && bytesNow > 0 ? bytesNow / bytesThen : 1;
  const ms = (backupMs + (verified?.durationMs ?? 0)) * growth;
  const took = verified
    ? `took ${formatDuration(backupMs)} to dump and ${formatDuration(verified.durationMs)} to verify`
    : `took ${formatDuration(backupMs)} to dump and was not verified, so verifying is not counted`;
  const data =
    bytesThen && bytesThen > 0
      ? `, with ${formatBytes(bytesThen)} of table data; now ${formatBytes(bytesNow)}`
      : '';
  return {
    ms,
    detail: `about ${formatDuration(ms)} (the last backup, ${m.id}, ${took}${data})`,
  };
}
