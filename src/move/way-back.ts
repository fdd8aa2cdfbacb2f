import type pg from 'pg';
import type { Config } from '../config.js';
import { quoteIdent, quoteLiteral, withClient } from '../db.js';
import { BadInputError, RollbackIncompleteError } from '../errors.js';
import { readIdentity, readWriteCounters } from '../identity.js';
import type { Progress } from '../progress.js';
import { MOVED_TO, readFreeze, unfreezeDatabase, writableDuringFreeze } from '../run/freeze.js';
import { withRunLock } from '../run/lock.js';
import { scratchServer, type Target } from '../target.js';
import { OPEN_STATES, openMoveOf, pendingPhases, rollbackVerdict } from './plan.js';
import { readMoves, saveMove, type MoveRecord } from './record.js';

/**
 * The two ends of an open move: `--finish` retires the source for good
 * (read-only, marked as moved: where to and when), `rollback` gives it its
 * writes back. Neither drops anything on either server.
 */
export interface WayBackOptions {
  config: Config;
  source: Target;
  lockWaitMs: number;
  progress: Progress;
}

/** The move still open on the source, if any (read only). */
export async function openMove(config: Config, source: Target): Promise<MoveRecord | undefined> {
  const identity = await withClient(writableDuringFreeze(source), readIdentity);
  return openMoveOf(await readMoves(config), identity);
}

/**
 * The move as its record says now, read again under the source's lock: a
 * finish and a rollback that raced each other must not both act on it.
 */
async function stillOpen(config: Config, id: string): Promise<MoveRecord> {
  const now = (await readMoves(config)).find((m) => m.id === id);
  if (!now || !OPEN_STATES.includes(now.state)) {
    throw new BadInputError(
      `Move ${id} was ${now?.state ?? 'removed'} meanwhile; nothing was changed.`,
    );
  }
  return now;
}

export async function finishMove(opts: WayBackOptions): Promise<MoveRecord> {
  const source = writableDuringFreeze(opts.source);
  const found = await openMove(opts.config, opts.source);
  if (!found) {
    throw new BadInputError(
      `There is no open move of ${source.database} to finish; \`lifeboat move --to URL\` starts one.`,
    );
  }
  if (found.state === 'moving') {
    throw new BadInputError(
      `Move ${found.id} has not reached its destination yet (it stopped before its ${pendingPhases(found)[0] ?? 'end'}); resume it with lifeboat move --to <its URL>, or roll it back.`,
    );
  }
  return withRunLock(source, found.id, opts.lockWaitMs, () =>
    withClient(source, async (client) => {
      const record = await stillOpen(opts.config, found.id);
      await opts.progress.task(`Retire ${source.database}: read-only, marked as moved`, () =>
        retireSource(client, source.database, record),
      );
      record.state = 'finished';
      record.finishedAt = new Date().toISOString();
      delete record.error;
      await saveMove(opts.config, record);
      return record;
    }),
  );
}

/**
 * The freeze becomes permanent: the read-only default stays, the run/move
 * freeze mark is replaced by where the data went, so `unfreeze` does not
 * lift it by accident.
 */
async function retireSource(
  client: pg.ClientBase,
  database: string,
  record: MoveRecord,
): Promise<void> {
  const db = quoteIdent(database);
  const to = `${record.destination.server}/${record.destination.database} ${new Date().toISOString()}`;
  await client.query('begin');
  try {
    await client.query(`alter database ${db} set default_transaction_read_only = on`);
    await client.query(`alter database ${db} set ${MOVED_TO} = ${quoteLiteral(to)}`);
    await client.query(`alter database ${db} reset lifeboat.frozen_by`);
    await client.query('commit');
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  }
}

export interface MoveRollback {
  moveId: string;
  source: string;
  unfrozen: boolean;
  /** Row writes the destination took since its checks (absent: it was never checked). */
  destinationWrites?: number;
  /** The moved database, kept on the destination. */
  kept: string;
}

/**
 * Go back to the source: refused while the destination holds writes the
 * source lacks (unless forced), else the source is unfrozen and the move
 * recorded as rolled back. `to` reaches the destination when its recorded
 * connection (which has no password) is not enough.
 */
export async function rollbackMove(
  opts: WayBackOptions & { record: MoveRecord; to?: string; force: boolean },
): Promise<MoveRollback> {
  const { record } = opts;
  const source = writableDuringFreeze(opts.source);
  const writes = record.writeBaseline === undefined ? undefined : await writesSince(opts);
  const verdict = rollbackVerdict(record, writes, opts.force);
  if (!verdict.go) {
    if (verdict.exitCode === 6) throw new RollbackIncompleteError(verdict.why);
    throw new BadInputError(verdict.why);
  }
  return withRunLock(source, record.id, opts.lockWaitMs, () =>
    withClient(source, async (client) => {
      await stillOpen(opts.config, record.id);
      const freeze = await readFreeze(client, source.database);
      const unfrozen = freeze?.runId === record.id;
      if (unfrozen) {
        await opts.progress.task(`Unfreeze ${source.database}`, () =>
          unfreezeDatabase(client, source.database),
        );
      }
      record.state = 'rolled-back';
      record.rolledBackAt = new Date().toISOString();
      await saveMove(opts.config, record);
      return {
        moveId: record.id,
        source: record.source.described,
        unfrozen,
        ...(typeof writes === 'number' ? { destinationWrites: writes } : {}),
        kept: `${record.destination.server}/${record.destination.database}`,
      };
    }),
  );
}

/** Row writes on the moved database since its checks; 'unknown' when it cannot be read. */
async function writesSince(
  opts: WayBackOptions & { record: MoveRecord; to?: string },
): Promise<number | 'unknown'> {
  const { record } = opts;
  try {
    const server = opts.to
      ? scratchServer(opts.to, opts.source)
      : scratchServer(record.destination.connection, opts.source);
    const dest = { ...server, database: record.destination.database };
    const now = await withClient(dest, readWriteCounters, 'lifeboat rollback');
    const writes = Number(now.rowWrites) - Number(record.writeBaseline);
    // Statistics reset since the checks (pg_stat_reset, a crash of that server) count from zero
    // again: a count that went down, or a new reset time, tells nothing.
    if (writes < 0 || (record.statsReset !== undefined && now.statsReset !== record.statsReset))
      return 'unknown';
    return writes;
  } catch {
    return 'unknown';
  }
}
