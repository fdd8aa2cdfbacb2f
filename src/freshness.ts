import type { CatalogEntry } from './repository/catalog.js';
import { sameTarget, type TargetIdentity, type WriteCounters } from './identity.js';
import type { DrillRecord, RehearsalRecord, VerificationRecord } from './repository/manifest.js';
import type { Plan } from './runbook/plan.js';
import { formatDuration } from './units.js';

/**
 * The freshness policy, as pure decisions: a backup guards this target when
 * it is of this target, young enough, verified by its latest verification,
 * and held intact in enough destinations.
 */
export interface Policy {
  maxAgeMs: number;
  copies: number;
  /** At least one intact copy must be in an object store, off this machine. */
  requireOffsite?: boolean;
}

export interface CopyState {
  destination: string;
  intact: boolean;
  /** In an object store (s3://) rather than a local directory. */
  remote?: boolean;
  problems: string[];
}

export interface CandidateFacts {
  id: string;
  createdAt: string;
  copies: CopyState[];
  lastVerification: VerificationRecord | undefined;
}

/** Backups of this target, newest first. */
export function candidatesFor(entries: CatalogEntry[], identity: TargetIdentity): CatalogEntry[] {
  return entries
    .filter((e) => e.manifest && sameTarget(e.manifest.target, identity))
    .sort((a, b) => b.manifest!.createdAt.localeCompare(a.manifest!.createdAt));
}

export function ageMs(createdAt: string, now: Date): number {
  return now.getTime() - new Date(createdAt).getTime();
}

export function isTooOld(createdAt: string, policy: Policy, now: Date): boolean {
  return ageMs(createdAt, now) > policy.maxAgeMs;
}

/** Every reason this backup does not satisfy the policy; none means it does. */
export function assessBackup(facts: CandidateFacts, policy: Policy, now: Date): string[] {
  const reasons: string[] = [];
  const age = ageMs(facts.createdAt, now);
  if (age > policy.maxAgeMs) {
    reasons.push(
      `backup ${facts.id} is ${formatDuration(age)} old; the maximum age is ${formatDuration(policy.maxAgeMs)}`,
    );
  }
  const v = facts.lastVerification;
  if (!v)
    reasons.push(
      `backup ${facts.id} has never been verified (run \`lifeboat verify ${facts.id}\`)`,
    );
  else if (!v.ok)
    reasons.push(
      `backup ${facts.id}: its latest verification (${v.at}) failed: ${v.error ?? `${v.differences.length} difference(s)`}`,
    );
  const intact = facts.copies.filter((c) => c.intact);
  const short = intact.length < policy.copies;
  if (short) {
    reasons.push(
      `backup ${facts.id} is held intact in ${intact.length} destination(s); ${policy.copies} required`,
    );
  }
  const offsiteMissing = policy.requireOffsite === true && !intact.some((c) => c.remote);
  if (offsiteMissing) {
    const remote = facts.copies.filter((c) => c.remote);
    reasons.push(
      remote.length === 0
        ? `backup ${facts.id} has no copy off-site (in an s3:// destination); an off-site copy is required`
        : `backup ${facts.id} has no intact copy off-site; its copies in ${remote.map((c) => c.destination).join(', ')} are damaged`,
    );
  }
  if (short || offsiteMissing) reasons.push(...damagedCopies(facts));
  return reasons;
}

/** What is wrong with each damaged copy: a reason when copies fall short, a warning otherwise. */
export function damagedCopies(facts: CandidateFacts): string[] {
  return facts.copies
    .filter((c) => !c.intact)
    .flatMap((c) => c.problems.map((p) => `backup ${facts.id}, copy in ${c.destination}: ${p}`));
}

export function noBackupReason(entries: CatalogEntry[], identity: TargetIdentity): string[] {
  const others = entries.filter((e) => e.manifest && !sameTarget(e.manifest.target, identity));
  const reasons = [
    `no backup of this target (database ${identity.database} on server ${identity.systemIdentifier}) exists; run \`lifeboat backup\``,
  ];
  if (others.length > 0) {
    reasons.push(`${others.length} backup(s) of other databases or servers were not considered`);
  }
  return [...reasons, ...damagedBackups(entries, identity)];
}

/**
 * Backups whose manifest cannot be trusted (tampered, truncated, unsigned
 * with a key set) that may be of this target: never considered, always said.
 * What a damaged manifest claims is untrusted, so one that names another
 * target is left to that target's gate, and one that names none is said here.
 */
export function damagedBackups(entries: CatalogEntry[], identity: TargetIdentity): string[] {
  return entries
    .filter((e) => !e.manifest && (!e.claimed || sameTarget(e.claimed.target, identity)))
    .map(
      (e) => `backup ${e.id} is damaged and was not considered: ${e.manifestProblems.join('; ')}`,
    );
}

export interface ChangeEstimate {
  known: boolean;
  rowWrites: number | null;
  commits: number | null;
  note: string;
}

/** How much the target changed since the snapshot, from the database's own statistics. */
export function changesSince(at: WriteCounters, now: WriteCounters): ChangeEstimate {
  if (at.scope !== now.scope) {
    return {
      known: false,
      rowWrites: null,
      commits: null,
      note: 'the backup counted writes in every table, catalogs included (an older lifeboat took it)',
    };
  }
  if (at.statsReset !== now.statsReset) {
    return {
      known: false,
      rowWrites: null,
      commits: null,
      note: 'statistics were reset since the backup',
    };
  }
  const rowWrites = Number(BigInt(now.rowWrites) - BigInt(at.rowWrites));
  const commits = Number(BigInt(now.commits) - BigInt(at.commits));
  if (rowWrites < 0 || commits < 0) {
    return {
      known: false,
      rowWrites: null,
      commits: null,
      note: 'statistics went backwards (server restarted, or a table was dropped?)',
    };
  }
  return {
    known: true,
    rowWrites,
    commits,
    note:
      rowWrites === 0
        ? 'no row writes since the backup'
        : `${rowWrites} row write(s) since the backup`,
  };
}

/** A gate with --rehearsed: the backup's latest rehearsal of exactly this runbook passed. */
export function rehearsalReasons(
  rehearsals: readonly RehearsalRecord[],
  checksum: string,
  backupId: string,
  runbookFile: string,
): string[] {
  const latest = rehearsals.filter((r) => r.runbookChecksum === checksum).at(-1);
  if (!latest) {
    return [
      `backup ${backupId} has no rehearsal of this runbook (run \`lifeboat rehearse ${runbookFile}\`)`,
    ];
  }
  if (!latest.passed) {
    return [
      `the latest rehearsal of this runbook on backup ${backupId} (${latest.at}) failed${latest.failedStep ? ` at step ${latest.failedStep}` : ''}: ${latest.error ?? ''}`,
    ];
  }
  return [];
}

/**
 * `gate --drilled`: a passing disaster-recovery drill of this target, from
 * any of its backups, no older than `withinMs`. None means no reason.
 */
export function drillReasons(candidates: CatalogEntry[], withinMs: number, now: Date): string[] {
  const drills = candidates
    .flatMap((e) => e.drills)
    .sort((a: DrillRecord, b: DrillRecord) => a.at.localeCompare(b.at));
  const recent = drills.filter((d) => ageMs(d.at, now) <= withinMs);
  if (recent.some((d) => d.passed)) return [];
  const last = drills.at(-1);
  const within = `in the last ${formatDuration(withinMs)}`;
  if (!last) return [`no disaster-recovery drill has been run ${within} (run \`lifeboat drill\`)`];
  const how = last.passed
    ? `passed, but is ${formatDuration(ageMs(last.at, now))} old`
    : `failed: ${last.error ?? `${last.differences.length} difference(s)`}`;
  return [
    `no passing disaster-recovery drill ${within}; the last, at ${last.at} from ${last.from.destination}, ${how} (run \`lifeboat drill\`)`,
  ];
}

/** A gate with --runbook: every pending step can be undone, and the runbook fits the journal. */
export function undoableReasons(plan: Plan): string[] {
  const reasons = [...plan.refusals];
  for (const step of plan.steps) {
    if ((step.state === 'pending' || step.state === 'in-doubt') && step.undo === 'none') {
      reasons.push(`step ${step.id} of ${plan.runbook} cannot be undone (no down)`);
    }
  }
  return reasons;
}
