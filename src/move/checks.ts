import type pg from 'pg';
import { quoteIdent, quoteLiteral, withClient } from '../db.js';
import type { Target } from '../target.js';
import { VerificationFailedError, errorMessage } from '../errors.js';
import type { MoveChecks } from './record.js';

/**
 * Checks on the moved database, beyond the fingerprints' proof: every
 * B-tree index agrees with its table (amcheck, heapallindexed), the
 * database's and its collations' versions are the ones the server's
 * libraries give now, extensions are at the server's version, and the
 * planner has statistics (ANALYZE) before the first query arrives.
 */
const AMCHECK_SCHEMA = 'lifeboat_amcheck';

/** ANALYZE the moved database, so the new server does not start without statistics; its time. */
export async function analyzeMoved(target: Target): Promise<number> {
  return withClient(
    target,
    async (client) => {
      const started = Date.now();
      await client.query('analyze');
      return Date.now() - started;
    },
    'lifeboat move analyze',
  );
}

/**
 * Run on the moved database; refuses (exit 4) naming each problem. ANALYZE
 * normally ran beside the copy's proof (`analyzeMs`); when it did not (the
 * copy was found restored after a crash), it runs here beside the index
 * checks: both only read the tables.
 */
export async function checkMoved(
  target: Target,
  opts: { sequences: number; analyzeMs?: number },
): Promise<MoveChecks> {
  const analyzed =
    opts.analyzeMs === undefined ? analyzeMoved(target) : Promise.resolve(opts.analyzeMs);
  // Settled here so that a failed check never leaves it unobserved.
  analyzed.catch(() => undefined);
  const checked = await withClient(
    target,
    async (client) => {
      const problems: string[] = [];
      const indexes = await checkIndexes(client, problems);
      const collationsChecked = await checkCollations(client, problems);
      if (problems.length > 0) {
        throw new VerificationFailedError(
          `The moved database failed ${problems.length} check(s) on the destination.`,
          { details: problems },
        );
      }
      return { ...indexes, collationsChecked, extensionsUpdated: await updateExtensions(client) };
    },
    'lifeboat move checks',
  );
  return { ...checked, sequences: opts.sequences, analyzeMs: await analyzed };
}

/**
 * bt_index_check with heapallindexed on every B-tree index with storage.
 * amcheck is used where it is installed, else installed for the check in a
 * schema of its own and removed after, so the user's schemas are unchanged.
 */
async function checkIndexes(
  client: pg.ClientBase,
  problems: string[],
): Promise<Pick<MoveChecks, 'indexesChecked' | 'indexesSkipped'>> {
  const installed = await client.query<{ schema: string }>(
    `select n.nspname as schema from pg_extension e join pg_namespace n on n.oid = e.extnamespace
      where e.extname = 'amcheck'`,
  );
  let schema = installed.rows[0]?.schema;
  const ours = !schema;
  if (ours) {
    try {
      await client.query(`create schema if not exists ${quoteIdent(AMCHECK_SCHEMA)}`);
      await client.query(
        `create extension if not exists amcheck schema ${quoteIdent(AMCHECK_SCHEMA)}`,
      );
      schema = AMCHECK_SCHEMA;
    } catch (err) {
      await removeOurAmcheck(client);
      return {
        indexesChecked: 0,
        indexesSkipped: `amcheck could not be installed on the destination (${errorMessage(err)})`,
      };
    }
  }
  try {
    const list = await client.query<{ oid: number; name: string }>(
      `select c.oid::int as oid, format('%I.%I', n.nspname, c.relname) as name
         from pg_index i
         join pg_class c on c.oid = i.indexrelid
         join pg_namespace n on n.oid = c.relnamespace
         join pg_am a on a.oid = c.relam
        where a.amname = 'btree' and c.relkind = 'i' and c.relpersistence <> 't'
          and n.nspname not in ('pg_catalog', 'information_schema')
          and i.indisvalid and i.indisready and n.nspname <> ${quoteLiteral(AMCHECK_SCHEMA)}
        order by 2`,
    );
    for (const index of list.rows) {
      try {
        await client.query(
          `select ${quoteIdent(schema!)}.bt_index_check($1::oid::regclass, true)`,
          [index.oid],
        );
      } catch (err) {
        problems.push(
          `index ${index.name} does not match its table (amcheck): ${errorMessage(err)}`,
        );
      }
    }
    return { indexesChecked: list.rows.length };
  } finally {
    if (ours) await removeOurAmcheck(client);
  }
}

async function removeOurAmcheck(client: pg.ClientBase): Promise<void> {
  await client
    .query(`drop schema if exists ${quoteIdent(AMCHECK_SCHEMA)} cascade`)
    .catch(() => undefined);
}

/**
 * A collation whose recorded version differs from the library's version now
 * may order text differently than the indexes were built with. The
 * database's own version is in pg_database from PostgreSQL 15.
 */
async function checkCollations(client: pg.ClientBase, problems: string[]): Promise<number> {
  const major = Number(
    (await client.query<{ v: string }>(`select current_setting('server_version_num') as v`))
      .rows[0]!.v,
  );
  let checked = 0;
  if (major >= 150000) {
    const db = await client.query<{ recorded: string | null; actual: string | null }>(
      `select datcollversion as recorded, pg_database_collation_actual_version(oid) as actual
         from pg_database where datname = current_database()`,
    );
    const row = db.rows[0]!;
    checked += 1;
    if (row.recorded !== null && row.actual !== null && row.recorded !== row.actual)
      problems.push(
        `the database's collation version is recorded as ${row.recorded}, but the destination's library gives ${row.actual}: text indexes may be ordered wrongly (REINDEX, then ALTER DATABASE … REFRESH COLLATION VERSION)`,
      );
  }
  const collations = await client.query<{ name: string; recorded: string; actual: string | null }>(
    `select format('%I.%I', n.nspname, c.collname) as name, c.collversion as recorded,
            pg_collation_actual_version(c.oid) as actual
       from pg_collation c join pg_namespace n on n.oid = c.collnamespace
      where c.collversion is not null order by 1`,
  );
  for (const c of collations.rows) {
    checked += 1;
    if (c.actual !== null && c.recorded !== c.actual)
      problems.push(
        `collation ${c.name} is recorded at version ${c.recorded}, but the destination's library gives ${c.actual} (REINDEX what uses it, then ALTER COLLATION … REFRESH VERSION)`,
      );
  }
  return checked;
}

/** Extensions left below the server's default version are brought to it (the preflight saw a path). */
async function updateExtensions(client: pg.ClientBase): Promise<string[]> {
  const behind = await client.query<{ name: string; from: string; to: string }>(
    `select e.extname as name, e.extversion as from, a.default_version as to
       from pg_extension e join pg_available_extensions a on a.name = e.extname
      where e.extversion <> a.default_version order by 1`,
  );
  const updated: string[] = [];
  for (const e of behind.rows) {
    await client.query(`alter extension ${quoteIdent(e.name)} update`);
    updated.push(`${e.name} ${e.from} → ${e.to}`);
  }
  return updated;
}
