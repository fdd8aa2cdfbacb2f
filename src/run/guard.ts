import { takeBackup } from '../backup.js';
import type pg from 'pg';
import type { Config } from '../config.js';
import type { Fingerprints } from '../fingerprint.js';
import { readCatalog } from '../repository/catalog.js';
import { GuardRefusedError, SchemaChangedError } from '../errors.js';
import { readSchemaDrift } from '../schema-drift.js';
import type { Policy } from '../freshness.js';
import { runGate } from '../gate.js';
import type { Progress } from '../progress.js';
import type { Runbook } from '../runbook/types.js';
import type { Target } from '../target.js';
import { verifyBackup } from '../verify.js';

/**
 * The guard before any step: a fresh, verified backup with enough copies.
 * `existing` only accepts one already there; `new` always takes and verifies
 * one; `auto` reuses a fresh one or takes one. There is no mode without one.
 */
export type BackupMode = 'auto' | 'new' | 'existing';

export function policyFor(runbook: Runbook, config: Config): Policy {
  return {
    maxAgeMs: runbook.policy?.maxAgeMs ?? config.maxAgeMs,
    copies: runbook.policy?.copies ?? config.copies,
    requireOffsite: runbook.policy?.requireOffsite ?? config.requireOffsite,
  };
}

export interface GuardOptions {
  mode: BackupMode;
  policy: Policy;
  config: Config;
  target: Target;
  progress: Progress;
  /** An interrupt stops the guard's own backup and removes what it half did (exit 130). */
  signal?: AbortSignal;
  /** A session already open on the target (the run's), for the guard's reads. */
  client?: pg.ClientBase;
}

/** What the guard will do, decided by reading only (what `run --dry-run` shows). */
export type GuardDecision =
  | { reuse: string }
  /** Take and verify a new backup; `because` says why the existing ones do not do. */
  | { take: true; because?: GuardRefusedError };

/** Reads only; with `existing`, a refusal is thrown (exit 3). */
export async function decideGuard(opts: GuardOptions): Promise<GuardDecision> {
  const { mode, policy, target, progress } = opts;
  if (mode === 'new') return { take: true };
  const config = { ...opts.config, copies: policy.copies };
  try {
    const catalog = await readCatalog(config.destinations, config.signingKey);
    const verdict = await runGate({
      config,
      target,
      policy,
      progress,
      catalog,
      client: opts.client,
    });
    const manifest = catalog.find((e) => e.id === verdict.backup!.id)?.manifest;
    if (manifest)
      await refuseSchemaDrift(target, verdict.backup!.id, manifest.fingerprints, opts.client);
    return { reuse: verdict.backup!.id };
  } catch (err) {
    if (mode === 'existing' || !(err instanceof GuardRefusedError)) throw err;
    return { take: true, because: err };
  }
}

export async function guard(opts: GuardOptions): Promise<{ backupId: string; reused: boolean }> {
  const { target, progress } = opts;
  const decision = await decideGuard(opts);
  if ('reuse' in decision) return { backupId: decision.reuse, reused: true };
  if (decision.because?.kind === 'schema-changed') {
    progress.warn(`${decision.because.message} Taking a new backup.`);
  }
  const config = { ...opts.config, copies: opts.policy.copies };
  const { signal } = opts;
  const backup = await takeBackup({ config, target, progress, signal });
  await verifyBackup({
    config,
    target,
    backupId: backup.id,
    progress,
    checksumsJustRead: true,
    signal,
  });
  return { backupId: backup.id, reused: false };
}

/** A backup of an older schema guards nothing: refused (exit 3) with what changed since. */
async function refuseSchemaDrift(
  target: Target,
  backupId: string,
  expected: Fingerprints,
  session?: pg.ClientBase,
): Promise<void> {
  const drift = await readSchemaDrift(target, expected, session);
  if (!drift.changed) return;
  throw new SchemaChangedError(
    `The schema of ${target.database} changed since backup ${backupId} was taken, so that backup no longer guards it.`,
    {
      details: [
        ...drift.changes.slice(0, 20),
        ...(drift.changes.length > 20 ? [`and ${drift.changes.length - 20} more`] : []),
        'take a new backup: run with --backup auto or new, or `lifeboat backup` first',
      ],
    },
  );
}
