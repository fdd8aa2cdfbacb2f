import type { RunReport } from '../run/report-types.js';
import { formatDuration } from '../units.js';

const marks: Record<string, string> = {
  applied: '✔ applied',
  'already-applied': '· already applied',
  failed: '✖ failed',
  interrupted: '✖ interrupted',
  undone: '↩ undone',
  'not-run': '· not run',
  'undo-failed': '✖ undo failed',
  'cannot-undo': '✖ cannot undo',
  skipped: '· nothing to undo',
};

/** A run's record as terminal lines: every step with what happened to it, then the proof. */
export function runReportLines(report: RunReport): string[] {
  const lines = report.runId
    ? [
        `Run ${report.runId} of ${report.runbook} on ${report.target}${report.resumed ? ' (resumed)' : ''}`,
        `  guarded by verified backup ${report.backupId ?? '(none recorded)'}`,
      ]
    : [
        `Runbook ${report.runbook} on ${report.target}: every step is already applied; nothing to do`,
        '',
      ];
  const width = Math.max(...report.steps.map((s) => s.id.length), 4);
  for (const s of report.steps) {
    const time = s.durationMs !== undefined ? ` (${formatDuration(s.durationMs)})` : '';
    lines.push(
      `  ${s.id.padEnd(width)}  ${marks[s.outcome] ?? s.outcome}${time}${s.error ? ` — ${s.error}` : ''}`,
    );
  }
  const undone = report.rollback?.outcomes.filter((o) => o.outcome === 'undone') ?? [];
  if (report.rollback && undone.length > 0) {
    lines.push(`  rollback: ${undone.map((o) => o.id).join(' → ')}`);
  }
  const proof = report.rollback?.proof;
  if (proof?.equal) {
    lines.push(
      '  proof: every table, sequence, large object and the schema match the fingerprints taken before the run',
    );
  }
  if (report.rollback?.nothingApplied) {
    lines.push(
      '  nothing applied: the run stopped before its first step; the database is as before it',
    );
  }
  lines.push(`  status: ${report.status}`);
  return lines;
}
