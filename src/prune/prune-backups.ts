import path from 'node:path';
import type { Config } from '../config.js';
import { withClient } from '../db.js';
import { BadInputError, errorMessage } from '../errors.js';
import { readIdentity, type TargetIdentity } from '../identity.js';
import { planPrune, type PruneDecision, type UnfinishedRun } from './policy.js';
import { listReports, planReportPrune, removeReport } from './reports.js';
import { readCatalog } from '../repository/catalog.js';
import { removeCopy } from '../repository/copies.js';
import { reportsDir } from '../repository/home.js';
import { readRuns } from '../run/journal.js';
import { describeTarget, type Target } from '../target.js';

export interface PruneOutcome {
  dryRun: boolean;
  decisions: PruneDecision[];
  /** The reports that went (or would go) with them, by name. */
  reports: string[];
}

/**
 * `backups prune`: decide over every destination's copies with the target's
 * unfinished runs in view, let `confirm` see what would go (it throws to
 * stop), then remove each copy whole, manifest first, and the reports about
 * backups no destination lists any more.
 */
export async function pruneBackups(opts: {
  config: Config;
  target: Target;
  /** Verified backups to keep in each destination, over the config's. */
  keep: number | undefined;
  dryRun: boolean;
  confirm: (removed: PruneDecision[]) => Promise<void>;
  signal: AbortSignal;
}): Promise<PruneOutcome> {
  const { config } = opts;
  const entries = await readCatalog(config.destinations, config.signingKey);
  const decisions = planPrune(entries, {
    ...(await journalFacts(opts.target)),
    destinations: config.destinations.map((d) => ({
      name: d.name,
      keep: opts.keep ?? d.keep ?? config.keep,
    })),
  });
  const removed = decisions.filter((d) => d.action === 'remove');
  if (!opts.dryRun && removed.length > 0) await opts.confirm(removed);
  if (!opts.dryRun)
    for (const d of removed) {
      // An interrupt stops between copies: each removal is whole (manifest first).
      opts.signal.throwIfAborted();
      const copy = entries
        .find((e) => e.id === d.id)!
        .copies.find((c) => c.destination === d.destination)!;
      await removeCopy(copy);
    }
  // A backup some destination still lists keeps its reports.
  const listed = new Set(
    entries
      .filter((e) =>
        e.copies.some(
          (c) => !removed.some((d) => d.id === e.id && d.destination === c.destination),
        ),
      )
      .map((e) => e.id),
  );
  const reports = planReportPrune(
    await listReports(reportsDir(config)),
    listed,
    config.reportsMaxAgeMs,
    new Date(),
  );
  if (!opts.dryRun)
    for (const r of reports) {
      opts.signal.throwIfAborted();
      await removeReport(r);
    }
  return { dryRun: opts.dryRun, decisions, reports: reports.map((r) => path.basename(r.base)) };
}

/** The target and its unfinished runs: prune never removes a backup one of them depends on. */
async function journalFacts(
  target: Target,
): Promise<{ target: TargetIdentity; unfinishedRuns: UnfinishedRun[] }> {
  try {
    return await withClient(target, async (client) => ({
      target: await readIdentity(client),
      unfinishedRuns: (await readRuns(client))
        .filter((r) => !['succeeded', 'rolled-back', 'baseline'].includes(r.status))
        .map((r) => ({ id: r.id, status: r.status, startedAt: r.startedAt, backupId: r.backupId })),
    }));
  } catch (err) {
    throw new BadInputError(
      `backups prune first reads the run journal of ${describeTarget(target)}, so that it never removes a backup an unfinished run depends on, and it cannot: ${errorMessage(err)}`,
    );
  }
}
