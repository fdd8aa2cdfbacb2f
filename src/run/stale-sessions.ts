import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { InterruptedError } from '../errors.js';
import type { Progress } from '../progress.js';
import type { KnexSession } from './knex-migration.js';

/**
 * A step's work can outlive the lifeboat process that sent it: the server
 * goes on with a CREATE INDEX CONCURRENTLY after its client was killed. Every
 * session doing a run's work announces the run (`lifeboat run <id> ...`), so
 * before a step in doubt is decided, the crashed run's sessions still on the
 * server are waited for (or, when the operator says so, ended): until they
 * end, no query can tell what the step did.
 */
export function runApplicationName(runId: string, what: string): string {
  return `lifeboat run ${runId} ${what}`;
}

export interface StaleSessionPolicy {
  /** End them (pg_terminate_backend) instead of waiting: `--terminate-stale`. */
  terminate: boolean;
  /**
   * When this process's first session started (server time): sessions of the
   * run older than that belong to the process that stopped, never to this one.
   */
  startedAt: string;
  progress: Progress;
  /** Ctrl-C while waiting: stop, having decided and changed nothing. */
  signal?: AbortSignal;
}

interface StaleSession {
  pid: number;
  application: string;
  state: string | null;
  query: string;
}

/** Wait until no session of the stopped runs is left in the database (ending them when told). */
export async function settleStaleSessions(
  client: pg.ClientBase,
  runIds: readonly string[],
  policy: StaleSessionPolicy,
): Promise<void> {
  let told = false;
  for (;;) {
    const stale = await staleSessions(client, runIds, policy.startedAt);
    if (stale.length === 0) return;
    if (policy.signal?.aborted) {
      throw new InterruptedError(
        `Interrupted while waiting for the stopped run's work still running on the server (pid ${stale.map((s) => s.pid).join(', ')}); nothing was decided or changed. Run again to wait for it, or with --terminate-stale to end it.`,
      );
    }
    if (policy.terminate) {
      for (const s of stale)
        await client.query('select pg_terminate_backend($1, 10000)', [s.pid]).catch(() => false);
    } else if (!told) {
      told = true;
      policy.progress.warn(
        `Waiting for the stopped run's work still running on the server before deciding its step in doubt: ${stale
          .map((s) => `pid ${s.pid} (${s.state ?? '?'}: ${s.query.slice(0, 80)})`)
          .join('; ')}. It ends by itself; --terminate-stale ends it instead.`,
      );
    }
    await sleep(policy.terminate ? 50 : 250);
  }
}

async function staleSessions(
  client: pg.ClientBase,
  runIds: readonly string[],
  startedAt: string,
): Promise<StaleSession[]> {
  const res = await client.query<StaleSession>(
    `select pid, application_name as application, state, coalesce(query, '') as query
       from pg_stat_activity
      where datname = current_database() and pid <> pg_backend_pid()
        and backend_start < $2::timestamptz
        and exists (select 1 from unnest($1::text[]) r(id)
                     where application_name like 'lifeboat run ' || r.id || '%')`,
    [runIds, startedAt],
  );
  return res.rows;
}

/**
 * The server's time at which the earlier of this process's two sessions
 * started (they connect side by side): what `startedAt` is read from.
 */
export async function sessionStart(client: pg.ClientBase, other: pg.ClientBase): Promise<string> {
  const pid = await other.query<{ pid: number }>('select pg_backend_pid() as pid');
  const res = await client.query<{ t: string }>(
    `select min(backend_start)::text as t from pg_stat_activity
      where pid in (pg_backend_pid(), $1)`,
    [pid.rows[0]!.pid],
  );
  return res.rows[0]!.t;
}

/**
 * Every session doing the run's work carries its id (the steps' own, knex's,
 * a shell step's psql), so that a later run can find the ones a crash left
 * working on the server; sessions older than this process's are those.
 */
export async function announceRun(
  lockClient: pg.ClientBase,
  client: pg.ClientBase,
  knex: KnexSession,
  runId: string,
  opts: { progress: Progress; terminateStale?: boolean; signal?: AbortSignal },
): Promise<{ applicationName: string; stale: StaleSessionPolicy }> {
  await client.query(`select set_config('application_name', $1, false)`, [
    runApplicationName(runId, 'steps'),
  ]);
  knex.applicationName = runApplicationName(runId, 'knex');
  return {
    applicationName: runApplicationName(runId, 'step'),
    stale: {
      terminate: opts.terminateStale ?? false,
      startedAt: await sessionStart(lockClient, client),
      progress: opts.progress,
      ...(opts.signal ? { signal: opts.signal } : {}),
    },
  };
}
