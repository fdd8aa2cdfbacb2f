import { reportsDir } from '../repository/home.js';
import { appendFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { readBackupManifest } from '../repository/catalog.js';
import type { Config } from '../config.js';
import type { Manifest } from '../repository/manifest.js';
import { markdownReport, type CommandDocument } from '../report.js';
import { redact } from '../secrets.js';
import { PRIVATE_DIR, writeFileAtomic } from '../files.js';

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
  /** The backup the command is about, as soon as the command knows it; its manifest when in hand. */
  backup?: { id: string; manifest?: Manifest };
}

export async function writeReports(
  spec: ReportSpec,
  outcome: {
    ok: boolean;
    exitCode: number;
    doc: CommandDocument;
    error?: { message: string; details: string[] };
  },
): Promise<string | undefined> {
  if (!spec.config) return undefined;
  const at = new Date().toISOString();
  const manifest =
    spec.backup?.manifest ??
    (spec.backup
      ? await readBackupManifest(spec.config.destinations, spec.backup.id, spec.config.signingKey)
      : undefined);
  const markdown = redact(
    markdownReport({ command: spec.command, at, target: spec.target, manifest, ...outcome }),
  );
  const json = redact(
    `${JSON.stringify({ command: spec.command, at, ok: outcome.ok, exitCode: outcome.exitCode, ...(spec.backup ? { backupId: spec.backup.id } : {}), ...outcome.doc, ...(outcome.error ? { error: outcome.error } : {}) }, null, 2)}\n`,
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
