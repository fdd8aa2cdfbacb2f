import type pg from 'pg';
import { redact } from '../../secrets.js';
import { stepEnvironment } from '../../step-env.js';
import type { Target } from '../../target.js';
import type { KnexSession } from '../knex-migration.js';
import type { NewEvent } from '../journal.js';
import type { StaleSessionPolicy } from '../stale-sessions.js';

/**
 * Running one step (or one undo) with its checkpoint. Transactional work
 * commits together with its journal row; anything else is journaled
 * `started` before and `done` after, so a crash in between is visible.
 */
export interface StepRunner {
  client: pg.Client;
  target: Target;
  runId: string;
  /** The runbook's directory: shell commands run there. */
  directory: string;
  /** knex, for the run's knex migrations: one session (and pool) for the whole run. */
  knex: KnexSession;
  /** Told which locks a transactional step holds just before it commits (rehearsals report them). */
  observeLocks?: (stepId: string, locks: string[]) => void;
  /** The application name steps' own connections announce (a rehearsal finds them by it). */
  applicationName?: string;
  /** Before a step in doubt is decided: the stopped run's sessions still on the server. */
  stale?: StaleSessionPolicy;
}

/** The journal row of one step or undo, less its status: what every checkpoint of it writes. */
export type Checkpoint = Omit<NewEvent, 'status'>;

export class StepFailure extends Error {
  constructor(
    readonly stepId: string,
    readonly direction: 'up' | 'down',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** What a step's code sees: the database it works on, and none of lifeboat's secrets it did not ask for. */
export function stepEnv(r: StepRunner, secrets: readonly string[] = []): NodeJS.ProcessEnv {
  return stepEnvironment(r.target, {
    runId: r.runId,
    secrets,
    ...(r.applicationName ? { applicationName: r.applicationName } : {}),
  });
}

/** The server's message with its detail ("Key (email)=(a@b) is duplicated."), which says why. */
export function message(err: unknown): string {
  if (!(err instanceof Error)) return redact(String(err));
  const detail = (err as { detail?: unknown }).detail;
  return redact(typeof detail === 'string' && detail ? `${err.message}: ${detail}` : err.message);
}
