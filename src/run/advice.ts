import type pg from 'pg';
import { readCatalog } from '../repository/catalog.js';
import type { Config } from '../config.js';
import { changesSince, type ChangeEstimate } from '../freshness.js';
import { readWriteCounters } from '../identity.js';
import type { RunReport } from './report-types.js';

/**
 * What an operator can do when a rollback stops half-way: the state the
 * database is in, and the commands to choose between. Pure.
 */
export function operatorAdvice(
  report: RunReport,
  runbookFile: string,
  sinceBackup?: ChangeEstimate,
): string[] {
  const rb = report.rollback;
  const lines: string[] = [];
  if (!rb) return lines;
  const undone = rb.outcomes.filter((o) => o.outcome === 'undone').map((o) => o.id);
  if (rb.remaining.length > 0)
    lines.push(`Still applied (newest first): ${rb.remaining.join(', ')}.`);
  if (undone.length > 0) lines.push(`Undone: ${undone.join(', ')}.`);
  for (const b of rb.blockers) lines.push(`Step ${b.stepId} cannot be undone: ${b.reason}.`);
  if (rb.proof && !rb.proof.equal) {
    lines.push(
      `Every down ran, but the database differs from its pre-run state in ${rb.proof.differences.length} place(s) (writes by other sessions during the run also show here):`,
      ...rb.proof.differences
        .slice(0, 10)
        .map((d) => `  ${d.kind} ${d.object}: expected ${d.expected}, found ${d.found}`),
    );
  }
  lines.push(
    'The database is in neither the pre-run nor the post-run state; nothing more was changed. Choose one:',
    `  fix forward: correct the runbook and run it again (it resumes after the last applied step): lifeboat run ${runbookFile}`,
    `  go back: undo by hand what has no working down, then tell lifeboat and let it undo the rest: lifeboat rollback ${report.runId} ${goBackFlags(report)}`.trimEnd(),
  );
  if (report.backupId) {
    const loss = !sinceBackup?.known
      ? `an unknown number of writes (${sinceBackup?.note ?? 'no statistics'})`
      : `at least ${sinceBackup.rowWrites} row write(s) made since it was taken (the statistics lag), by this run and by every other session`;
    lines.push(
      `  look at the verified backup ${report.backupId} (taken before the run) beside the target, losing nothing: lifeboat restore ${report.backupId}`,
      `  or replace the target with it, which loses ${loss}: lifeboat restore ${report.backupId} --swap --terminate`,
      '  (with run --freeze, lifeboat takes this last step by itself, because then nothing can be lost)',
    );
  }
  lines.push('  see the journal at any time: lifeboat status');
  return lines;
}

/** How much the target changed since the run's backup, from the database's statistics. */
export async function changesSinceBackup(
  config: Config,
  client: pg.ClientBase,
  backupId: string | null,
): Promise<ChangeEstimate | undefined> {
  if (!backupId) return undefined;
  const entry = (await readCatalog(config.destinations, config.signingKey)).find(
    (e) => e.id === backupId,
  );
  if (!entry?.manifest) return undefined;
  // This session's own writes reach the statistics only when flushed (PostgreSQL 15+).
  await client.query('select pg_stat_force_next_flush()').catch(() => undefined);
  await client.query('select pg_stat_clear_snapshot()').catch(() => undefined);
  return changesSince(entry.manifest.snapshot.counters, await readWriteCounters(client));
}

/** The --resolve flags that mark each blocking step as undone by hand. */
function goBackFlags(report: RunReport): string {
  return (report.rollback?.blockers ?? [])
    .map((b) => `--resolve ${b.stepId}=not-applied`)
    .join(' ');
}
