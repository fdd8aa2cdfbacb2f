import type pg from 'pg';
import { readCatalog, type CatalogEntry } from './repository/catalog.js';
import type { Config } from './config.js';
import { withClient } from './db.js';
import { GuardRefusedError } from './errors.js';
import {
  assessBackup,
  damagedBackups,
  damagedCopies,
  candidatesFor,
  changesSince,
  drillReasons,
  isTooOld,
  noBackupReason,
  rehearsalReasons,
  undoableReasons,
  type ChangeEstimate,
  type CopyState,
  type Policy,
} from './freshness.js';
import { readIdentity, readWriteCounters, type TargetIdentity } from './identity.js';
import type { Progress } from './progress.js';
import { describeTarget, type Target } from './target.js';
import { appliedStepsIn } from './run/journal-view.js';
import { runbookChecksum } from './runbook/checksum.js';
import { planRunbook } from './runbook/plan.js';
import type { Runbook } from './runbook/types.js';
import { checkCopies } from './restore/copies.js';

export interface GateVerdict {
  ok: boolean;
  target: string;
  identity: TargetIdentity;
  policy: Policy;
  backup?: {
    id: string;
    createdAt: string;
    intactCopies: string[];
    verifiedAt: string;
  };
  changesSinceBackup?: ChangeEstimate;
  reasons: string[];
  /** Damaged copies beyond those the policy needs: worth repairing, not a refusal. */
  warnings: string[];
}

/**
 * The CI gate: passes only when a backup of this target satisfies the policy.
 * Every copy considered is read back against its checksums, so a damaged copy
 * is never counted. Throws GuardRefusedError (exit 3) with every reason.
 */
export async function runGate(opts: {
  config: Config;
  target: Target;
  policy: Policy;
  progress: Progress;
  now?: Date;
  /** With a runbook: every pending step must be undoable, and (with requireRehearsal) rehearsed on the backup. */
  runbook?: Runbook;
  requireRehearsal?: boolean;
  /** A passing drill of this target must be at most this old. */
  drilledWithinMs?: number;
  /** A session already open on the target, for the reads; else one of its own. */
  client?: pg.ClientBase;
  /** The catalog of config.destinations, when the caller has just read it. */
  catalog?: CatalogEntry[];
}): Promise<GateVerdict> {
  const { config, target, policy, progress, runbook } = opts;
  const now = opts.now ?? new Date();
  const read = async (client: pg.ClientBase) => ({
    identity: await readIdentity(client),
    counters: await readWriteCounters(client),
    applied: runbook ? await appliedStepsIn(client, runbook) : [],
  });
  const { identity, counters, applied } = opts.client
    ? await read(opts.client)
    : await withClient(target, read);
  const runbookReasons = runbook ? undoableReasons(planRunbook(runbook, applied)) : [];
  const checksum = runbook
    ? runbookChecksum(
        runbook.name,
        runbook.steps.map((s) => s.checksum),
      )
    : undefined;
  const entries = opts.catalog ?? (await readCatalog(config.destinations, config.signingKey));
  const candidates = candidatesFor(entries, identity);
  const drilled =
    opts.drilledWithinMs === undefined ? [] : drillReasons(candidates, opts.drilledWithinMs, now);
  const verdict: GateVerdict = {
    ok: false,
    target: describeTarget(target),
    identity,
    policy,
    reasons: [],
    warnings: [],
  };

  if (candidates.length === 0) verdict.reasons.push(...noBackupReason(entries, identity));
  for (const entry of candidates) {
    const manifest = entry.manifest!;
    const facts = {
      id: entry.id,
      createdAt: manifest.createdAt,
      copies: [] as CopyState[],
      lastVerification: entry.verifications.at(-1),
    };
    // Older backups are older still: once one is too old, none after it can pass.
    if (!isTooOld(manifest.createdAt, policy, now)) {
      // Remote copies are checked against the store's checksums; verify reads every byte.
      facts.copies = (await checkCopies(entry.copies, config.signingKey, progress, 'quick')).checks;
    } else {
      facts.copies = entry.copies.map((c) => ({
        destination: c.destination,
        intact: true,
        remote: c.remote,
        problems: [],
      }));
    }
    const reasons = [
      ...assessBackup(facts, policy, now),
      ...(opts.requireRehearsal && runbook && checksum
        ? rehearsalReasons(entry.rehearsals, checksum, entry.id, runbook.file)
        : []),
    ];
    if (reasons.length === 0 && runbookReasons.length === 0) {
      // The backup would do; what is missing is the drill, whichever backup it was of.
      if (drilled.length > 0) break;
      verdict.ok = true;
      verdict.reasons = [];
      verdict.backup = {
        id: entry.id,
        createdAt: manifest.createdAt,
        intactCopies: facts.copies.filter((c) => c.intact).map((c) => c.destination),
        verifiedAt: facts.lastVerification!.at,
      };
      verdict.changesSinceBackup = changesSince(manifest.snapshot.counters, counters);
      // A damaged backup is never counted, and never passed over in silence either.
      verdict.warnings = [...damagedBackups(entries, identity), ...damagedCopies(facts)];
      for (const w of verdict.warnings) progress.warn(w);
      return verdict;
    }
    // The newest backup's reasons are the ones worth reading; older ones add noise.
    if (verdict.reasons.length === 0) verdict.reasons.push(...reasons);
    if (isTooOld(manifest.createdAt, policy, now)) break;
  }
  if (candidates.length > 0) verdict.reasons.push(...damagedBackups(entries, identity));
  verdict.reasons.push(...runbookReasons, ...drilled);
  throw new GuardRefusedError(
    runbookReasons.length > 0 || opts.requireRehearsal || drilled.length > 0
      ? `The gate refused ${describeTarget(target)}${runbook ? ` for runbook ${runbook.name}` : ''}.`
      : `No fresh, verified backup of ${describeTarget(target)} with ${policy.copies} intact cop${policy.copies === 1 ? 'y' : 'ies'}.`,
    { details: verdict.reasons, data: verdict },
  );
}
