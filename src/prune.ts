import type { CatalogEntry } from './catalog.js';

/**
 * Which backups `backups prune` removes, as a pure decision. Per target
 * (server + database): keep the newest `keep` verified backups; keep every
 * backup newer than the newest verified one (it may be awaiting
 * verification); remove older unverified or failed ones. The newest verified
 * backup is never removed, and a backup whose manifest cannot be read is
 * never touched (a person should look at it).
 */
export interface PruneDecision {
  id: string;
  action: 'keep' | 'remove';
  reason: string;
}

export function planPrune(entries: CatalogEntry[], keep: number): PruneDecision[] {
  const decisions: PruneDecision[] = [];
  const groups = new Map<string, CatalogEntry[]>();
  for (const e of entries) {
    if (!e.manifest) {
      decisions.push({ id: e.id, action: 'keep', reason: 'manifest unreadable; inspect by hand' });
      continue;
    }
    const key = `${e.manifest.target.systemIdentifier}/${e.manifest.target.database}`;
    groups.set(key, [...(groups.get(key) ?? []), e]);
  }
  for (const group of groups.values()) {
    const newestFirst = [...group].sort((a, b) =>
      b.manifest!.createdAt.localeCompare(a.manifest!.createdAt),
    );
    const verified = newestFirst.filter((e) => e.verifications.at(-1)?.ok === true);
    const newestVerifiedAt = verified[0]?.manifest!.createdAt;
    const kept = new Set(verified.slice(0, Math.max(1, keep)).map((e) => e.id));
    for (const e of newestFirst) {
      if (kept.has(e.id)) {
        decisions.push({
          id: e.id,
          action: 'keep',
          reason:
            e.id === verified[0]?.id ? 'newest verified' : `among the newest ${keep} verified`,
        });
      } else if (!newestVerifiedAt || e.manifest!.createdAt > newestVerifiedAt) {
        decisions.push({
          id: e.id,
          action: 'keep',
          reason: 'newer than the newest verified backup',
        });
      } else {
        const last = e.verifications.at(-1);
        const why = last?.ok
          ? `older than the newest ${keep} verified`
          : last
            ? 'verification failed'
            : 'never verified';
        decisions.push({ id: e.id, action: 'remove', reason: why });
      }
    }
  }
  return decisions.sort((a, b) => a.id.localeCompare(b.id));
}
