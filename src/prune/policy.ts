import type { CatalogEntry } from '../repository/catalog.js';
import { sameTarget, type TargetIdentity } from '../identity.js';

/**
 * Which copies `backups prune` removes, as a pure decision, destination by
 * destination (each keeps its own number of verified backups). For the
 * target whose run journal was read:
 *
 * - the newest `keep` verified backups stay (at least one: the newest
 *   verified backup is never removed);
 * - every backup newer than the newest verified one stays (it may be
 *   awaiting verification);
 * - the backup a run that has not completed took or chose stays, and so does
 *   the last verified backup taken before that run started: it is the state
 *   a restore would go back to;
 * - older unverified, failed or surplus verified backups go.
 *
 * Backups of other databases are never touched (their journals were not
 * read), nor is a backup whose manifest cannot be read (a person should look).
 */
export interface PruneDecision {
  id: string;
  destination: string;
  action: 'keep' | 'remove';
  reason: string;
}

export interface UnfinishedRun {
  id: string;
  status: string;
  startedAt: string;
  backupId: string | null;
}

export interface PrunePolicy {
  target: TargetIdentity;
  destinations: { name: string; keep: number }[];
  unfinishedRuns: UnfinishedRun[];
}

export function planPrune(entries: CatalogEntry[], policy: PrunePolicy): PruneDecision[] {
  const decisions: PruneDecision[] = [];
  const guarded = guardedByRuns(entries, policy);
  for (const dest of policy.destinations) {
    const here = entries.filter((e) => e.copies.some((c) => c.destination === dest.name));
    const ours: CatalogEntry[] = [];
    for (const e of here) {
      const keep = (reason: string): void => {
        decisions.push({ id: e.id, destination: dest.name, action: 'keep', reason });
      };
      if (!e.manifest) keep('manifest unreadable; inspect by hand');
      else if (!sameTarget(e.manifest.target, policy.target))
        keep(`a backup of ${e.manifest.target.described}; prune with --database-url naming it`);
      else ours.push(e);
    }
    decisions.push(...planDestination(ours, dest, guarded));
  }
  return decisions.sort(
    (a, b) => a.id.localeCompare(b.id) || a.destination.localeCompare(b.destination),
  );
}

function planDestination(
  entries: CatalogEntry[],
  dest: { name: string; keep: number },
  guarded: Map<string, string>,
): PruneDecision[] {
  const newestFirst = [...entries].sort((a, b) =>
    b.manifest!.createdAt.localeCompare(a.manifest!.createdAt),
  );
  const verified = newestFirst.filter(isVerified);
  const newestVerifiedAt = verified[0]?.manifest!.createdAt;
  // Whatever keep says (NaN, 0, a fraction), the newest verified backup is among those kept.
  const keep = Number.isInteger(dest.keep) && dest.keep >= 1 ? dest.keep : 1;
  const kept = new Set(verified.slice(0, keep).map((e) => e.id));
  return newestFirst.map((e) => {
    const decide = (action: 'keep' | 'remove', reason: string): PruneDecision => ({
      id: e.id,
      destination: dest.name,
      action,
      reason,
    });
    if (kept.has(e.id))
      return decide(
        'keep',
        e.id === verified[0]?.id ? 'newest verified' : `among the newest ${dest.keep} verified`,
      );
    if (!newestVerifiedAt || e.manifest!.createdAt > newestVerifiedAt)
      return decide('keep', 'newer than the newest verified backup');
    const guard = guarded.get(e.id);
    if (guard) return decide('keep', guard);
    const last = e.verifications.at(-1);
    return decide(
      'remove',
      last?.ok
        ? `older than the newest ${dest.keep} verified`
        : last
          ? 'verification failed'
          : 'never verified',
    );
  });
}

function isVerified(e: CatalogEntry): boolean {
  return e.verifications.at(-1)?.ok === true;
}

/** Backups an unfinished run depends on, with the reason, by id. */
function guardedByRuns(entries: CatalogEntry[], policy: PrunePolicy): Map<string, string> {
  const guarded = new Map<string, string>();
  const ours = entries.filter((e) => e.manifest && sameTarget(e.manifest.target, policy.target));
  for (const run of policy.unfinishedRuns) {
    const what = `run ${run.id} (${run.status})`;
    if (run.backupId) guarded.set(run.backupId, `the backup of unfinished ${what}`);
    const before = ours
      .filter((e) => isVerified(e) && e.manifest!.createdAt < run.startedAt)
      .sort((a, b) => b.manifest!.createdAt.localeCompare(a.manifest!.createdAt))[0];
    if (before && !guarded.has(before.id))
      guarded.set(before.id, `the last verified backup before unfinished ${what}`);
  }
  return guarded;
}
