import { hostname } from 'node:os';
import { connect } from '../db.js';
import { BadInputError } from '../errors.js';
import { loadRunbook } from '../runbook/load.js';
import { planRunbook } from '../runbook/plan.js';
import type { Runbook } from '../runbook/types.js';
import { describeTarget, type Target } from '../target.js';
import { appliedSteps, readJournal } from './journal-view.js';
import { ensureJournal, insertRun, recordEvent, setRunStatus } from './journal.js';
import { withRunLock } from './lock.js';
import { newRunId } from './runner-id.js';

/**
 * `lifeboat baseline RUNBOOK --to STEP`: record the steps up to STEP as
 * applied before lifeboat was adopted (they were run by hand, or by another
 * tool), like Flyway's baseline or Sqitch's `--log-only`. Nothing is run. The
 * record is a run of its own kind: its steps have no undo, `rollback` refuses
 * it and never takes it for "the last run". knex migrations need no baseline:
 * knex's own table says which are applied.
 */
export interface BaselineReport {
  runId: string | null;
  runbook: string;
  target: string;
  dryRun: boolean;
  /** Recorded as applied before adoption (or, with --dry-run, would be). */
  recorded: string[];
  /** Left as they are, with why. */
  skipped: { id: string; reason: string }[];
}

/** What a baseline up to `to` records, or why it cannot. Pure. */
export function planBaseline(
  runbook: Runbook,
  to: string,
  applied: ReturnType<typeof appliedSteps>,
): Pick<BaselineReport, 'recorded' | 'skipped'> {
  const end = runbook.steps.findIndex((s) => s.id === to);
  if (end < 0) {
    const groups = runbook.steps.some(
      (s) => s.kind === 'knex-migration' && (s.group === to || s.name === to),
    );
    throw new BadInputError(
      groups
        ? `${to} is a knex step: knex steps need no baseline, knex's own migrations table says which are applied. Name a sql, shell or check step.`
        : `Runbook ${runbook.file} has no step ${to}; its steps are ${runbook.steps.map((s) => s.id).join(', ')}.`,
    );
  }
  const plan = planRunbook(runbook, applied);
  if (plan.refusals.length > 0) {
    throw new BadInputError(
      `Runbook ${runbook.file} does not match this database's journal, so a baseline would contradict it.`,
      { details: plan.refusals },
    );
  }
  const recorded: string[] = [];
  const skipped: BaselineReport['skipped'] = [];
  for (const step of plan.steps.slice(0, end + 1)) {
    if (step.kind === 'knex-migration') {
      skipped.push({ id: step.id, reason: "knex's migrations table says whether it is applied" });
    } else if (step.state === 'done') {
      skipped.push({ id: step.id, reason: 'already recorded as applied' });
    } else if (step.state === 'pending') {
      recorded.push(step.id);
    } else {
      throw new BadInputError(
        `Step ${step.id} is ${step.state} in this database's journal: decide it first (lifeboat run --resolve, or lifeboat rollback); a baseline never overrides the journal.`,
      );
    }
  }
  // Recording earlier steps as applied under a step lifeboat applied would reorder history.
  const later = plan.steps.slice(end + 1).find((s) => s.state !== 'pending' && !s.appliedBy);
  if (later && recorded.length > 0) {
    throw new BadInputError(
      `Step ${later.id}, after ${to}, is already applied by lifeboat: steps before it cannot be recorded as applied before adoption.`,
    );
  }
  return { recorded, skipped };
}

export async function baselineRunbook(opts: {
  target: Target;
  runbookFile: string;
  to: string;
  dryRun: boolean;
  lockWaitMs: number;
}): Promise<BaselineReport> {
  const runbook = await loadRunbook(opts.runbookFile);
  return withRunLock(opts.target, 'baseline', opts.lockWaitMs, async () => {
    const client = await connect(opts.target, 'lifeboat baseline');
    try {
      const journal = await readJournal(client, runbook);
      const open = journal.runs.find(
        (r) =>
          r.runbook === runbook.name &&
          ['running', 'rolling-back', 'needs-operator'].includes(r.status),
      );
      if (open) {
        throw new BadInputError(
          `Run ${open.id} of ${runbook.name} is ${open.status}: finish it (lifeboat run) or undo it (lifeboat rollback) before recording a baseline.`,
        );
      }
      const decided = planBaseline(
        runbook,
        opts.to,
        appliedSteps(journal.events, runbook, journal.knex),
      );
      const report: BaselineReport = {
        runId: null,
        runbook: runbook.name,
        target: describeTarget(opts.target),
        dryRun: opts.dryRun,
        ...decided,
      };
      if (opts.dryRun || decided.recorded.length === 0) return report;
      const runId = `baseline-${newRunId()}`;
      const byId = new Map(runbook.steps.map((s) => [s.id, s]));
      await ensureJournal(client);
      await client.query('begin');
      try {
        await insertRun(client, {
          id: runId,
          runbook: runbook.name,
          runbookFile: runbook.file,
          status: 'baseline',
          backupId: null,
          host: hostname(),
          pid: process.pid,
          frozenAt: null,
        });
        for (const id of decided.recorded) {
          const step = byId.get(id)!;
          await recordEvent(client, {
            runId,
            stepId: id,
            kind: step.kind,
            checksum: step.checksum,
            direction: 'up',
            status: 'done',
            transactional: true,
            // Applied before adoption: lifeboat never undoes it.
            undo: { kind: 'none' },
            error: 'baseline: applied before lifeboat was adopted',
          });
        }
        await setRunStatus(client, runId, 'baseline');
        await client.query('commit');
      } catch (err) {
        await client.query('rollback').catch(() => undefined);
        throw err;
      }
      report.runId = runId;
      return report;
    } finally {
      await client.end().catch(() => undefined);
    }
  });
}
