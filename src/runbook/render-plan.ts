import type { Plan, PlannedStep, StepState } from './plan.js';

const HEADER = ['#', 'step', 'kind', 'state', 'tx', 'if it fails', 'undo'];

/**
 * The plan as terminal lines: an aligned table of steps, each open step's
 * risks under it, then the verdict. Done steps' risks are history and left out.
 */
export function renderPlan(plan: Plan): string[] {
  const rows = plan.steps.map((s, i) => [
    String(i + 1),
    s.id,
    s.kind,
    s.appliedBy ? `${s.state} by ${s.appliedBy}` : s.state,
    s.transaction ? 'yes' : 'no',
    s.onFailure,
    s.undo,
  ]);
  const widths = HEADER.map((h, col) =>
    Math.max(h.length, ...rows.map((r) => (r[col] ?? '').length)),
  );
  const line = (cells: string[]): string =>
    `  ${cells.map((c, col) => c.padEnd(widths[col] ?? 0)).join('  ')}`.trimEnd();
  const indent = ' '.repeat(2 + (widths[0] ?? 0) + 2);

  const lines = [`Runbook ${plan.runbook} (${plan.file})`, line(HEADER)];
  plan.steps.forEach((step, i) => {
    lines.push(line(rows[i] ?? []));
    if (step.state !== 'done') lines.push(...riskLines(step, indent));
  });
  lines.push(summary(plan));
  if (plan.steps.some((s) => s.appliedBy === 'knex')) {
    lines.push(
      'done by knex: knex lists it as applied (knex migrate, outside lifeboat); lifeboat never runs it again or undoes it.',
    );
  }
  for (const reason of plan.refusals) lines.push(`Refused: ${reason}`);
  return lines;
}

function riskLines(step: PlannedStep, indent: string): string[] {
  return step.risks.map(
    (r) => `${indent}! ${r.code}: ${r.message}${r.where === undefined ? '' : ` (${r.where})`}`,
  );
}

function summary(plan: Plan): string {
  const order: StepState[] = ['pending', 'done', 'in-doubt', 'changed'];
  const counts = order
    .filter((state) => plan.counts[state] > 0)
    .map((state) => `${plan.counts[state]} ${state}`)
    .join(', ');
  const undo = plan.undoable
    ? 'every pending step can be undone'
    : 'some pending steps cannot be undone (see no-down)';
  return `${plan.steps.length} step${plan.steps.length === 1 ? '' : 's'}: ${counts}; ${undo}.`;
}
