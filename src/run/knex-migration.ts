import type { Knex } from 'knex';
import type { ClientConfig } from 'pg';
import type { Step, Timeouts } from '../runbook/types.js';
import { redact } from '../secrets.js';
import { clientConfig, type Target } from '../target.js';

/**
 * One migration file of a user's knex migrations directory, as knex names it
 * in its bookkeeping table (the file name, extension included).
 */
export interface KnexMigrationRef {
  name: string;
  /** Absolute path of the migrations directory. */
  directory: string;
  tableName: string;
  schemaName?: string;
  loadExtensions: string[];
}

export type KnexDirection = 'up' | 'down';

export interface KnexRunOptions {
  /** Session `lock_timeout` / `statement_timeout` for every connection knex opens. */
  timeouts?: Timeouts;
  /** knex's own warnings (e.g. "migration X did not return a promise"), redacted. Dropped when absent. */
  onWarning?: (message: string) => void;
}

/** A knex migration that failed or could not be run; the message names it and its direction. */
export class KnexMigrationError extends Error {
  readonly migration: string;
  readonly direction: KnexDirection;
  /** SQLSTATE of the failing statement, when PostgreSQL raised the error. */
  readonly sqlState: string | undefined;

  constructor(
    migration: string,
    direction: KnexDirection,
    reason: string,
    options: { cause?: unknown; sqlState?: string } = {},
  ) {
    super(`knex migration ${migration} (${direction}) failed: ${reason}`, { cause: options.cause });
    this.name = 'KnexMigrationError';
    this.migration = migration;
    this.direction = direction;
    this.sqlState = options.sqlState;
  }
}

/**
 * Run one migration's `up` through knex's own Migrator (`migrate.up({ name })`),
 * so the row in knex's table, its batch number and the lock table are exactly
 * what `knex migrate:latest` would leave. knex runs only the named migration,
 * even when earlier ones are pending; the result is checked to be sure.
 *
 * As in knex, a migration runs in a transaction together with its row (and the
 * lock) unless it exports `config = { transaction: false }`.
 *
 * Throws a `KnexMigrationError` when the migration fails (its transaction, if
 * any, rolled back and nothing recorded), when the directory has no such file,
 * or when knex already lists it as applied (then nothing was run).
 */
export async function applyKnexMigration(
  target: Target,
  ref: KnexMigrationRef,
  options: KnexRunOptions = {},
): Promise<void> {
  await withKnex(target, ref, 'up', options, async (knex) => {
    const result: unknown = await knex.migrate.up(migratorConfig(ref));
    const ran = ranMigrations(result);
    if (ran.length === 0) {
      throw new KnexMigrationError(
        ref.name,
        'up',
        `knex already lists it as applied in ${tableLabel(ref)}; nothing was run`,
      );
    }
    if (ran.length !== 1 || ran[0] !== ref.name) {
      // knex 3's up({ name }) runs exactly the named migration; anything else is a knex change to notice.
      throw new KnexMigrationError(
        ref.name,
        'up',
        `knex ran ${ran.join(', ')} instead of exactly this migration`,
      );
    }
  });
}

/**
 * Run one applied migration's `down` through knex (`migrate.down({ name })`)
 * and remove its row from knex's table, as `knex migrate:down --name` would.
 *
 * One deliberate difference in timing, not in outcome: knex deletes the row
 * after the migration's transaction has committed, so a crash in between
 * would leave the schema undone but the migration still listed. Here the row
 * is deleted inside that transaction (an `afterEach` hook), so for a
 * transactional migration both happen or neither does. A migration with
 * `config = { transaction: false }` runs without a transaction, as in knex.
 *
 * Throws a `KnexMigrationError` when the migration has no `down` function
 * (nothing is run and its row stays), when it is not applied, or when `down`
 * fails (its transaction, if any, rolled back and the row kept).
 */
export async function undoKnexMigration(
  target: Target,
  ref: KnexMigrationRef,
  options: KnexRunOptions = {},
): Promise<void> {
  await withKnex(target, ref, 'down', options, async (knex) => {
    const result: unknown = await knex.migrate.down({
      ...migratorConfig(ref),
      afterEach: async (knexOrTrx) => {
        await bookkeepingTable(knexOrTrx, ref).where({ name: ref.name }).del();
      },
    });
    const ran = ranMigrations(result);
    if (ran.length !== 1 || ran[0] !== ref.name) {
      throw new KnexMigrationError(
        ref.name,
        'down',
        ran.length === 0
          ? 'knex ran nothing'
          : `knex ran ${ran.join(', ')} instead of exactly this migration`,
      );
    }
  });
}

/**
 * Create knex's own tables where they do not exist yet, as knex does before
 * its first migration. Returns the tables created (qualified names), so that
 * a rollback can remove them again and leave exactly the state before the run.
 */
export async function ensureKnexTables(target: Target, ref: KnexMigrationRef): Promise<string[]> {
  const knex = await createKnex(target, {}, () => undefined);
  const schema = ref.schemaName ?? 'public';
  const names = [ref.tableName, `${ref.tableName}_lock`];
  const existing = async (): Promise<Set<string>> => {
    const found = new Set<string>();
    for (const name of names) {
      const res = await knex.raw<{ rows: { t: string | null }[] }>(
        'select to_regclass(?)::text as t',
        [`"${schema.replaceAll('"', '""')}"."${name.replaceAll('"', '""')}"`],
      );
      if (res.rows[0]?.t) found.add(`${schema}.${name}`);
    }
    return found;
  };
  try {
    const before = await existing();
    const { name, ...config } = migratorConfig(ref);
    await knex.migrate.list(config);
    return [...(await existing())].filter((t) => !before.has(t));
  } catch (cause) {
    throw new Error(
      `Cannot create knex's migrations table ${tableLabel(ref)}: ${causeMessage(cause)}`,
      {
        cause,
      },
    );
  } finally {
    await knex.destroy();
  }
}

/**
 * Free knex's own lock (`<table>_lock`), as `knex migrate:unlock` does. Only
 * called for a migration left in doubt by a crash, under lifeboat's run lock:
 * the process that took knex's lock is gone.
 */
export async function releaseKnexLock(target: Target, ref: KnexMigrationRef): Promise<void> {
  const knex = await createKnex(target, {}, () => undefined);
  try {
    const schema = ref.schemaName ? knex.schema.withSchema(ref.schemaName) : knex.schema;
    if (!(await schema.hasTable(`${ref.tableName}_lock`))) return;
    const { name, ...config } = migratorConfig(ref);
    await knex.migrate.forceFreeMigrationsLock(config);
  } finally {
    await knex.destroy();
  }
}

/** ensureKnexTables once for each knex table a runbook's steps use; the tables created. */
export async function ensureKnexTablesFor(
  target: Target,
  steps: readonly Step[],
): Promise<string[]> {
  const seen = new Set<string>();
  const created: string[] = [];
  for (const step of steps) {
    if (step.kind !== 'knex-migration') continue;
    const key = `${step.schemaName ?? ''}.${step.tableName}`;
    if (seen.has(key)) continue;
    seen.add(key);
    created.push(...(await ensureKnexTables(target, step)));
  }
  return created;
}

/** Whether knex's table lists the migration as applied; false when the table does not exist (yet). */
export async function isKnexMigrationApplied(
  target: Target,
  ref: Pick<KnexMigrationRef, 'name' | 'tableName' | 'schemaName'>,
  options: Pick<KnexRunOptions, 'timeouts'> = {},
): Promise<boolean> {
  const knex = await createKnex(target, options, () => undefined);
  try {
    const schema = ref.schemaName ? knex.schema.withSchema(ref.schemaName) : knex.schema;
    if (!(await schema.hasTable(ref.tableName))) return false;
    const found: unknown = await bookkeepingTable(knex, ref).where({ name: ref.name }).first('id');
    return found !== undefined;
  } catch (cause) {
    throw new Error(
      `Cannot read knex's migrations table ${tableLabel(ref)}: ${causeMessage(cause)}`,
      { cause },
    );
  } finally {
    await knex.destroy();
  }
}

// ---------------------------------------------------------------------------

function migratorConfig(ref: KnexMigrationRef): Knex.MigratorConfig {
  return {
    directory: ref.directory,
    tableName: ref.tableName,
    ...(ref.schemaName ? { schemaName: ref.schemaName } : {}),
    loadExtensions: ref.loadExtensions,
    name: ref.name,
  };
}

function bookkeepingTable(
  knex: Knex | Knex.Transaction,
  ref: Pick<KnexMigrationRef, 'tableName' | 'schemaName'>,
): Knex.QueryBuilder {
  return ref.schemaName ? knex(ref.tableName).withSchema(ref.schemaName) : knex(ref.tableName);
}

/** knex is loaded only when a runbook has knex steps: it costs start-up time otherwise. */
async function createKnex(
  target: Target,
  options: Pick<KnexRunOptions, 'timeouts'>,
  warn: (message: string) => void,
): Promise<Knex> {
  // Handed to pg as it is (knex's PgConnectionConfig type lags pg's ClientConfig).
  const connection: ClientConfig = { ...clientConfig(target) };
  const { lockTimeoutMs, statementTimeoutMs } = options.timeouts ?? {};
  if (lockTimeoutMs !== undefined) connection.lock_timeout = lockTimeoutMs;
  if (statementTimeoutMs !== undefined) connection.statement_timeout = statementTimeoutMs;
  const { default: knexFactory } = await import('knex');
  return knexFactory({
    client: 'pg',
    connection: connection as Knex.StaticConnectionConfig,
    // No idle connections kept open: each call creates its pool and destroys it.
    pool: { min: 0, max: 4 },
    log: {
      warn: (message: unknown) => warn(redact(String(message))),
      error: (message: unknown) => warn(redact(String(message))),
      deprecate: (message: unknown) => warn(redact(String(message))),
      debug: () => undefined,
    },
  });
}

async function withKnex(
  target: Target,
  ref: KnexMigrationRef,
  direction: KnexDirection,
  options: KnexRunOptions,
  fn: (knex: Knex) => Promise<void>,
): Promise<void> {
  const knex = await createKnex(target, options, (message) => {
    // knex warns "migration failed with error: ..." before rethrowing; the error says it better.
    if (
      /^migration (?:file ".*" )?failed|^Can't take lock|^If you are sure migrations/.test(message)
    )
      return;
    options.onWarning?.(message);
  });
  try {
    await fn(knex);
  } catch (cause) {
    if (cause instanceof KnexMigrationError) throw cause;
    throw explain(ref, direction, cause);
  } finally {
    await knex.destroy();
  }
}

/** knex's own failures, reworded to say what happened to this migration and what to do. */
function explain(ref: KnexMigrationRef, direction: KnexDirection, cause: unknown): Error {
  const message = causeMessage(cause);
  const sqlState = sqlStateOf(cause);
  let reason = message;
  if (/must have both an up and down function/.test(message)) {
    reason =
      direction === 'down'
        ? `it does not export a down function (knex requires both up and down), so knex cannot undo it; nothing was run and it stays listed in ${tableLabel(ref)}`
        : 'it does not export both an up and a down function, which knex requires; nothing was run';
  } else if (/^Migration ".*" not found\.$/.test(message)) {
    reason = `no such migration file in ${ref.directory} (with loadExtensions ${ref.loadExtensions.join(', ')})`;
  } else if (/^Migration ".*" was not run\.$/.test(message)) {
    reason = `knex does not list it as applied in ${tableLabel(ref)}; nothing was run`;
  } else if (isLockError(cause)) {
    reason = `knex's lock table ${lockTableLabel(ref)} says another knex migration is running; if none is, a crashed run left the lock behind and \`knex migrate:unlock\` releases it`;
  } else if (/The migration directory is corrupt/.test(message)) {
    reason = `${message} (knex lists them in ${tableLabel(ref)}); knex refuses to run any migration until they are back`;
  }
  return new KnexMigrationError(ref.name, direction, reason, {
    cause,
    ...(sqlState ? { sqlState } : {}),
  });
}

function isLockError(cause: unknown): boolean {
  return cause instanceof Error && cause.name === 'MigrationLocked';
}

function causeMessage(cause: unknown): string {
  const message = cause instanceof Error ? cause.message : String(cause);
  return redact(message);
}

function sqlStateOf(cause: unknown): string | undefined {
  if (typeof cause !== 'object' || cause === null || !('code' in cause)) return undefined;
  const code = cause.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** knex's migrate.up/down resolve to [batchNo, [names run]]. */
function ranMigrations(result: unknown): string[] {
  if (!Array.isArray(result)) return [];
  const log: unknown = result[1];
  return Array.isArray(log) ? log.map(String) : [];
}

function tableLabel(ref: Pick<KnexMigrationRef, 'tableName' | 'schemaName'>): string {
  return ref.schemaName ? `${ref.schemaName}.${ref.tableName}` : ref.tableName;
}

function lockTableLabel(ref: Pick<KnexMigrationRef, 'tableName' | 'schemaName'>): string {
  return tableLabel({ ...ref, tableName: `${ref.tableName}_lock` });
}
