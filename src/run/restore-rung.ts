import type { Config } from '../config.js';
import { connect } from '../db.js';
import type { Progress } from '../progress.js';
import { restoreBackup } from '../restore/restore-backup.js';
import { pausePoint } from '../faults.js';
import { withDatabase, type Target } from '../target.js';
import { unfreezeDatabase } from './freeze.js';
import {
  ensureJournal,
  importRun,
  readEvents,
  readRuns,
  type RunRow,
  type StepEvent,
} from './journal.js';

/**
 * The last rung of the rollback ladder: when steps cannot be undone by their
 * downs, restore the run's verified backup beside the target, prove it, and
 * swap it in, keeping the failed database under another name. Only for a run
 * that held the database frozen from before its backup: then the backup is
 * exactly what users had, and restoring it loses nothing.
 *
 * The restored database carries the journal as it was before the run, so the
 * run and its events are copied into it, before the swap: at no instant does
 * the database under the target's name forget the run.
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
  const note = (replacedAs: string) =>
    `rolled back by restoring backup ${opts.backupId}; the failed database is kept as ${replacedAs}`;
  const result = await restoreBackup({
    config: opts.config,
    target,
    backupId: opts.backupId,
    swap: true,
    terminate: true,
    keepOwners: true,
    progress,
    beforeSwap: async (restored, replacedAs) => {
      const into = await connect(withDatabase(target, restored), 'lifeboat restore rung');
      try {
        await ensureJournal(into);
        await importRun(into, run, events, note(replacedAs));
      } finally {
        await into.end().catch(() => undefined);
      }
    },
  });
  const replacedAs = result.swapped!.replacedAs;
  await pausePoint('restore:swapped');
  const after = await connect(target, 'lifeboat restore rung');
  try {
    // The failed database stays for inspection; neither copy stays frozen.
    await unfreezeDatabase(after, target.database);
    await unfreezeDatabase(after, replacedAs);
  } finally {
    await after.end().catch(() => undefined);
  }
  return { backupId: opts.backupId, replacedAs };
}
