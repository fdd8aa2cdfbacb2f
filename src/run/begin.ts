import { pausePoint } from '../faults.js';
import { fingerprintDatabase } from '../fingerprint-session.js';
import type { Progress } from '../progress.js';
import type { Runbook } from '../runbook/types.js';
import type { StepRunner } from './execute.js';
import {
  JOURNAL_SCHEMA,
  ensureJournal,
  insertRun,
  saveCreatedTables,
  savePreFingerprints,
  type RunRow,
} from './journal.js';

/**
 * How every run begins, the real one and its rehearsal alike: the journal and
 * the run's record, then the fingerprints that will prove a rollback and the
 * tables the run's tools create. A fault test stops at `<points>:recorded`,
 * `:fingerprinted` and `:knex-tables`.
 */
export async function recordRun(
  runner: StepRunner,
  run: Omit<RunRow, 'id' | 'status' | 'startedAt' | 'finishedAt' | 'error'>,
  points: string,
): Promise<void> {
  await ensureJournal(runner.client);
  await insertRun(runner.client, { ...run, id: runner.runId, status: 'running' });
  await pausePoint(`${points}:recorded`);
}

/**
 * The fingerprints that will prove a rollback, before the first step. A run
 * stopped before they were saved applied nothing: a rollback closes it as
 * such, a resumed run takes them first.
 */
export async function takeProof(
  runner: StepRunner,
  runbook: Runbook,
  progress: Progress,
  points: string,
): Promise<void> {
  const before = await progress.task('Fingerprint the database before the first step', () =>
    fingerprintDatabase(runner.target, {
      excludeSchemas: [JOURNAL_SCHEMA],
      contentMethod: 'fastest',
      session: runner.client,
    }),
  );
  await pausePoint(`${points}:fingerprinted`);
  await savePreFingerprints(runner.client, runner.runId, before);
  // knex creates its bookkeeping tables on first use; a complete rollback removes them again.
  const save = (tables: string[]) => saveCreatedTables(runner.client, runner.runId, tables);
  const created = await runner.knex.ensureTables(runbook.steps, save);
  await pausePoint(`${points}:knex-tables`);
  await save(created);
}
