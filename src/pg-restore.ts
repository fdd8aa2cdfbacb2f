import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { quoteIdent, withClient } from './db.js';
import { runPgTool } from './run-tool.js';
import { removeTree } from './storage/files.js';
import { dbnameArgument, type Target } from './target.js';

/**
 * pg_restore of a directory archive into an existing, empty database, with
 * progress in tables. Verification restores without owners and privileges
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
  keepOwners: boolean;
  onProgress?: (detail: string) => void;
  /** lifeboat's own connection to the database, when `into` is another, unprivileged role. */
  own?: Target;
}

export async function restoreArchive(
  pgRestore: string,
  dumpDir: string,
  into: Target,
  options: RestoreOptions,
): Promise<void> {
  const own = options.own;
  if (!own || own.user === into.user) return runRestore(pgRestore, dumpDir, into, options);
  const work = await mkdtemp(path.join(os.tmpdir(), 'lifeboat-toc-'));
  try {
    const toc = await contents(pgRestore, dumpDir, into, work);
    const extensions = toc.filter((l) => ENTRY.extension.test(l));
    if (extensions.length === 0) await runRestore(pgRestore, dumpDir, into, options);
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
          await list('schemas', schemas),
        );
      const named = await extensionsOf(
        pgRestore,
        dumpDir,
        into,
        await list('extensions', extensions),
      );
      await createExtensions(named, own, into.user);
      await runRestore(pgRestore, dumpDir, into, options, await list('rest', rest));
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
  list?: string,
): Promise<void> {
  let restored = 0;
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
    into,
    (line) => {
      if (/processing data for table|launching item \d+ TABLE DATA/.test(line)) {
        restored++;
        options.onProgress?.(`${Math.min(restored, options.tables)}/${options.tables} tables`);
      }
    },
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
