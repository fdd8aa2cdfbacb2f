import { readFile, readdir, rm } from 'node:fs/promises';
import path from 'node:path';

/**
 * `backups prune` takes the reports with it: a report about a backup goes
 * once no destination lists that backup any more; a report about no backup
 * (status, a refused gate) goes once older than `retention.reports`. A report
 * about a backup still listed stays, however old: it is that backup's evidence.
 */
export interface StoredReport {
  /** The path without extension: `<base>.json` and `<base>.md`. */
  base: string;
  at: string;
  backupId: string | undefined;
}

export function planReportPrune(
  reports: readonly StoredReport[],
  listed: ReadonlySet<string>,
  maxAgeMs: number,
  now: Date,
): StoredReport[] {
  return reports.filter((r) =>
    r.backupId !== undefined
      ? !listed.has(r.backupId)
      : now.getTime() - Date.parse(r.at) > maxAgeMs,
  );
}

/** The reports in `dir`, each with the backup it is about (its `backupId`). */
export async function listReports(dir: string): Promise<StoredReport[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const reports: StoredReport[] = [];
  for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
    const base = path.join(dir, name.slice(0, -'.json'.length));
    try {
      const doc = JSON.parse(await readFile(`${base}.json`, 'utf8')) as Record<string, unknown>;
      // A report that is not one of lifeboat's (no time in it) is left alone.
      if (typeof doc.at !== 'string' || Number.isNaN(Date.parse(doc.at))) continue;
      reports.push({
        base,
        at: doc.at,
        backupId: typeof doc.backupId === 'string' ? doc.backupId : undefined,
      });
    } catch {
      continue;
    }
  }
  return reports;
}

export async function removeReport(report: StoredReport): Promise<void> {
  await rm(`${report.base}.md`, { force: true });
  await rm(`${report.base}.json`, { force: true });
}
