import type pg from 'pg';
import { quoteIdent, sqlState } from '../db.js';
import { BadInputError } from '../errors.js';
import { pausePoint } from '../faults.js';
import { readIdentity } from '../identity.js';
import type { Manifest } from '../repository/manifest.js';
import { describeTarget, type Target } from '../target.js';
import {
  listSessions,
  sessionsRefusal,
  settledSessions,
  terminateRefusal,
  terminateSessions,
  waitGone,
  type Session,
} from './sessions.js';

const SWAP_ATTEMPTS = 5;

/** A swap puts the backup under the target's name: it must be a backup of that very database. */
export async function checkSameDatabase(
  admin: pg.ClientBase,
  manifest: Manifest,
  target: Target,
): Promise<void> {
  const server = await readIdentity(admin);
  const of = manifest.target;
  if (of.systemIdentifier !== server.systemIdentifier || of.database !== target.database) {
    throw new BadInputError(
      `Backup ${manifest.id} is of ${of.described}, not of ${describeTarget(target)}; --swap would put another database's content under "${target.database}". Restore it beside (without --swap) instead.`,
    );
  }
}

/** The SQL an operator can run (from another database) to swap a restored database in by hand. */
export function swapStatements(target: string, restored: string, replacedAs: string): string {
  return [
    'BEGIN;',
    `ALTER DATABASE ${quoteIdent(target)} RENAME TO ${quoteIdent(replacedAs)};`,
    `ALTER DATABASE ${quoteIdent(restored)} RENAME TO ${quoteIdent(target)};`,
    'COMMIT;',
  ].join(' ');
}

/**
 * Rename `target` to `replacedAs` and `restored` to `target` in one
 * transaction, so the target's name never names zero or two databases (new
 * connections to either wait for the commit). Returns the sessions terminated.
 */
export async function swapNames(
  admin: pg.ClientBase,
  names: { target: string; restored: string; replacedAs: string; terminate: boolean },
): Promise<Session[]> {
  const both = [names.target, names.restored];
  const terminated: Session[] = [];
  for (let attempt = 1; ; attempt++) {
    const sessions = await settledSessions(admin, both);
    if (sessions.length > 0) {
      if (!names.terminate || attempt > SWAP_ATTEMPTS) {
        throw sessionsRefusal(sessions, names.restored);
      }
      const { ended, refused } = await terminateSessions(admin, sessions);
      terminated.push(...ended);
      if (refused.length > 0) throw terminateRefusal(refused, names.restored);
      await waitGone(
        admin,
        ended.map((e) => e.pid),
      );
    }
    try {
      await admin.query('begin');
      await admin.query(
        `alter database ${quoteIdent(names.target)} rename to ${quoteIdent(names.replacedAs)}`,
      );
      await pausePoint('restore:swap-between-renames');
      await admin.query(
        `alter database ${quoteIdent(names.restored)} rename to ${quoteIdent(names.target)}`,
      );
      await admin.query('commit');
      return terminated;
    } catch (err) {
      await admin.query('rollback').catch(() => undefined);
      const code = sqlState(err);
      if (code === '55006') {
        // Someone connected between our look and the rename (or a prepared transaction holds on).
        const prepared = await preparedTransactions(admin, both);
        if (prepared.length > 0) {
          throw new BadInputError(
            `Cannot swap: prepared transactions use the databases; commit or roll them back first. The proved database ${names.restored} is kept; nothing was renamed.`,
            { details: prepared, cause: err },
          );
        }
        if (names.terminate && attempt < SWAP_ATTEMPTS) continue;
        throw sessionsRefusal(await listSessions(admin, both), names.restored);
      }
      if (code === '42P04') {
        throw new BadInputError(
          `Cannot swap: a database named "${names.replacedAs}" already exists. The proved database ${names.restored} is kept; nothing was renamed.`,
          { cause: err },
        );
      }
      throw err;
    }
  }
}

async function preparedTransactions(admin: pg.ClientBase, databases: string[]): Promise<string[]> {
  const res = await admin.query<{ gid: string; database: string }>(
    `select gid, database from pg_prepared_xacts where database = any($1::text[])`,
    [databases],
  );
  return res.rows.map((r) => `prepared transaction "${r.gid}" in ${r.database}`);
}
