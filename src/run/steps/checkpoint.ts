import type pg from 'pg';
import { quoteLiteral, type SqlRunner } from '../../db.js';
import { pausePoint } from '../../faults.js';
import { splitSqlStatements } from '../../runbook/sql-analysis.js';
import type { Timeouts } from '../../runbook/types.js';
import { JOURNAL_SCHEMA, finishEvent, recordEvent } from '../journal.js';
import { KnexMigrationError } from '../knex-migration.js';
import { StepFailure, message, type Checkpoint, type StepRunner } from './runner.js';

/**
 * The ways a step's work and its checkpoint are written together, whatever
 * the kind: in one transaction, or `started` before and `done` after.
 */

/** A transaction rolled back: record that the step failed, outside it. */
export async function failed(r: StepRunner, base: Checkpoint, err: unknown): Promise<never> {
  await recordEvent(r.client, { ...base, status: 'failed', error: message(err) }).catch(
    () => undefined,
  );
  throw new StepFailure(base.stepId, base.direction, message(err), { cause: err });
}

/**
 * Work that is not transactional: journaled `started`, the work, then `done`;
 * a failure is recorded on the same row (a crash in between leaves it in doubt).
 */
export async function outsideTransaction(
  r: StepRunner,
  base: Checkpoint,
  work: () => Promise<void>,
): Promise<void> {
  const seq = await recordEvent(r.client, { ...base, transactional: false, status: 'started' });
  try {
    await work();
  } catch (err) {
    const nothingRan = err instanceof KnexMigrationError && err.ranNothing;
    await finishEvent(r.client, r.runId, seq, 'failed', message(err), nothingRan).catch(
      () => undefined,
    );
    throw new StepFailure(base.stepId, base.direction, message(err), { cause: err });
  }
  const point = base.direction === 'up' ? 'step' : 'undo';
  await pausePoint(`${point}:${base.stepId}:before-checkpoint`);
  await finishEvent(r.client, r.runId, seq, 'done');
}

export async function inTransaction(
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
export async function inOneQuery(
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

export async function withSessionTimeouts(
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
export async function runStatements(client: pg.Client, sql: string): Promise<void> {
  for (const statement of splitSqlStatements(sql)) await client.query(statement);
}
/** The table-level locks this session holds, strongest first, leaving out the catalogs and the journal. */
export async function heldLocks(client: SqlRunner): Promise<string[]> {
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

export async function booleanQuery(client: pg.Client, sql: string): Promise<boolean> {
  const res = await client.query<Record<string, unknown>>(sql);
  const row = res.rows[0];
  const value = row ? Object.values(row)[0] : undefined;
  return value === true;
}
