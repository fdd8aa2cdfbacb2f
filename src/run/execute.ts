import type pg from 'pg';
import { splitSqlStatements } from '../runbook/sql-analysis.js';
import type { Step, Timeouts } from '../runbook/types.js';
import { redact } from '../secrets.js';
import { stepEnvironment, umaskPrefix, withProcessEnv } from '../step-env.js';
import type { Target } from '../target.js';
import { pausePoint } from '../faults.js';
import {
  applyKnexMigration,
  isKnexMigrationApplied,
  releaseKnexLock,
  undoKnexMigration,
  type KnexMigrationRef,
} from './knex-migration.js';
import { finishEvent, recordEvent, type NewEvent, type Undo } from './journal.js';
import type { StepState } from './state.js';

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
  /** Told which locks a transactional step holds just before it commits (rehearsals report them). */
  observeLocks?: (stepId: string, locks: string[]) => void;
  /** The application name steps' own connections announce (a rehearsal finds them by it). */
  applicationName?: string;
}

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

/** How a step is undone, stored with it when it is applied. */
export function undoFor(step: Step, directory: string): Undo {
  switch (step.kind) {
    case 'check':
      return { kind: 'nothing-to-undo' };
    case 'sql':
      return step.down
        ? { kind: 'sql', text: step.down.text, transaction: step.down.transaction }
        : { kind: 'none' };
    case 'shell':
      return step.down
        ? {
            kind: 'shell',
            command: step.down,
            timeoutMs: step.timeoutMs,
            directory,
            ...(step.secrets.length > 0 ? { secrets: step.secrets } : {}),
          }
        : { kind: 'none' };
    case 'knex-migration': {
      const ref = {
        name: step.name,
        directory: step.directory,
        tableName: step.tableName,
        ...(step.schemaName ? { schemaName: step.schemaName } : {}),
        loadExtensions: step.loadExtensions,
      };
      return step.hasDown ? { kind: 'knex', ...ref } : { kind: 'none', knex: ref };
    }
  }
}

function isTransactional(step: Step): boolean {
  return step.kind === 'check' || (step.kind === 'sql' && step.up.transaction);
}

export async function applyStep(r: StepRunner, step: Step): Promise<void> {
  const base = {
    runId: r.runId,
    stepId: step.id,
    kind: step.kind,
    checksum: step.checksum,
    direction: 'up' as const,
    transactional: isTransactional(step),
    undo: undoFor(step, r.directory),
    verify: step.kind === 'sql' || step.kind === 'shell' ? (step.verify ?? null) : null,
  };
  await pausePoint(`step:${step.id}:before`);
  if (step.kind === 'check') {
    const ok = await booleanQuery(r.client, step.query);
    if (!ok) throw new StepFailure(step.id, 'up', `check failed: ${step.message}`);
    await recordEvent(r.client, { ...base, status: 'done' });
    return;
  }
  if (step.kind === 'sql' && step.up.transaction) {
    await inTransaction(r.client, step.timeouts, async () => {
      await r.client.query(step.up.text);
      if (step.verify && !(await booleanQuery(r.client, step.verify))) {
        throw new Error(`its verify query returned false after up`);
      }
      await pausePoint(`step:${step.id}:inside`);
      if (r.observeLocks) r.observeLocks(step.id, await heldLocks(r.client));
      await recordEvent(r.client, { ...base, status: 'done' });
    }).catch((err: unknown) => failed(r, base, err));
    return;
  }
  // Not transactional: started, the work, then done.
  const seq = await recordEvent(r.client, { ...base, status: 'started' });
  try {
    if (step.kind === 'sql') {
      await withSessionTimeouts(r.client, step.timeouts, () =>
        runStatements(r.client, step.up.text),
      );
    } else if (step.kind === 'shell') {
      await runShell(r, step.up, step.timeoutMs, step.secrets);
    } else {
      await withProcessEnv(stepEnv(r), () =>
        applyKnexMigration(r.target, step, { timeouts: step.timeouts }),
      );
    }
    if (
      (step.kind === 'sql' || step.kind === 'shell') &&
      step.verify &&
      !(await booleanQuery(r.client, step.verify))
    ) {
      throw new Error('its verify query returned false after up');
    }
  } catch (err) {
    await finishEvent(r.client, r.runId, seq, 'failed', message(err)).catch(() => undefined);
    throw new StepFailure(step.id, 'up', message(err), { cause: err });
  }
  await pausePoint(`step:${step.id}:before-checkpoint`);
  await finishEvent(r.client, r.runId, seq, 'done');
}

async function failed(r: StepRunner, base: Omit<NewEvent, 'status'>, err: unknown): Promise<never> {
  // The transaction rolled back; record that it failed, outside it.
  await recordEvent(r.client, { ...base, status: 'failed', error: message(err) }).catch(
    () => undefined,
  );
  throw new StepFailure(base.stepId, base.direction, message(err), { cause: err });
}

/** Undo an applied step with its stored undo, checkpointed like an up. */
export async function undoStep(r: StepRunner, state: StepState, timeouts: Timeouts): Promise<void> {
  const undo = state.undo;
  const base = {
    runId: r.runId,
    stepId: state.stepId,
    kind: state.last.kind,
    checksum: state.checksum,
    direction: 'down' as const,
    transactional: undo?.kind === 'sql' && undo.transaction,
    undo: null,
    verify: state.verify,
  };
  if (!undo || undo.kind === 'none') throw new StepFailure(state.stepId, 'down', 'it has no down');
  if (undo.kind === 'nothing-to-undo') {
    await recordEvent(r.client, { ...base, transactional: true, status: 'done' });
    return;
  }
  await pausePoint(`undo:${state.stepId}:before`);
  if (undo.kind === 'sql' && undo.transaction) {
    await inTransaction(r.client, timeouts, async () => {
      await r.client.query(undo.text);
      await recordEvent(r.client, { ...base, status: 'done' });
    }).catch((err: unknown) => failed(r, base, err));
    return;
  }
  const seq = await recordEvent(r.client, { ...base, status: 'started' });
  try {
    if (undo.kind === 'sql')
      await withSessionTimeouts(r.client, timeouts, () => runStatements(r.client, undo.text));
    else if (undo.kind === 'shell')
      await runShell(
        { ...r, directory: undo.directory },
        undo.command,
        undo.timeoutMs,
        undo.secrets ?? [],
      );
    else await withProcessEnv(stepEnv(r), () => undoKnexMigration(r.target, undo, { timeouts }));
  } catch (err) {
    await finishEvent(r.client, r.runId, seq, 'failed', message(err)).catch(() => undefined);
    throw new StepFailure(state.stepId, 'down', message(err), { cause: err });
  }
  await pausePoint(`undo:${state.stepId}:before-checkpoint`);
  await finishEvent(r.client, r.runId, seq, 'done');
}

/**
 * Decide a step left in doubt: by knex's own table for a knex migration, by
 * the step's verify query otherwise. Undefined when nothing can tell.
 */
export async function probeInDoubt(r: StepRunner, state: StepState): Promise<boolean | undefined> {
  const knex = knexRefOf(state);
  if (knex) {
    // A crash in a migration knex ran outside a transaction leaves knex's own lock taken.
    await releaseKnexLock(r.target, knex);
    return isKnexMigrationApplied(r.target, knex);
  }
  if (state.verify) return booleanQuery(r.client, state.verify);
  return undefined;
}

export function knexRefOf(state: StepState): KnexMigrationRef | undefined {
  if (state.undo?.kind === 'knex') return state.undo;
  if (state.undo?.kind === 'none') return state.undo.knex;
  return undefined;
}

/** Record how a step in doubt was decided, as an event whose effect is that decision. */
export async function recordResolution(
  r: StepRunner,
  state: StepState,
  applied: boolean,
  how: string,
): Promise<void> {
  await recordEvent(r.client, {
    runId: r.runId,
    stepId: state.stepId,
    kind: state.last.kind,
    checksum: state.checksum,
    direction: applied ? 'up' : 'down',
    status: 'done',
    transactional: true,
    undo: applied ? state.undo : null,
    verify: state.verify,
    error: `resolved ${applied ? 'applied' : 'not applied'}: ${how}`,
  });
}

async function inTransaction(
  client: pg.Client,
  timeouts: Timeouts,
  fn: () => Promise<void>,
): Promise<void> {
  await client.query('begin');
  try {
    await applyTimeouts(client, timeouts, true);
    await fn();
    await client.query('commit');
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  }
}

/** Only the timeouts the runbook sets; the others keep the server's setting. */
async function applyTimeouts(client: pg.Client, t: Timeouts, local: boolean): Promise<void> {
  const settings: [string, number | undefined][] = [
    ['lock_timeout', t.lockTimeoutMs],
    ['statement_timeout', t.statementTimeoutMs],
  ];
  for (const [name, ms] of settings) {
    if (ms !== undefined)
      await client.query(`select set_config($1, $2, $3)`, [name, `${ms}ms`, local]);
  }
}

async function withSessionTimeouts(
  client: pg.Client,
  t: Timeouts,
  fn: () => Promise<void>,
): Promise<void> {
  await applyTimeouts(client, t, false);
  try {
    await fn();
  } finally {
    await client.query('reset lock_timeout; reset statement_timeout').catch(() => undefined);
  }
}

/** One statement per query: a multi-statement query is one implicit transaction, which CONCURRENTLY refuses. */
async function runStatements(client: pg.Client, sql: string): Promise<void> {
  for (const statement of splitSqlStatements(sql)) await client.query(statement);
}

/** The table-level locks this session holds, strongest first, leaving out the catalogs and the journal. */
async function heldLocks(client: pg.Client): Promise<string[]> {
  const res = await client.query<{ lock: string }>(
    `select l.mode || ' on ' || n.nspname || '.' || c.relname as lock
       from pg_locks l join pg_class c on c.oid = l.relation join pg_namespace n on n.oid = c.relnamespace
      where l.pid = pg_backend_pid() and l.locktype = 'relation' and l.granted
        and n.nspname not in ('pg_catalog', 'information_schema', 'lifeboat_journal')
        and c.relkind in ('r', 'p', 'm')
      order by case l.mode when 'AccessExclusiveLock' then 0 when 'ExclusiveLock' then 1
                 when 'ShareRowExclusiveLock' then 2 when 'ShareLock' then 3
                 when 'ShareUpdateExclusiveLock' then 4 when 'RowExclusiveLock' then 5 else 6 end, 1`,
  );
  return [...new Set(res.rows.map((r) => r.lock))];
}

async function booleanQuery(client: pg.Client, sql: string): Promise<boolean> {
  const res = await client.query<Record<string, unknown>>(sql);
  const row = res.rows[0];
  const value = row ? Object.values(row)[0] : undefined;
  return value === true;
}

/** What a step's code sees: the database it works on, and none of lifeboat's secrets it did not ask for. */
function stepEnv(r: StepRunner, secrets: readonly string[] = []): NodeJS.ProcessEnv {
  return stepEnvironment(r.target, {
    runId: r.runId,
    secrets,
    ...(r.applicationName ? { applicationName: r.applicationName } : {}),
  });
}

async function runShell(
  r: StepRunner,
  command: string,
  timeoutMs: number,
  secrets: readonly string[],
): Promise<void> {
  const { $ } = await import('zx');
  const out = await $({
    cwd: r.directory,
    env: stepEnv(r, secrets),
    prefix: `${$.prefix}${umaskPrefix()}`,
    quiet: true,
    nothrow: true,
    timeout: timeoutMs,
  })`bash -c ${command}`;
  if (out.exitCode !== 0) {
    const tail = `${out.stderr}\n${out.stdout}`.trim().split('\n').slice(-3).join(' | ');
    const why = out.signal
      ? `was stopped by ${out.signal}${out.signal === 'SIGTERM' ? ' (timeout?)' : ''}`
      : `exited with ${out.exitCode}`;
    throw new Error(redact(`the command ${why}${tail ? `: ${tail}` : ''}`));
  }
}

/** The server's message with its detail ("Key (email)=(a@b) is duplicated."), which says why. */
function message(err: unknown): string {
  if (!(err instanceof Error)) return redact(String(err));
  const detail = (err as { detail?: unknown }).detail;
  return redact(typeof detail === 'string' && detail ? `${err.message}: ${detail}` : err.message);
}
