import { stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Knex } from 'knex';
import type { ClientConfig } from 'pg';
import type { SqlRunner } from '../db.js';
import type { Step, Timeouts } from '../runbook/types.js';
import { redact } from '../secrets.js';
import { clientConfig, type Target } from '../target.js';
import { knexTableKey, tableLabel } from './knex-table.js';
import { registerTypeScriptLoader } from '../typescript-loader.js';

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
  /** knex runs it in a transaction (no `config = { transaction: false }`); absent in journals before this was stored. */
  transaction?: boolean;
}

export type KnexDirection = 'up' | 'down';

export interface KnexStepOptions {
  /** Session `lock_timeout` / `statement_timeout` for every connection knex opens. */
  timeouts?: Timeouts;
  /**
   * Called inside knex's transaction, after knex's row is written and before
   * it commits: what is written through `sql` commits with the migration, or
   * not at all. Not called when knex runs the migration without a transaction.
   */
  inside?: (sql: SqlRunner) => Promise<void>;
}

/** A knex migration that failed or could not be run; the message names it and its direction. */
export class KnexMigrationError extends Error {
  readonly migration: string;
  readonly direction: KnexDirection;
  /** SQLSTATE of the failing statement, when PostgreSQL raised the error. */
  readonly sqlState: string | undefined;
  /** Nothing of the migration ran (it could not be loaded, knex's lock was taken, knex refused). */
  readonly ranNothing: boolean;

  constructor(
    migration: string,
    direction: KnexDirection,
    reason: string,
    options: { cause?: unknown; sqlState?: string; ranNothing?: boolean } = {},
  ) {
    super(`knex migration ${migration} (${direction}) failed: ${reason}`, { cause: options.cause });
    this.name = 'KnexMigrationError';
    this.migration = migration;
    this.direction = direction;
    this.sqlState = options.sqlState;
    this.ranNothing = options.ranNothing ?? false;
  }
}

/** What a migration module exports, as knex reads it. */
interface MigrationModule {
  up?: unknown;
  down?: unknown;
}

type ImportFile = (file: string) => Promise<MigrationModule>;

/**
 * The knex migrations of one lifeboat run, through knex's own Migrator, so
 * the rows in knex's table, their batch and the lock table are what
 * `knex migrate:latest` would leave. One knex instance (one small pool) per
 * set of timeouts serves the whole run: creating a pool per migration cost
 * more than the migrations themselves.
 *
 * Every migration of a run goes into one knex batch (the batch knex gives the
 * run's first migration), so `knex migrate:rollback` afterwards undoes the run
 * as it would undo a `migrate:latest`.
 */
export class KnexSession {
  private readonly instances = new Map<string, Promise<Knex>>();
  /** The run's batch number in each knex table, once known. */
  private readonly batches = new Map<string, number>();
  /** What knex's sessions announce; a run names itself here before knex connects. */
  applicationName = 'lifeboat knex';

  constructor(
    private readonly target: Target,
    /** knex's own warnings (e.g. "migration X did not return a promise"), redacted. */
    private readonly onWarning: (message: string) => void = () => undefined,
  ) {}

  /** A run resumed after a stop keeps its batch: the batch of a migration it already applied. */
  useBatch(ref: Pick<KnexMigrationRef, 'tableName' | 'schemaName'>, batch: number): void {
    this.batches.set(knexTableKey(ref), batch);
  }

  /**
   * Load the migration file the way knex will (import or require, after the
   * project's TypeScript loader for `.ts`), so that a file that throws while
   * loading fails here, before anything ran or was recorded.
   */
  async load(ref: KnexMigrationRef, direction: KnexDirection = 'up'): Promise<MigrationModule> {
    const file = path.join(ref.directory, ref.name);
    if (!(await stat(file).catch(() => undefined))?.isFile()) {
      throw new KnexMigrationError(
        ref.name,
        direction,
        `no such migration file in ${ref.directory} (with loadExtensions ${ref.loadExtensions.join(', ')}); nothing was run`,
        { ranNothing: true },
      );
    }
    try {
      if (/\.[cm]?ts$/.test(ref.name)) await registerTypeScriptLoader(ref.directory);
      return await importFile()(file);
    } catch (cause) {
      throw new KnexMigrationError(
        ref.name,
        direction,
        `it cannot be loaded (${causeMessage(cause)}); nothing was run`,
        { cause, ranNothing: true },
      );
    }
  }

  /**
   * Run one migration's `up` (`migrate.up({ name })`). knex runs only the
   * named migration, even when earlier ones are pending (as knex itself would
   * run an out-of-order migration); the result is checked to be sure. As in
   * knex, it runs in a transaction together with its row and the lock, unless
   * it exports `config = { transaction: false }`; `options.inside` runs in
   * that transaction.
   *
   * Throws a `KnexMigrationError` when the migration fails (its transaction,
   * if any, rolled back and nothing recorded), when the directory has no such
   * file, or when knex already lists it as applied (then nothing was run).
   */
  async apply(ref: KnexMigrationRef, options: KnexStepOptions = {}): Promise<void> {
    await this.migrate(ref, 'up', options, async (knex) => {
      const key = knexTableKey(ref);
      const result: unknown = await knex.migrate.up({
        ...migratorConfig(ref),
        afterAll: async (knexOrTrx: Knex | Knex.Transaction) => {
          const rows = bookkeepingTable(knexOrTrx, ref).where({ name: ref.name });
          const batch = this.batches.get(key);
          if (batch === undefined) {
            const row: unknown = await rows.clone().first('batch');
            if (row) this.batches.set(key, (row as { batch: number }).batch);
          } else {
            await rows.clone().update({ batch });
          }
          if (isTransaction(knexOrTrx)) await options.inside?.(sqlIn(knexOrTrx));
        },
      });
      const ran = ranMigrations(result);
      if (ran.length === 0) {
        throw new KnexMigrationError(
          ref.name,
          'up',
          `knex already lists it as applied in ${tableLabel(ref)}; nothing was run`,
          { ranNothing: true },
        );
      }
      expectExactly(ref, 'up', ran);
    });
  }

  /**
   * Run one applied migration's `down` (`migrate.down({ name })`) and remove
   * its row, as `knex migrate:down --name` would. One deliberate difference
   * in timing, not in outcome: knex deletes the row after the migration's
   * transaction has committed, so a crash in between would leave the schema
   * undone but the migration still listed. Here the row is deleted inside that
   * transaction, with `options.inside`, so for a transactional migration all
   * of it happens or none. A migration with `config = { transaction: false }`
   * runs without a transaction, as in knex.
   *
   * Throws a `KnexMigrationError` when the migration has no `down` function
   * (nothing is run and its row stays), when knex does not list it, or when
   * `down` fails (its transaction, if any, rolled back and the row kept).
   */
  async undo(ref: KnexMigrationRef, options: KnexStepOptions = {}): Promise<void> {
    await this.migrate(ref, 'down', options, async (knex) => {
      const result: unknown = await knex.migrate.down({
        ...migratorConfig(ref),
        afterEach: async (knexOrTrx: Knex | Knex.Transaction) => {
          await bookkeepingTable(knexOrTrx, ref).where({ name: ref.name }).del();
          if (isTransaction(knexOrTrx)) await options.inside?.(sqlIn(knexOrTrx));
        },
      });
      expectExactly(ref, 'down', ranMigrations(result));
    });
  }

  /**
   * Run the `down` function of a migration whose `up` ran outside a
   * transaction and stopped part-way: knex never listed it, so knex's own
   * `migrate.down` refuses it. No bookkeeping to change; the `down` must cope
   * with a half-done `up` (the README says so).
   */
  async undoHalfDone(ref: KnexMigrationRef, options: KnexStepOptions = {}): Promise<void> {
    const loaded = await this.load(ref, 'down');
    if (typeof loaded.down !== 'function') {
      throw new KnexMigrationError(ref.name, 'down', 'it does not export a down function', {
        ranNothing: true,
      });
    }
    const down = loaded.down as (knex: Knex) => unknown;
    await this.migrate(ref, 'down', options, async (knex) => {
      await down(knex);
    });
  }

  /**
   * Write knex's row for a migration whose `up` ran outside a transaction and
   * ended, but was stopped before knex wrote the row (its verify query says it
   * took effect): the row knex would have written, in the run's batch.
   */
  async markApplied(ref: KnexMigrationRef): Promise<void> {
    const knex = await this.instance({});
    const key = knexTableKey(ref);
    const last = (await bookkeepingTable(knex, ref).max('batch as batch').first()) as
      { batch: number | null } | undefined;
    const batch = this.batches.get(key) ?? (last?.batch ?? 0) + 1;
    await bookkeepingTable(knex, ref).insert({
      name: ref.name,
      batch,
      migration_time: new Date(),
    });
    this.batches.set(key, batch);
  }

  /**
   * Create knex's own tables where they do not exist yet, as knex does before
   * its first migration. Returns the tables created (qualified names), so that
   * a rollback can remove them again and leave exactly the state before the run.
   * `beforeCreating` is told every table about to be created first: a crash in
   * between leaves them recorded, not forgotten.
   */
  async ensureTables(
    steps: readonly Step[],
    beforeCreating: (tables: string[]) => Promise<void> = () => Promise.resolve(),
  ): Promise<string[]> {
    // Without a knex migration, knex itself is never loaded.
    if (!steps.some((s) => s.kind === 'knex-migration')) return [];
    const seen = new Set<string>();
    const created: string[] = [];
    const missing: string[] = [];
    const knex = await this.instance({});
    for (const step of steps) {
      if (step.kind !== 'knex-migration' || seen.has(knexTableKey(step))) continue;
      seen.add(knexTableKey(step));
      const schema = step.schemaName ?? 'public';
      const names = [step.tableName, `${step.tableName}_lock`];
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
        missing.push(...names.map((n) => `${schema}.${n}`).filter((t) => !before.has(t)));
        await beforeCreating([...missing]);
        const { name, ...config } = migratorConfig(step);
        await knex.migrate.list(config);
        created.push(...[...(await existing())].filter((t) => !before.has(t)));
      } catch (cause) {
        throw new Error(
          `Cannot create knex's migrations table ${tableLabel(step)}: ${causeMessage(cause)}`,
          { cause },
        );
      }
    }
    return created;
  }

  /**
   * Free knex's own lock (`<table>_lock`), as `knex migrate:unlock` does, but
   * only when it is taken, and in place (knex deletes and re-inserts the row).
   * Only for a run that stopped (killed inside knex, between its lock and its
   * release) and is now continued under lifeboat's run lock.
   */
  async releaseLock(ref: Pick<KnexMigrationRef, 'tableName' | 'schemaName'>): Promise<void> {
    const knex = await this.instance({});
    const lock = { ...ref, tableName: `${ref.tableName}_lock` };
    const schema = ref.schemaName ? knex.schema.withSchema(ref.schemaName) : knex.schema;
    if (!(await schema.hasTable(lock.tableName))) return;
    await bookkeepingTable(knex, lock).where('is_locked', '<>', 0).update({ is_locked: 0 });
  }

  /** Closes every pool; the session cannot be used afterwards. */
  async close(): Promise<void> {
    const instances = [...this.instances.values()];
    this.instances.clear();
    for (const knex of instances) await (await knex.catch(() => undefined))?.destroy();
  }

  private async migrate(
    ref: KnexMigrationRef,
    direction: KnexDirection,
    options: KnexStepOptions,
    fn: (knex: Knex) => Promise<void>,
  ): Promise<void> {
    if (direction === 'up') await this.load(ref);
    try {
      await fn(await this.instance(options.timeouts ?? {}));
    } catch (cause) {
      if (cause instanceof KnexMigrationError) throw cause;
      throw explain(ref, direction, cause);
    }
  }

  /** knex is loaded only when a runbook has knex steps: it costs start-up time otherwise. */
  private instance(timeouts: Timeouts): Promise<Knex> {
    const key = `${timeouts.lockTimeoutMs ?? ''}/${timeouts.statementTimeoutMs ?? ''}`;
    let knex = this.instances.get(key);
    if (!knex) {
      knex = createKnex(this.target, this.applicationName, timeouts, (message) => {
        // knex warns "migration failed with error: ..." before rethrowing; the error says it better.
        if (
          /^migration (?:file ".*" )?failed|^Can't take lock|^If you are sure migrations/.test(
            message,
          )
        )
          return;
        this.onWarning(message);
      });
      this.instances.set(key, knex);
    }
    return knex;
  }
}

/** A session for `fn`, closed afterwards whatever happens. */
export async function withKnexSession<T>(
  target: Target,
  fn: (session: KnexSession) => Promise<T>,
  onWarning?: (message: string) => void,
): Promise<T> {
  const session = new KnexSession(target, onWarning);
  try {
    return await fn(session);
  } finally {
    await session.close();
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

function isTransaction(knex: Knex | Knex.Transaction): knex is Knex.Transaction {
  return (knex as { isTransaction?: boolean }).isTransaction === true;
}

/**
 * knex's transaction as a SqlRunner: `$n` parameters become knex's `?`
 * bindings, in the order they appear (a parameter may appear twice). Only for
 * lifeboat's own journal statements, which hold no `?` of their own.
 */
function sqlIn(trx: Knex.Transaction): SqlRunner {
  return {
    async query(text, values = []) {
      const bindings: unknown[] = [];
      const sql = text.replace(/\$(\d+)/g, (_, n: string) => {
        bindings.push(values[Number(n) - 1] ?? null);
        return '?';
      });
      const res = await trx.raw<{ rows: unknown[] }>(sql, bindings as Knex.RawBinding[]);
      return { rows: res.rows };
    },
  };
}

async function createKnex(
  target: Target,
  applicationName: string,
  timeouts: Timeouts,
  warn: (message: string) => void,
): Promise<Knex> {
  // Handed to pg as it is (knex's PgConnectionConfig type lags pg's ClientConfig).
  const connection: ClientConfig = { ...clientConfig(target, applicationName) };
  if (timeouts.lockTimeoutMs !== undefined) connection.lock_timeout = timeouts.lockTimeoutMs;
  if (timeouts.statementTimeoutMs !== undefined)
    connection.statement_timeout = timeouts.statementTimeoutMs;
  const { default: knexFactory } = await import('knex');
  return knexFactory({
    client: 'pg',
    connection: connection as Knex.StaticConnectionConfig,
    // Connections close when idle, so a long step of another kind holds none open.
    pool: { min: 0, max: 4, idleTimeoutMillis: 5_000 },
    log: {
      warn: (message: unknown) => warn(redact(String(message))),
      error: (message: unknown) => warn(redact(String(message))),
      deprecate: (message: unknown) => warn(redact(String(message))),
      debug: () => undefined,
    },
  });
}

/** knex's own loader (import for ESM scope and .mjs, require otherwise), so lifeboat loads a file as knex will. */
let knexImportFile: ImportFile | undefined;
function importFile(): ImportFile {
  knexImportFile ??= createRequire(import.meta.url)(
    'knex/lib/migrations/util/import-file',
  ) as ImportFile;
  return knexImportFile;
}

function expectExactly(ref: KnexMigrationRef, direction: KnexDirection, ran: string[]): void {
  // knex 3's up/down({ name }) runs exactly the named migration; anything else is a knex change to notice.
  if (ran.length !== 1 || ran[0] !== ref.name) {
    throw new KnexMigrationError(
      ref.name,
      direction,
      ran.length === 0
        ? 'knex ran nothing'
        : `knex ran ${ran.join(', ')} instead of exactly this migration`,
    );
  }
}

/** knex's own failures, reworded to say what happened to this migration and what to do. */
function explain(ref: KnexMigrationRef, direction: KnexDirection, cause: unknown): Error {
  const message = causeMessage(cause);
  const sqlState = sqlStateOf(cause);
  let reason = message;
  let ranNothing = true;
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
    reason = `knex's lock table ${tableLabel({ ...ref, tableName: `${ref.tableName}_lock` })} says another knex migration is running; if none is, a crashed run left the lock behind and \`knex migrate:unlock\` releases it`;
  } else if (/The migration directory is corrupt/.test(message)) {
    reason = `${message} (knex lists them in ${tableLabel(ref)}); knex refuses to run any migration until they are back`;
  } else {
    ranNothing = false;
  }
  return new KnexMigrationError(ref.name, direction, reason, {
    cause,
    ranNothing,
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
