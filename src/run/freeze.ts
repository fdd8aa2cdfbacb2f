import type pg from 'pg';
import { quoteIdent, quoteLiteral } from '../db.js';
import { JOURNAL } from './journal.js';
import { BadInputError } from '../errors.js';
import type { Progress } from '../progress.js';
import type { Target } from '../target.js';

/**
 * Freezing a database for a run: new sessions start read-only
 * (default_transaction_read_only at the database level) and the sessions
 * already connected are ended, so their open transactions roll back whole and
 * they reconnect read-only. lifeboat's own sessions opt out with the
 * `options` startup parameter. It stops applications, not a determined user:
 * a session can still turn read-only off for itself.
 */
export const WRITABLE_OPTIONS = '-c default_transaction_read_only=off';

/** The target as lifeboat's own sessions must reach it during a frozen run. */
export function writableDuringFreeze(target: Target): Target {
  return { ...target, options: WRITABLE_OPTIONS };
}

/**
 * Which run froze the database, and since when, is kept beside the setting
 * itself (`lifeboat.frozen_by`), so a freeze outlives a crash visibly and is
 * never confused with a read-only default an administrator set.
 */
export interface Freeze {
  runId: string;
  since: string;
}

export async function freezeDatabase(
  client: pg.ClientBase,
  database: string,
  runId: string,
): Promise<Freeze> {
  const role = await client.query<{ superuser: boolean }>(
    'select rolsuper as superuser from pg_roles where rolname = current_user',
  );
  if (!role.rows[0]?.superuser) {
    // Tagging the database (a custom setting) and ending other roles' sessions both need it.
    throw new BadInputError(
      '--freeze needs a superuser: it marks the database as frozen by this run and ends the sessions of other roles. Run as a superuser, or without --freeze.',
    );
  }
  const db = quoteIdent(database);
  const since = new Date().toISOString();
  await client.query('begin');
  try {
    await client.query(`alter database ${db} set default_transaction_read_only = on`);
    await client.query(
      `alter database ${db} set lifeboat.frozen_by = ${quoteLiteral(`${runId} ${since}`)}`,
    );
    await client.query('commit');
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  }
  await endOtherSessions(client, database, null);
  return { runId, since };
}

/**
 * Lift the freeze and end the sessions that connected while it held: they
 * carry the read-only default until they reconnect.
 */
export async function unfreezeDatabase(
  client: pg.ClientBase,
  database: string,
): Promise<Freeze | undefined> {
  const freeze = await readFreeze(client, database);
  if (!freeze) return undefined;
  const db = quoteIdent(database);
  await client.query('begin');
  try {
    await client.query(`alter database ${db} reset default_transaction_read_only`);
    await client.query(`alter database ${db} reset lifeboat.frozen_by`);
    await client.query('commit');
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  }
  await endOtherSessions(client, database, freeze.since);
  await journalUnfreeze(client, database, freeze.runId);
  return freeze;
}

export async function readFreeze(
  client: pg.ClientBase,
  database: string,
): Promise<Freeze | undefined> {
  const res = await client.query<{ value: string | null }>(
    `select (select substr(c, length('lifeboat.frozen_by=') + 1) from unnest(s.setconfig) c
              where c like 'lifeboat.frozen\\_by=%') as value
       from pg_db_role_setting s join pg_database d on d.oid = s.setdatabase
      where d.datname = $1 and s.setrole = 0`,
    [database],
  );
  const value = res.rows[0]?.value;
  if (!value) return undefined;
  const [runId = '', since = ''] = value.split(' ');
  return { runId, since };
}

/** A source retired by `lifeboat move --finish` is marked with where its data went: `<server>/<database> <when>`. */
export const MOVED_TO = 'lifeboat.moved_to';

/** Where a retired database went, or undefined when it was not moved by lifeboat. */
export async function readMovedTo(
  client: pg.ClientBase,
  database: string,
): Promise<string | undefined> {
  const res = await client.query<{ value: string | null }>(
    `select (select substr(c, length($2) + 2) from unnest(s.setconfig) c where starts_with(c, $2 || '='))
            as value
       from pg_db_role_setting s join pg_database d on d.oid = s.setdatabase
      where d.datname = $1 and s.setrole = 0`,
    [database, MOVED_TO],
  );
  return res.rows.find((r) => r.value)?.value ?? undefined;
}

/** End other client sessions on `database` (all, or those started since `since`), never lifeboat's own. */
async function endOtherSessions(
  client: pg.ClientBase,
  database: string,
  since: string | null,
): Promise<number> {
  const res = await client.query<{ n: string }>(
    `select count(*) filter (where pg_terminate_backend(pid))::text as n
       from pg_stat_activity
      where datname = $1 and pid <> pg_backend_pid() and backend_type = 'client backend'
        and coalesce(application_name, '') not like 'lifeboat%'
        and ($2::timestamptz is null or backend_start >= $2::timestamptz)`,
    [database, since],
  );
  return Number(res.rows[0]?.n ?? 0);
}

/** Lift the freeze if `runId` holds it; say so through progress. */
export async function thawRun(
  client: pg.ClientBase,
  database: string,
  runId: string,
  progress: Progress,
): Promise<void> {
  const freeze = await readFreeze(client, database);
  if (freeze?.runId !== runId) return;
  await progress.task(`Unfreeze ${database}`, () => unfreezeDatabase(client, database));
}

/** The journal of the run's database records when its freeze was lifted, whoever lifted it. */
async function journalUnfreeze(
  client: pg.ClientBase,
  database: string,
  runId: string,
): Promise<void> {
  const here = await client.query<{ ok: boolean }>(
    `select current_database() = $1 and to_regclass($2) is not null as ok`,
    [database, `${JOURNAL}.runs`],
  );
  if (!here.rows[0]?.ok) return;
  await client.query(`update ${JOURNAL}.runs set unfrozen_at = clock_timestamp() where id = $1`, [
    runId,
  ]);
}
