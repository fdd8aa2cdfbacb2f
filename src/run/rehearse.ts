import { findCopies } from '../repository/catalog.js';
import type { Config } from '../config.js';
import { connect } from '../db.js';
import { GuardRefusedError } from '../errors.js';
import { bindingOf, type RehearsalRecord } from '../repository/manifest.js';
import { silentProgress, type Progress } from '../progress.js';
import { REHEARSALS_DIR, writeRecord } from '../repository/copies.js';
import { checkCopies, chooseCopies, copyProblems } from '../restore/copies.js';
import { describeDifference, restoreAndProve } from '../restore/prove.js';
import { runbookChecksum } from '../runbook/checksum.js';
import type { Runbook } from '../runbook/types.js';
import { intoScratch, withScratchDatabase } from '../restore/scratch.js';
import { scratchServer, type Target } from '../target.js';
import { readTargetState, targetChange, waitForSessionsToLeave } from '../target-watch.js';
import type { StepRunner } from './execute.js';
import { applySteps, priorEffect } from './apply-steps.js';
import { readKnexTruth } from './journal-view.js';
import { withKnexSession } from './knex-migration.js';
import { JOURNAL_SCHEMA, readEvents } from './journal.js';
import { recordRun, takeProof } from './begin.js';
import { rollbackRun } from './rollback.js';
import { newRunId } from './runner-id.js';
import { stepStates, withKnexTruth } from './state.js';

/** The application name of every session a rehearsal's steps open: how they are found on the target. */
const REHEARSAL_APPLICATION = 'lifeboat rehearsal';

export async function rehearseRunbook(opts: {
  config: Config;
  target: Target;
  runbook: Runbook;
  backupId: string;
  progress: Progress;
}): Promise<RehearsalRecord> {
  const { config, runbook, backupId, progress } = opts;
  const started = Date.now();
  const copies = await findCopies(config.destinations, backupId);
  const { checks, manifest } = await checkCopies(copies, config.signingKey, progress);
  const intactCopies = copies.filter((c) =>
    checks.some((k) => k.destination === c.destination && k.intact),
  );
  const [intact] = chooseCopies(copies, checks);
  if (!manifest || !intact) {
    throw new GuardRefusedError(`Backup ${backupId} has no intact copy to rehearse on.`, {
      details: copyProblems(checks),
    });
  }
  const server = scratchServer(config.scratchUrl, opts.target);
  const record: RehearsalRecord = {
    at: new Date().toISOString(),
    ...bindingOf(manifest),
    runbook: runbook.name,
    runbookChecksum: runbookChecksum(
      runbook.name,
      runbook.steps.map((s) => s.checksum),
    ),
    passed: false,
    steps: runbook.steps.map((s) => ({
      id: s.id,
      outcome: 'not-run',
    })),
    rollback: { complete: false, undone: [], differences: [] },
    durationMs: 0,
  };

  const targetBefore = await readTargetState(opts.target, [JOURNAL_SCHEMA]);
  // The pg_restore is chosen as verify and restore choose it: the server's version, able to read the archive.
  await withScratchDatabase(
    server,
    'rehearse',
    manifest,
    async (scratch) => {
      const { differences } = await restoreAndProve({
        copy: intact,
        manifest,
        config,
        ...intoScratch(scratch),
        progress,
        tasks: {
          restore: `Restore backup ${backupId} into ${scratch.name} for the rehearsal`,
          fingerprint: `Fingerprint ${scratch.name}`,
        },
      });
      // Steps rehearsed on anything but the backup would prove nothing about it.
      if (differences.length > 0) {
        throw new GuardRefusedError(
          `Backup ${backupId} restored into ${scratch.name} for the rehearsal, but its content differs from the backup in ${differences.length} place(s); nothing was rehearsed.`,
          { details: differences.map(describeDifference) },
        );
      }
      const client = await connect(scratch.target, 'lifeboat rehearsal');
      await withKnexSession(scratch.target, async (knex) => {
        const locks = new Map<string, string[]>();
        const runner: StepRunner = {
          client,
          target: scratch.target,
          runId: `rehearsal-${newRunId()}`,
          directory: runbook.directory,
          knex,
          observeLocks: (id, held) => locks.set(id, held),
          applicationName: REHEARSAL_APPLICATION,
        };
        await recordRun(
          runner,
          {
            runbook: runbook.name,
            runbookFile: runbook.file,
            backupId,
            host: 'rehearsal',
            pid: process.pid,
            frozenAt: null,
          },
          'rehearsal',
        );
        // The copy carries the journal and knex's table as they were at the backup: what the target
        // had applied stays applied. Read before knex's tables are created for the rehearsal.
        const events = await readEvents(client);
        const tables = await readKnexTruth(client, events, runbook);
        const states = withKnexTruth(stepStates(events, runbook.name), tables);
        await takeProof(runner, runbook, silentProgress, 'rehearsal');
        const { outcomes, failure } = await applySteps(runner, runbook.steps, {
          prior: (step) => priorEffect(step, states, tables),
          inDoubt:
            'it is in doubt in the backup’s journal; decide it on the target first (lifeboat run --resolve)',
          title: (i, step) => `Rehearse step ${i + 1}/${runbook.steps.length}: ${step.id}`,
          progress,
        });
        record.steps = outcomes.map(({ id, outcome, durationMs }) =>
          outcome === 'applied'
            ? { id, outcome, durationMs, locks: locks.get(id) }
            : outcome === 'failed'
              ? { id, outcome, durationMs }
              : { id, outcome: outcome === 'already-applied' ? outcome : 'not-run' },
        );
        if (failure) {
          record.failedStep = failure.stepId;
          record.error = failure.error;
        }
        const byId = new Map(runbook.steps.map((s) => [s.id, s]));
        const rollback = await rollbackRun({
          runner,
          runbook: runbook.name,
          timeouts: (id) => byId.get(id)?.timeouts ?? {},
          resolutions: {},
          progress,
        });
        record.rollback = {
          complete: rollback.complete,
          undone: rollback.outcomes.filter((o) => o.outcome === 'undone').map((o) => o.id),
          differences: rollback.proof?.differences ?? [],
        };
        if (!rollback.complete && !record.error) {
          record.error = `its rollback did not return to the backup's state: ${rollback.blockers.map((b) => `${b.stepId} ${b.reason}`).join('; ') || `${record.rollback.differences.length} difference(s)`}`;
        }
        record.passed = !record.failedStep && rollback.complete;
      }).finally(() => client.end().catch(() => undefined));
    },
    config,
  );
  // Every way a step could find a database led to the copy; if the target changed anyway, say so.
  await waitForSessionsToLeave(opts.target, REHEARSAL_APPLICATION);
  const change = targetChange(targetBefore, await readTargetState(opts.target, [JOURNAL_SCHEMA]));
  if (change) {
    record.targetChanged = change;
    record.passed = false;
    record.error = `the target database changed during the rehearsal: ${change}; a step reached it instead of the scratch copy${record.error ? ` (and ${record.error})` : ''}`;
  }
  record.durationMs = Date.now() - started;
  for (const c of intactCopies) await writeRecord(c, REHEARSALS_DIR, record, config.signingKey);
  return record;
}

/** A failed rehearsal refuses the real run, naming the step. */
export function rehearsalRefusal(record: RehearsalRecord): GuardRefusedError {
  const failed =
    record.failedStep && !record.targetChanged
      ? `step ${record.failedStep} failed on the rehearsal copy: ${record.error ?? ''}`
      : (record.error ?? 'it did not pass');
  const undone = record.rollback.undone;
  const rollback = record.rollback.complete
    ? `; the rollback ${undone.length > 0 ? `undid ${undone.join(', ')} and ` : ''}brought the copy back to the backup's state`
    : `; the rollback ${undone.length > 0 ? `undid ${undone.join(', ')} but ` : ''}did not bring the copy back to the backup's state`;
  const what = `${failed}${rollback}`;
  return new GuardRefusedError(
    `The rehearsal of ${record.runbook} on backup ${record.backupId} failed: ${what}.`,
    {
      details: [
        ...record.rollback.differences.map(
          (d) => `${d.kind} ${d.object}: expected ${d.expected}, found ${d.found}`,
        ),
        record.targetChanged
          ? 'The TARGET was changed by a step: find what it wrote before anything else. Every step must reach its database through DATABASE_URL or the PG* variables.'
          : 'Nothing was changed in the target. Fix the runbook, then rehearse again: lifeboat rehearse <runbook>',
      ],
      data: record,
    },
  );
}
