import type { Config } from '../config.js';
import { connect } from '../db.js';
import type { Progress } from '../progress.js';
import { restoreBackup } from '../restore/restore-backup.js';
import type { Target } from '../target.js';
import { unfreezeDatabase } from './freeze.js';
import { ensureJournal, readEvents, readRuns, type RunRow, type StepEvent } from './journal.js';

/**
 * The last rung of the rollback ladder: when steps cannot be undone by their
 * downs, restore the run's verified backup beside the target, prove it, and
 * swap it in, keeping the failed database under another name. Only for a run
 * that held the database frozen from before its backup: then the backup is
 * exactly what users had, and restoring it loses nothing.
 *
 * The restored database carries the journal as it was before the run, so the
 * run and its events are copied into it: the journal never forgets a run.
 */
export interface RungResult {
  backupId: string;
  replacedAs: string;
}

export async function rollBackByRestore(opts: {
  config: Config;
  target: Target;
  runId: string;
  backupId: string;
  progress: Progress;
  /** Every lifeboat session on the target must be closed before the swap; this closes the caller's. */
  release: () => Promise<void>;
}): Promise<RungResult> {
  const { target, runId, progress } = opts;
  const before = await connect(target, 'lifeboat restore rung');
  let run: RunRow | undefined;
  let events: StepEvent[];
  try {
    run = (await readRuns(before)).find((r) => r.id === runId);
    events = (await readEvents(before)).filter((e) => e.runId === runId);
  } finally {
    await before.end().catch(() => undefined);
  }
  await opts.release();
  const result = await restoreBackup({
    config: opts.config,
    target,
    backupId: opts.backupId,
    swap: true,
    terminate: true,
    keepOwners: true,
    progress,
  });
  const replacedAs = result.swapped!.replacedAs;
  const after = await connect(target, 'lifeboat restore rung');
  try {
    // The failed database stays for inspection; neither copy stays frozen.
    await unfreezeDatabase(after, target.database);
    await unfreezeDatabase(after, replacedAs);
    await ensureJournal(after);
    await copyRun(
      after,
      run,
      events,
      `rolled back by restoring backup ${opts.backupId}; the failed database is kept as ${replacedAs}`,
    );
  } finally {
    await after.end().catch(() => undefined);
  }
  return { backupId: opts.backupId, replacedAs };
}

async function copyRun(
  client: Awaited<ReturnType<typeof connect>>,
  run: RunRow | undefined,
  events: StepEvent[],
  note: string,
): Promise<void> {
  if (!run) return;
  await client.query('begin');
  try {
    await client.query(
      `insert into lifeboat_journal.runs (id, runbook, runbook_file, status, backup_id, host, pid, started_at, frozen_at, finished_at, error)
       values ($1, $2, $3, 'rolled-back', $4, $5, $6, $7, $8, clock_timestamp(), $9)
       on conflict (id) do update set status = 'rolled-back', finished_at = clock_timestamp(), error = excluded.error`,
      [
        run.id,
        run.runbook,
        run.runbookFile,
        run.backupId,
        run.host,
        run.pid,
        run.startedAt,
        run.frozenAt,
        note,
      ],
    );
    await client.query(`delete from lifeboat_journal.steps where run_id = $1`, [run.id]);
    for (const e of events) {
      await client.query(
        `insert into lifeboat_journal.steps (run_id, seq, step_id, kind, checksum, direction, status, transactional, undo, verify, started_at, finished_at, error)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
        [
          e.runId,
          e.seq,
          e.stepId,
          e.kind,
          e.checksum,
          e.direction,
          e.status,
          e.transactional,
          e.undo ? JSON.stringify(e.undo) : null,
          e.verify,
          e.startedAt,
          e.finishedAt,
          e.error,
        ],
      );
    }
    // The restore undid every step the run applied: the journal says so too.
    const applied = [...new Set(events.filter((e) => e.direction === 'up').map((e) => e.stepId))];
    for (const stepId of applied) {
      const last = [...events].reverse().find((e) => e.stepId === stepId)!;
      await client.query(
        `insert into lifeboat_journal.steps (run_id, seq, step_id, kind, checksum, direction, status, transactional, error)
         values ($1, (select coalesce(max(seq), 0) + 1 from lifeboat_journal.steps where run_id = $1), $2, $3, $4, 'down', 'done', true, $5)`,
        [run.id, stepId, last.kind, last.checksum, 'undone by the restore of the backup'],
      );
    }
    await client.query('commit');
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  }
}
