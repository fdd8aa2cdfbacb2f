import type { RunReport } from './runner.js';

/**
 * What an operator can do when a rollback stops half-way: the state the
 * database is in, and the commands to choose between. Pure.
 */
export function operatorAdvice(report: RunReport, runbookFile: string): string[] {
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
    `  go back: undo by hand what has no working down, then: lifeboat rollback ${report.runId}`,
  );
  if (report.backupId) {
    lines.push(
      `  start over from the verified backup ${report.backupId} (taken before the run): lifeboat backups show ${report.backupId}`,
    );
  }
  lines.push('  see the journal at any time: lifeboat status');
  return lines;
}
