import { takeBackup } from '../backup.js';
import type { Config } from '../config.js';
import { GuardRefusedError } from '../errors.js';
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

export async function guard(opts: {
  mode: BackupMode;
  policy: Policy;
  config: Config;
  target: Target;
  progress: Progress;
}): Promise<{ backupId: string; reused: boolean }> {
  const { mode, policy, target, progress } = opts;
  const config = { ...opts.config, copies: policy.copies };
  if (mode !== 'new') {
    try {
      const verdict = await runGate({ config, target, policy, progress });
      return { backupId: verdict.backup!.id, reused: true };
    } catch (err) {
      if (mode === 'existing' || !(err instanceof GuardRefusedError)) throw err;
    }
  }
  const backup = await takeBackup({ config, target, progress });
  await verifyBackup({ config, target, backupId: backup.id, progress, checksumsJustRead: true });
  return { backupId: backup.id, reused: false };
}
