import type { RehearsalRecord } from '../repository/manifest.js';
import type { RungResult } from './restore-rung.js';
import type { RollbackResult, StepOutcome } from './rollback.js';

/**
 * What a run (or a rollback) did, step by step: what the run, rollback and
 * advice modules build, and what reports and --json are written from.
 */
export interface RunReport {
  runId: string;
  runbook: string;
  target: string;
  backupId: string | null;
  resumed: boolean;
  /** The run held the database frozen (other sessions read-only) from before its backup. */
  frozen: boolean;
  /** Set when the run was rolled back by restoring its backup (the last rung). */
  restoredBy?: RungResult;
  /** The rehearsal on a restored copy, when the run asked for one. */
  rehearsal?: RehearsalRecord;
  status: 'succeeded' | 'rolled-back' | 'needs-operator';
  steps: StepOutcome[];
  /** `interrupted`: Ctrl-C, before the step (`during` unset) or while its command ran. */
  failure?: { stepId: string; error: string; interrupted?: boolean; during?: boolean };
  rollback?: RollbackResult;
  /** What the operator can do, when the run needs one. */
  advice: string[];
}
