import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { connect, quoteIdent, withClient } from '../db.js';
import { howFar, type Amount } from '../progress.js';
import { runPgTool } from './exec.js';
import { removeTree } from '../files.js';
import { dbnameArgument, type Target } from '../target.js';

/**
 * pg_restore of a directory archive into an existing, empty database, with
 * progress in rows. Verification restores without owners and privileges
 * (the roles may not exist on a scratch server); a real restore keeps them.
 *
 * With `own` (lifeboat's own connection to the database), the restore runs as
 * an unprivileged role (`into`), and lifeboat's connection creates the
 * extensions the archive names, between the schemas and everything else:
 * many extensions need a superuser to create, and only the server's installed
 * extension scripts run with those rights, never SQL from the archive.
 * Afterwards it resets any setting the restore put on the database (a
 * search_path, say), which lifeboat's own sessions there would otherwise get.
 */
export interface RestoreOptions {
  jobs: number;
  tables: number;
  /** Rows the archive holds (from the manifest): the whole of the progress bar. */
  rows: number;
  keepOwners: boolean;
  onProgress?: (detail: string, amount?: Amount) => void;
  signal?: AbortSignal;
  /** lifeboat's own connection to the database, when `into` is another, unprivileged role. */
  own?: Target;
  /** The database is dropped after it is proved (a scratch database): restore it fast, not safe. */
  disposable?: boolean;
}

/**
 * Settings of a restore's sessions into a database that is thrown away once
 * proved, which a real restore would not take: commits that do not wait for
 * the disk (a crash loses the scratch database, which is dropped anyway), and
 * more memory for each index build (per pg_restore job) than the 64 MB that
 * PostgreSQL gives one by default.
 */
export const DISPOSABLE_SETTINGS = '-c synchronous_commit=off -c maintenance_work_mem=256MB';

/**
 * Memory for each index build of a restore into a new database on another
 * server (restore --to, move): a restore's sessions only, and what a
 * database being brought up can spare; commits still wait for the disk.
 */
export const INDEX_BUILD_SETTINGS = '-c maintenance_work_mem=256MB';

export async function restoreArchive(
  pgRestore: string,
  dumpDir: string,
  into: Target,
  options: RestoreOptions,
): Promise<void> {
  let tables = 0;
  const onTable = (): void => void tables++;
  const watch = options.onProgress
    ? watchRows(into, options.rows, (detail, amount) =>
        options.onProgress!(
          `${detail} (${Math.min(tables, options.tables)}/${options.tables} tables)`,
          amount,
        ),
      )
    : undefined;
  try {
    await restorePasses(pgRestore, dumpDir, into, options, onTable);
  } finally {
    await watch?.stop();
  }
}

async function restorePasses(
  pgRestore: string,
  dumpDir: string,
  into: Target,
  options: RestoreOptions,
  onTable: () => void,
): Promise<void> {
  const own = options.own;
  if (!own || own.user === into.user) return runRestore(pgRestore, dumpDir, into, options, onTable);
  const work = await mkdtemp(path.join(os.tmpdir(), 'lifeboat-toc-'));
  try {
    const toc = await contents(pgRestore, dumpDir, into, work);
    const extensions = toc.filter((l) => ENTRY.extension.test(l));
    if (extensions.length === 0) await runRestore(pgRestore, dumpDir, into, options, onTable);
    else {
      const schemas = toc.filter((l) => ENTRY.schema.test(l));
      const rest = toc.filter((l) => !Object.values(ENTRY).some((entry) => entry.test(l)));
      const list = (name: string, lines: string[]): Promise<string> => listFile(work, name, lines);
      if (schemas.length > 0)
        await runRestore(
          pgRestore,
          dumpDir,
          into,
          { ...options, jobs: 1 },
          onTable,
          await list('schemas', schemas),
        );
      const named = await extensionsOf(
        pgRestore,
        dumpDir,
        into,
        await list('extensions', extensions),
      );
      await createExtensions(named, own, into.user);
      await runRestore(pgRestore, dumpDir, into, options, onTable, await list('rest', rest));
    }
    await withClient(own, (admin) =>
      admin.query(`alter database ${quoteIdent(own.database)} reset all`),
    );
  } finally {
    await removeTree(work);
  }
}

/** Archive entries by kind, as `pg_restore --list` writes them: `<id>; <oid> <oid> <kind> ...`. */
const ENTRY = {
  schema: /^\d+; \d+ \d+ SCHEMA - /,
  extension: /^\d+; \d+ \d+ EXTENSION - /,
  // A comment on an extension may only be set by its owner; comments are not compared.
  extensionComment: /^\d+; \d+ \d+ COMMENT - EXTENSION /,
};

async function runRestore(
  pgRestore: string,
  dumpDir: string,
  into: Target,
  options: RestoreOptions,
  onTable: () => void,
  list?: string,
): Promise<void> {
  const session = options.disposable
    ? { ...into, options: [into.options, DISPOSABLE_SETTINGS].filter(Boolean).join(' ') }
    : into;
  const result = await runPgTool(
    pgRestore,
    [
      '--exit-on-error',
      `--jobs=${options.jobs}`,
      ...(options.keepOwners ? [] : ['--no-owner', '--no-privileges']),
      // A subscription would start replicating into the copy; a publication is the source's business.
      '--no-subscriptions',
      '--no-publications',
      '--verbose',
      '--no-password',
      ...(list ? [`--use-list=${list}`] : []),
      dbnameArgument(into.database),
      dumpDir,
    ],
    session,
    (line) => {
      if (/processing data for table|launching item \d+ TABLE DATA/.test(line)) onTable();
    },
    options.signal,
  );
  if (!result.ok) {
    throw new Error(
      `pg_restore exited with ${result.exitCode ?? result.signal}: ${result.errorLines.slice(-3).join(' | ') || 'no message'}`,
    );
  }
}

/** The archive's table of contents, one entry a line, in restore order. */
async function contents(
  pgRestore: string,
  dumpDir: string,
  into: Target,
  work: string,
): Promise<string[]> {
  const file = path.join(work, 'toc.list');
  await tool(pgRestore, ['--list', `--file=${file}`, dumpDir], into, 'list the archive');
  return (await readFile(file, 'utf8')).split('\n').filter((l) => /^\d+;/.test(l));
}

async function listFile(work: string, name: string, lines: string[]): Promise<string> {
  const file = path.join(work, `${name}.list`);
  await writeFile(file, `${lines.join('\n')}\n`);
  return file;
}

/**
 * Each extension's name and schema, read from the SQL pg_restore writes for
 * those entries (written to a file, never run): the statements lifeboat runs
 * are its own, with both names quoted.
 */
async function extensionsOf(
  pgRestore: string,
  dumpDir: string,
  into: Target,
  list: string,
): Promise<{ name: string; schema: string }[]> {
  const file = `${list}.sql`;
  await tool(
    pgRestore,
    [`--use-list=${list}`, `--file=${file}`, dumpDir],
    into,
    'read its extensions',
  );
  const ident = String.raw`("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)`;
  const statement = new RegExp(
    `^CREATE EXTENSION IF NOT EXISTS ${ident} WITH SCHEMA ${ident};$`,
    'gm',
  );
  const unquote = (id: string): string =>
    id.startsWith('"') ? id.slice(1, -1).replaceAll('""', '"') : id;
  return [...(await readFile(file, 'utf8')).matchAll(statement)].map((m) => ({
    name: unquote(m[1]!),
    schema: unquote(m[2]!),
  }));
}

/**
 * Create the extensions as lifeboat's own role, in dependency order, and let
 * the restoring role fill their configuration tables (pg_dump dumps the rows
 * a user added to them).
 */
async function createExtensions(
  extensions: { name: string; schema: string }[],
  by: Target,
  restorer: string,
): Promise<void> {
  await withClient(by, async (admin) => {
    for (const e of extensions)
      await admin.query(
        `create extension if not exists ${quoteIdent(e.name)} with schema ${quoteIdent(e.schema)}`,
      );
    const config = await admin.query<{ name: string }>(
      `select c.oid::pg_catalog.regclass::text as name
         from pg_catalog.pg_extension e, pg_catalog.unnest(e.extconfig) as c(oid)`,
    );
    for (const { name } of config.rows)
      await admin.query(`grant all on table ${name} to ${quoteIdent(restorer)}`);
  });
}

async function tool(file: string, args: string[], target: Target, what: string): Promise<void> {
  const result = await runPgTool(file, args, target);
  if (!result.ok)
    throw new Error(
      `pg_restore could not ${what}: ${result.errorLines.slice(-3).join(' | ') || `exit ${result.exitCode ?? result.signal}`}`,
    );
}

const POLL_MS = 1000;

/**
 * Rows restored so far, read once a second from the server on a session of
 * its own: the rows of tables whose COPY has committed (the statistics) and
 * of those still copying (pg_stat_progress_copy, PostgreSQL 14+). One small
 * query a second: restoring 3 million rows (384 MB) took 10.7 s on average
 * with it and 10.9 s without (5 runs each, alternating, on a loaded 2-core
 * machine), a difference lost in the noise.
 */
function watchRows(
  into: Target,
  total: number,
  report: (detail: string, amount?: Amount) => void,
): { stop(): Promise<void> } {
  const started = Date.now();
  let client: pg.Client | undefined;
  let best = 0;
  let copyView = true;
  const poll = async (): Promise<void> => {
    client ??= await connect(into, 'lifeboat restore progress');
    const copying = copyView
      ? `(select coalesce(sum(tuples_processed), 0) from pg_stat_progress_copy where datid = (select oid from pg_database where datname = current_database()))`
      : '0';
    const res = await client
      .query<{ rows: string }>(
        `select (coalesce((select sum(n_tup_ins) from pg_stat_user_tables), 0) + ${copying})::text as rows`,
      )
      .catch((err: unknown) => {
        if (!copyView) throw err;
        copyView = false; // PostgreSQL 13 has no pg_stat_progress_copy
        return undefined;
      });
    if (!res) return;
    best = Math.max(best, Math.min(Number(res.rows[0]!.rows), total));
    if (total > 0 && best >= total) report('every row restored; building indexes and constraints');
    else report(...howFar(best, total, Date.now() - started, count, 'rows restored'));
  };
  let busy: Promise<void> | undefined;
  const timer = setInterval(() => {
    // Progress is worth a try, never a failure of the restore.
    busy ??= poll()
      .catch(() => undefined)
      .finally(() => (busy = undefined));
  }, POLL_MS);
  return {
    async stop() {
      clearInterval(timer);
      await busy;
      await client?.end().catch(() => undefined);
    },
  };
}

function count(n: number): string {
  if (n < 10_000) return String(n);
  if (n < 1_000_000) return `${(n / 1000).toFixed(n < 100_000 ? 1 : 0)}k`;
  return `${(n / 1_000_000).toFixed(1)}M`;
}
