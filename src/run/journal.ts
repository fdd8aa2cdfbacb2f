import type pg from 'pg';
import { quoteIdent, quoteLiteral, type SqlRunner } from '../db.js';
import { redact } from '../secrets.js';
import type { KnexMigrationRef } from './knex-migration.js';

/**
 * lifeboat's own journal in the target database, in schema lifeboat_journal
 * (not "lifeboat": a role of that name would find it first on its
 * search_path, "$user", and unqualified CREATE TABLEs would land there). A transactional step's
 * checkpoint row commits in the step's own transaction; a non-transactional
 * step gets a `started` row before and is marked `done` after, so a crash in
 * between leaves it visibly in doubt. The undo of every applied step is stored
 * with it, so a rollback never depends on the runbook file still being there.
 */
export const JOURNAL_SCHEMA = 'lifeboat_journal';
/** The schema as SQL names it, quoted once here: every query on the journal goes through it. */
export const JOURNAL = quoteIdent(JOURNAL_SCHEMA);

const DDL = `
create schema if not exists ${JOURNAL};
create table if not exists ${JOURNAL}.runs (
  id text primary key,
  runbook text not null,
  runbook_file text not null,
  status text not null,
  backup_id text,
  host text not null,
  pid integer not null,
  started_at timestamptz not null default clock_timestamp(),
  finished_at timestamptz,
  pre_fingerprints jsonb,
  frozen_at timestamptz,
  unfrozen_at timestamptz,
  created_tables jsonb not null default '[]',
  error text
);
create table if not exists ${JOURNAL}.steps (
  run_id text not null references ${JOURNAL}.runs (id),
  seq integer not null,
  step_id text not null,
  kind text not null,
  checksum text not null,
  direction text not null check (direction in ('up', 'down')),
  status text not null check (status in ('started', 'done', 'failed')),
  transactional boolean not null,
  undo jsonb,
  verify text,
  started_at timestamptz not null default clock_timestamp(),
  finished_at timestamptz,
  error text,
  primary key (run_id, seq)
);`;

/** `baseline`: steps recorded as applied before lifeboat was adopted (`lifeboat baseline`); never undone. */
export type RunStatus =
  'running' | 'succeeded' | 'rolling-back' | 'rolled-back' | 'needs-operator' | 'baseline';

/** How to undo an applied step, stored with it. */
export type Undo =
  | { kind: 'sql'; text: string; transaction: boolean }
  | { kind: 'shell'; command: string; timeoutMs: number; directory: string; secrets?: string[] }
  | ({ kind: 'knex' } & KnexMigrationRef)
  | { kind: 'nothing-to-undo' }
  /** No way back; a knex migration keeps its reference so knex's table can still decide it. */
  | { kind: 'none'; knex?: KnexMigrationRef };

export interface RunRow {
  id: string;
  runbook: string;
  runbookFile: string;
  status: RunStatus;
  backupId: string | null;
  host: string;
  pid: number;
  startedAt: string;
  finishedAt: string | null;
  /** When the run froze the database (before its backup), if it did, and when that was lifted. */
  frozenAt: string | null;
  unfrozenAt?: string | null;
  error: string | null;
}

export interface StepEvent {
  runId: string;
  runbook: string;
  seq: number;
  stepId: string;
  kind: string;
  checksum: string;
  direction: 'up' | 'down';
  status: 'started' | 'done' | 'failed';
  transactional: boolean;
  undo: Undo | null;
  /** The step's verify query, kept to decide it if it is ever in doubt. */
  verify: string | null;
  startedAt: string;
  finishedAt: string | null;
  error: string | null;
}

/** Idempotent, and safe when two processes race (the run lock is held, but `status` may not hold it). */
export async function ensureJournal(client: pg.ClientBase): Promise<void> {
  try {
    await client.query(DDL);
  } catch (err) {
    // Two concurrent `create ... if not exists` can still collide on the catalog; the loser retries once.
    if ((err as { code?: string }).code !== '23505') throw err;
    await client.query(DDL);
  }
}

export async function journalExists(client: pg.ClientBase): Promise<boolean> {
  const res = await client.query<{ ok: boolean }>(`select to_regclass($1) is not null as ok`, [
    `${JOURNAL}.steps`,
  ]);
  return res.rows[0]?.ok ?? false;
}

export async function insertRun(
  client: pg.ClientBase,
  run: Omit<RunRow, 'startedAt' | 'finishedAt' | 'error'>,
): Promise<void> {
  await client.query(
    `insert into ${JOURNAL}.runs (id, runbook, runbook_file, status, backup_id, host, pid, frozen_at)
     values ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [
      run.id,
      run.runbook,
      run.runbookFile,
      run.status,
      run.backupId,
      run.host,
      run.pid,
      run.frozenAt,
    ],
  );
}

export async function setRunStatus(
  client: pg.ClientBase,
  runId: string,
  status: RunStatus,
  error: string | null = null,
): Promise<void> {
  const ongoing = status === 'running' || status === 'rolling-back';
  await client.query(
    `update ${JOURNAL}.runs set status = $2, error = coalesce($3, error),
            finished_at = ${ongoing ? 'null' : 'clock_timestamp()'}
      where id = $1`,
    [runId, status, error === null ? null : redact(error)],
  );
}

export async function savePreFingerprints(
  client: pg.ClientBase,
  runId: string,
  fingerprints: unknown,
): Promise<void> {
  await client.query(`update ${JOURNAL}.runs set pre_fingerprints = $2 where id = $1`, [
    runId,
    JSON.stringify(fingerprints),
  ]);
}

/**
 * Tables the run created for its tools (knex's bookkeeping tables), after the
 * pre-run fingerprints: a complete rollback drops them again if empty.
 */
export async function saveCreatedTables(
  client: pg.ClientBase,
  runId: string,
  tables: string[],
): Promise<void> {
  await client.query(`update ${JOURNAL}.runs set created_tables = $2 where id = $1`, [
    runId,
    JSON.stringify(tables),
  ]);
}

export async function dropCreatedTables(client: pg.ClientBase, runId: string): Promise<void> {
  const res = await client.query<{ t: string[] }>(
    `select created_tables as t from ${JOURNAL}.runs where id = $1`,
    [runId],
  );
  for (const qualified of res.rows[0]?.t ?? []) {
    const [schema = 'public', table = ''] = qualified.split('.');
    const name = `${quoteIdent(schema)}.${quoteIdent(table)}`;
    const exists = await client.query<{ t: string | null }>(`select to_regclass($1)::text as t`, [
      name,
    ]);
    if (!exists.rows[0]?.t) continue;
    const rows = await client.query<{ n: string }>(
      `select count(*)::text as n from ${name} where true`,
    );
    // The lock table keeps one row (unlocked); anything more means someone used it since.
    const limit = table.endsWith('_lock') ? 1 : 0;
    if (Number(rows.rows[0]?.n ?? 0) <= limit) await client.query(`drop table ${name}`);
  }
}

export async function loadPreFingerprints<T>(
  client: pg.ClientBase,
  runId: string,
): Promise<T | undefined> {
  const res = await client.query<{ f: T | null }>(
    `select pre_fingerprints as f from ${JOURNAL}.runs where id = $1`,
    [runId],
  );
  return res.rows[0]?.f ?? undefined;
}

/** An event as recorded: the journal adds its sequence number and times. */
export type NewEvent = Pick<
  StepEvent,
  'runId' | 'stepId' | 'kind' | 'checksum' | 'direction' | 'status' | 'transactional' | 'undo'
> & { verify?: string | null; error?: string | null };

/**
 * Append an event; returns its sequence number within the run. `client` may
 * be knex's transaction (a knex migration's checkpoint commits with it).
 */
export async function recordEvent(client: SqlRunner, e: NewEvent): Promise<number> {
  const values = eventValues(e);
  const res = await client.query(
    insertEvent((i) => `$${i}`),
    values,
  );
  return (res.rows[0] as { seq: number }).seq;
}

/**
 * The same insert as one statement with its values written in (quoted by the
 * driver), to send in one query with the step it checkpoints.
 */
export function eventStatement(e: NewEvent): string {
  const values = eventValues(e);
  return insertEvent((i) => {
    const v = values[i - 1];
    return v === null || v === undefined
      ? 'null'
      : typeof v === 'boolean'
        ? String(v)
        : quoteLiteral(v);
  });
}

function eventValues(e: NewEvent): (string | boolean | null)[] {
  return [
    e.runId,
    e.stepId,
    e.kind,
    e.checksum,
    e.direction,
    e.status,
    e.transactional,
    e.undo ? JSON.stringify(e.undo) : null,
    e.verify ?? null,
    e.error ? redact(e.error) : null,
  ];
}

function insertEvent(value: (i: number) => string): string {
  const $ = value;
  return `insert into ${JOURNAL}.steps (run_id, seq, step_id, kind, checksum, direction, status, transactional, undo, verify, error, finished_at)
     values (${$(1)}, (select coalesce(max(seq), 0) + 1 from ${JOURNAL}.steps where run_id = ${$(1)}),
             ${$(2)}, ${$(3)}, ${$(4)}, ${$(5)}, ${$(6)}, ${$(7)}, ${$(8)}, ${$(9)}, ${$(10)}, case when ${$(6)} = 'started' then null else clock_timestamp() end)
     returning seq`;
}

/**
 * End a `started` event. `nothingRan`: the step failed before any of its work
 * ran (a knex migration that could not be loaded), so it is not applied
 * rather than in doubt, as if it had been transactional.
 */
export async function finishEvent(
  client: SqlRunner,
  runId: string,
  seq: number,
  status: 'done' | 'failed',
  error: string | null = null,
  nothingRan = false,
): Promise<void> {
  await client.query(
    `update ${JOURNAL}.steps set status = $3, error = $4, finished_at = clock_timestamp(),
            transactional = transactional or $5 where run_id = $1 and seq = $2`,
    [runId, seq, status, error === null ? null : redact(error), nothingRan],
  );
}

const RUN_COLUMNS = `id, runbook, runbook_file as "runbookFile", status, backup_id as "backupId", host, pid,
  started_at as "startedAt", finished_at as "finishedAt", frozen_at as "frozenAt",
  unfrozen_at as "unfrozenAt", error`;

export async function readRuns(client: pg.ClientBase): Promise<RunRow[]> {
  if (!(await journalExists(client))) return [];
  const res = await client.query<RunRow>(
    `select ${RUN_COLUMNS} from ${JOURNAL}.runs order by started_at, id`,
  );
  return res.rows.map((r) => ({
    ...r,
    startedAt: iso(r.startedAt),
    finishedAt: r.finishedAt ? iso(r.finishedAt) : null,
    frozenAt: r.frozenAt ? iso(r.frozenAt) : null,
    unfrozenAt: r.unfrozenAt ? iso(r.unfrozenAt) : null,
  }));
}

/** Every step event of every run, in order. */
export async function readEvents(client: pg.ClientBase): Promise<StepEvent[]> {
  if (!(await journalExists(client))) return [];
  const res = await client.query<StepEvent>(
    `select s.run_id as "runId", r.runbook, s.seq, s.step_id as "stepId", s.kind, s.checksum, s.direction, s.status,
            s.transactional, s.undo, s.verify, s.started_at as "startedAt", s.finished_at as "finishedAt", s.error
       from ${JOURNAL}.steps s join ${JOURNAL}.runs r on r.id = s.run_id
      order by r.started_at, s.run_id, s.seq`,
  );
  return res.rows.map((e) => ({
    ...e,
    startedAt: iso(e.startedAt),
    finishedAt: e.finishedAt ? iso(e.finishedAt) : null,
  }));
}

function iso(value: unknown): string {
  return value instanceof Date ? value.toISOString() : String(value);
}

/**
 * Copy a run and its events into another journal (the one a restore brought
 * back, from before the run) and record every step it applied as undone.
 */
export async function importRun(
  client: pg.ClientBase,
  run: RunRow | undefined,
  events: StepEvent[],
  note: string,
): Promise<void> {
  if (!run) return;
  await client.query('begin');
  try {
    await client.query(
      `insert into ${JOURNAL}.runs (id, runbook, runbook_file, status, backup_id, host, pid, started_at, frozen_at, finished_at, error)
       values ($1, $2, $3, 'rolled-back', $4, $5, $6, $7, $8, clock_timestamp(), $9)
       on conflict (id) do update set status = 'rolled-back', finished_at = clock_timestamp(), error = excluded.error`,
      [
        run.id,
        run.runbook,
        run.runbookFile,
        run.backupId,
        run.host,
        run.pid,
        run.startedAt,
        run.frozenAt,
        note,
      ],
    );
    await client.query(`delete from ${JOURNAL}.steps where run_id = $1`, [run.id]);
    for (const e of events) {
      await client.query(
        `insert into ${JOURNAL}.steps (run_id, seq, step_id, kind, checksum, direction, status, transactional, undo, verify, started_at, finished_at, error)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
        [
          e.runId,
          e.seq,
          e.stepId,
          e.kind,
          e.checksum,
          e.direction,
          e.status,
          e.transactional,
          e.undo ? JSON.stringify(e.undo) : null,
          e.verify,
          e.startedAt,
          e.finishedAt,
          e.error,
        ],
      );
    }
    // The restore undid every step the run applied: the journal says so too.
    const applied = [...new Set(events.filter((e) => e.direction === 'up').map((e) => e.stepId))];
    for (const stepId of applied) {
      const last = [...events].reverse().find((e) => e.stepId === stepId)!;
      await recordEvent(client, {
        runId: run.id,
        stepId,
        kind: last.kind,
        checksum: last.checksum,
        direction: 'down',
        status: 'done',
        transactional: true,
        undo: null,
        error: 'undone by the restore of the backup',
      });
    }
    await client.query('commit');
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  }
}
