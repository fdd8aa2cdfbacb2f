import type pg from 'pg';
import { splitSqlStatements } from '../runbook/sql-analysis.js';
import type { KnexMigrationStep, Step, Timeouts } from '../runbook/types.js';
import { redact } from '../secrets.js';
import { stepEnvironment, umaskPrefix, withProcessEnv } from '../step-env.js';
import type { Target } from '../target.js';
import { pausePoint, pauseWanted } from '../faults.js';
import { quoteLiteral, type SqlRunner } from '../db.js';
import { KnexMigrationError, type KnexMigrationRef, type KnexSession } from './knex-migration.js';
import { knexBatch, knexTableKey, readKnexTables, type KnexTableRef } from './knex-table.js';
import {
  JOURNAL_SCHEMA,
  eventStatement,
  finishEvent,
  recordEvent,
  type NewEvent,
  type Undo,
} from './journal.js';
import { knexRefOf, type StepState } from './state.js';
import type { StaleSessionPolicy } from './stale-sessions.js';

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
      const ref = knexRefOfStep(step);
      return step.hasDown ? { kind: 'knex', ...ref } : { kind: 'none', knex: ref };
    }
  }
}

/** What knex needs to run the migration, as stored with it. */
function knexRefOfStep(step: KnexMigrationStep): KnexMigrationRef {
  return {
    name: step.name,
    directory: step.directory,
    tableName: step.tableName,
    ...(step.schemaName ? { schemaName: step.schemaName } : {}),
    loadExtensions: step.loadExtensions,
    transaction: step.transaction,
  };
}

/** Its effect commits together with its checkpoint, or not at all. */
function isTransactional(step: Step): boolean {
  if (step.kind === 'knex-migration') return step.transaction;
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
    verify: step.kind === 'check' ? null : (step.verify ?? null),
  };
  await pausePoint(`step:${step.id}:before`);
  if (step.kind === 'check') {
    const ok = await booleanQuery(r.client, step.query);
    if (!ok) throw new StepFailure(step.id, 'up', `check failed: ${step.message}`);
    await recordEvent(r.client, { ...base, status: 'done' });
    return;
  }
  if (step.kind === 'sql' && step.up.transaction) {
    if (!step.verify && !r.observeLocks && !pauseWanted(`step:${step.id}:inside`)) {
      await inOneQuery(
        r.client,
        step.timeouts,
        step.up.text,
        eventStatement({ ...base, status: 'done' }),
      ).catch((err: unknown) => failed(r, base, err));
      return;
    }
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
  if (step.kind === 'knex-migration') {
    const ref = knexRefOfStep(step);
    // A file that throws while loading (a missing environment variable) ran nothing.
    // In-process step code reads process.env: it sees the step's environment, as a shell step does.
    await withProcessEnv(stepEnv(r), () => r.knex.load(ref)).catch((err: unknown) =>
      failed(r, { ...base, transactional: true }, err),
    );
    if (step.transaction) {
      await applyInKnexTransaction(r, base, ref, (inside) =>
        withProcessEnv(stepEnv(r), () => r.knex.apply(ref, { timeouts: step.timeouts, inside })),
      );
      return;
    }
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
        r.knex.apply(knexRefOfStep(step), { timeouts: step.timeouts }),
      );
    }
    if (step.verify && !(await booleanQuery(r.client, step.verify))) {
      throw new Error('its verify query returned false after up');
    }
  } catch (err) {
    const nothingRan = err instanceof KnexMigrationError && err.ranNothing;
    await finishEvent(r.client, r.runId, seq, 'failed', message(err), nothingRan).catch(
      () => undefined,
    );
    throw new StepFailure(step.id, 'up', message(err), { cause: err });
  }
  await pausePoint(`step:${step.id}:before-checkpoint`);
  await finishEvent(r.client, r.runId, seq, 'done');
}

/**
 * A knex migration that runs in knex's transaction: the checkpoint is written
 * inside it, after knex's row, so migration, row, batch and checkpoint commit
 * together. A failure anywhere rolls all of it back: recorded as failed, the
 * step is not applied. Once the checkpoint is written, an error means the
 * commit itself failed or was not confirmed: nothing more is recorded, the
 * journal and knex's table (committed together, or not) say which.
 */
async function applyInKnexTransaction(
  r: StepRunner,
  base: Omit<NewEvent, 'status'>,
  ref: KnexMigrationRef,
  run: (inside: (sql: SqlRunner) => Promise<void>) => Promise<void>,
): Promise<void> {
  // knex's own tables are its bookkeeping, not what the migration locks.
  const own = new Set([ref.tableName, `${ref.tableName}_lock`]);
  const point =
    base.direction === 'up' ? `step:${base.stepId}:inside` : `undo:${base.stepId}:inside`;
  let checkpointed = false;
  try {
    await run(async (sql) => {
      await pausePoint(point);
      if (r.observeLocks && base.direction === 'up') {
        const locks = await heldLocks(sql);
        r.observeLocks(
          base.stepId,
          locks.filter((l) => !own.has(l.slice(l.lastIndexOf('.') + 1))),
        );
      }
      await recordEvent(sql, { ...base, status: 'done' });
      checkpointed = true;
    });
  } catch (err) {
    if (checkpointed)
      throw new StepFailure(base.stepId, base.direction, message(err), { cause: err });
    return failed(r, base, err);
  }
  // knex ran it without a transaction after all (its config says so at run time): checkpoint now.
  if (!checkpointed) await recordEvent(r.client, { ...base, transactional: false, status: 'done' });
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
    transactional: (undo?.kind === 'sql' || undo?.kind === 'knex') && undo.transaction === true,
    undo: null,
    verify: state.verify,
  };
  if (!undo || undo.kind === 'none') throw new StepFailure(state.stepId, 'down', 'it has no down');
  // knex's migrate.down undoes what knex lists; a migration it does not list stopped part-way outside a transaction.
  const knexListed =
    undo.kind === 'knex' && knexBatch(await readKnexTables(r.client, [undo]), undo) !== undefined;
  if (undo.kind === 'nothing-to-undo') {
    await recordEvent(r.client, { ...base, transactional: true, status: 'done' });
    return;
  }
  await pausePoint(`undo:${state.stepId}:before`);
  if (undo.kind === 'knex' && knexListed && undo.transaction === true) {
    await applyInKnexTransaction(r, base, undo, (inside) =>
      withProcessEnv(stepEnv(r), () => r.knex.undo(undo, { timeouts, inside })),
    );
    return;
  }
  if (undo.kind === 'sql' && undo.transaction) {
    await inTransaction(r.client, timeouts, async () => {
      await r.client.query(undo.text);
      await recordEvent(r.client, { ...base, status: 'done' });
    }).catch((err: unknown) => failed(r, base, err));
    return;
  }
  const seq = await recordEvent(r.client, { ...base, transactional: false, status: 'started' });
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
    else if (knexListed) await withProcessEnv(stepEnv(r), () => r.knex.undo(undo, { timeouts }));
    else await withProcessEnv(stepEnv(r), () => r.knex.undoHalfDone(undo, { timeouts }));
  } catch (err) {
    const nothingRan = err instanceof KnexMigrationError && err.ranNothing;
    await finishEvent(r.client, r.runId, seq, 'failed', message(err), nothingRan).catch(
      () => undefined,
    );
    throw new StepFailure(state.stepId, 'down', message(err), { cause: err });
  }
  await pausePoint(`undo:${state.stepId}:before-checkpoint`);
  await finishEvent(r.client, r.runId, seq, 'done');
}

/**
 * Decide a step left in doubt by a crash: by knex's own table for a knex
 * migration it lists (knex writes its row only once the migration ended),
 * else by the step's verify query. A knex migration run in a transaction
 * commits with its row, so knex's table alone decides it. Undefined when
 * nothing can tell.
 */
export async function probeInDoubt(
  r: StepRunner,
  state: StepState,
): Promise<{ applied: boolean; how: string } | undefined> {
  const knex = knexRefOf(state);
  if (knex) {
    const listed = knexBatch(await readKnexTables(r.client, [knex]), knex) !== undefined;
    if (listed || knex.transaction !== false)
      return { applied: listed, how: "by knex's migrations table" };
  }
  if (state.verify) {
    const applied = await booleanQuery(r.client, state.verify);
    // Its up ended but knex had not written its row yet: write it, as knex would have.
    if (knex && applied && state.last.direction === 'up') await r.knex.markApplied(knex);
    return { applied, how: 'by its verify query' };
  }
  return undefined;
}

/**
 * A run stopped by a crash inside knex (between knex taking its own lock and
 * releasing it) leaves knex's lock taken. The run is being continued under
 * lifeboat's run lock, so that lock was the stopped run's: free it, as
 * `knex migrate:unlock` would.
 */
export async function releaseStaleKnexLocks(
  r: StepRunner,
  refs: Iterable<KnexTableRef>,
): Promise<void> {
  const seen = new Set<string>();
  for (const ref of refs) {
    if (seen.has(knexTableKey(ref))) continue;
    seen.add(knexTableKey(ref));
    await r.knex.releaseLock(ref);
  }
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

/**
 * A transactional script and its checkpoint in one round trip: begin, the
 * timeouts, the script, the checkpoint row and commit as one simple query, so
 * they commit together or not at all. The runbook's checks refused a script
 * with transaction control or an unterminated string, quoted name or comment,
 * so the script ends where its text ends.
 */
async function inOneQuery(
  client: pg.Client,
  timeouts: Timeouts,
  script: string,
  checkpoint: string,
): Promise<void> {
  const settings = timeoutSettings(timeouts).map(
    ([name, value]) => `select set_config(${quoteLiteral(name)}, ${quoteLiteral(value)}, true);\n`,
  );
  try {
    await client.query(`begin;\n${settings.join('')}${script}\n;\n${checkpoint};\ncommit`);
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  }
}

/** Only the timeouts the runbook sets; the others keep the server's setting. */
async function applyTimeouts(client: pg.Client, t: Timeouts, local: boolean): Promise<void> {
  for (const [name, value] of timeoutSettings(t))
    await client.query(`select set_config($1, $2, $3)`, [name, value, local]);
}

function timeoutSettings(t: Timeouts): [string, string][] {
  const settings: [string, number | undefined][] = [
    ['lock_timeout', t.lockTimeoutMs],
    ['statement_timeout', t.statementTimeoutMs],
  ];
  return settings.flatMap(([name, ms]) => (ms === undefined ? [] : [[name, `${ms}ms`]]));
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
async function heldLocks(client: SqlRunner): Promise<string[]> {
  const res = await client.query(
    `select l.mode || ' on ' || n.nspname || '.' || c.relname as lock
       from pg_locks l join pg_class c on c.oid = l.relation join pg_namespace n on n.oid = c.relnamespace
      where l.pid = pg_backend_pid() and l.locktype = 'relation' and l.granted
        and n.nspname not in ('pg_catalog', 'information_schema', $1)
        and c.relkind in ('r', 'p', 'm')
      order by case l.mode when 'AccessExclusiveLock' then 0 when 'ExclusiveLock' then 1
                 when 'ShareRowExclusiveLock' then 2 when 'ShareLock' then 3
                 when 'ShareUpdateExclusiveLock' then 4 when 'RowExclusiveLock' then 5 else 6 end, 1`,
    [JOURNAL_SCHEMA],
  );
  return [...new Set((res.rows as { lock: string }[]).map((r) => r.lock))];
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
    const why =
      out.signal === 'SIGINT'
        ? 'was interrupted (Ctrl-C)'
        : out.signal
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
