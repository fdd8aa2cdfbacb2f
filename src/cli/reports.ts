import { repositoryHome } from '../database-ledger.js';
import { appendFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { readCatalog } from '../catalog.js';
import type { Config } from '../config.js';
import { markdownReport } from '../report.js';
import { redact } from '../secrets.js';
import { PRIVATE_DIR, writeFileAtomic } from '../storage/files.js';

/**
 * Where a command's evidence goes: `reports/` in the repository (the first
 * destination) as JSON and Markdown, and the GitHub Actions job summary when
 * GITHUB_STEP_SUMMARY is set. Filled in by the command once its config is known.
 */
export interface ReportSpec {
  command: string;
  /** Where a failure's data goes in the document (default: the command's name). */
  dataKey?: string;
  config?: Config;
  target?: string;
}

export async function writeReports(
  spec: ReportSpec,
  outcome: {
    ok: boolean;
    exitCode: number;
    doc: Record<string, unknown>;
    error?: { message: string; details: string[] };
  },
): Promise<string | undefined> {
  if (!spec.config) return undefined;
  const at = new Date().toISOString();
  const backupId = backupIdOf(outcome.doc);
  const manifest = backupId
    ? (await readCatalog(spec.config.destinations, spec.config.signingKey)).find(
        (e) => e.id === backupId,
      )?.manifest
    : undefined;
  const markdown = redact(
    markdownReport({ command: spec.command, at, target: spec.target, manifest, ...outcome }),
  );
  const json = redact(
    `${JSON.stringify({ command: spec.command, at, ok: outcome.ok, exitCode: outcome.exitCode, ...outcome.doc, ...(outcome.error ? { error: outcome.error } : {}) }, null, 2)}\n`,
  );
  const dir = reportsDir(spec.config);
  const base = path.join(dir, `${at.replace(/[-:.]/g, '')}-${spec.command}`);
  try {
    await mkdir(dir, { recursive: true, mode: PRIVATE_DIR });
    await writeFileAtomic(`${base}.json`, json);
    await writeFileAtomic(`${base}.md`, markdown);
  } catch {
    // A report that cannot be written must not turn a result into a failure.
  }
  if (process.env.GITHUB_STEP_SUMMARY) {
    await appendFile(process.env.GITHUB_STEP_SUMMARY, `${markdown}\n`).catch(() => undefined);
  }
  return base;
}

/** The backup a command's document is about, wherever the command keeps it. */
export function backupIdOf(doc: Record<string, unknown>): string | undefined {
  const pick = (v: unknown, key: string): unknown =>
    v && typeof v === 'object' ? (v as Record<string, unknown>)[key] : undefined;
  const id =
    pick(doc.backup, 'id') ??
    pick(doc, 'backupId') ??
    pick(doc.verification, 'backupId') ??
    pick(pick(doc.gate, 'backup'), 'id') ??
    pick(doc.run, 'backupId') ??
    pick(doc.rollback, 'backupId');
  return typeof id === 'string' ? id : undefined;
}

/** Reports live beside the first local destination, else in .lifeboat/reports. */
export function reportsDir(config: Config): string {
  return path.join(repositoryHome(config), 'reports');
}
