import { execFile } from 'node:child_process';
import { access, readdir } from 'node:fs/promises';
import { constants } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ToolError } from '../errors.js';

const run = promisify(execFile);

/**
 * PostgreSQL's client and server programs, found on PATH, through
 * `pg_config --bindir`, or in Debian's /usr/lib/postgresql/<major>/bin.
 * An explicit directory (config `pgBinDir` or LIFEBOAT_PG_BINDIR) is the only
 * place looked at when given, so a user can pin a version.
 */
export interface PgTool {
  name: string;
  path: string;
  version: string;
  major: number;
}

export async function candidateDirs(explicitDir?: string): Promise<string[]> {
  const pinned = explicitDir ?? process.env.LIFEBOAT_PG_BINDIR;
  if (pinned) return [pinned];
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  try {
    const { stdout } = await run('pg_config', ['--bindir']);
    dirs.push(stdout.trim());
  } catch {
    // pg_config is optional.
  }
  try {
    const majors = (await readdir('/usr/lib/postgresql'))
      .filter((d) => /^\d+$/.test(d))
      .sort((a, b) => Number(b) - Number(a));
    for (const m of majors) dirs.push(`/usr/lib/postgresql/${m}/bin`);
  } catch {
    // Not a Debian layout.
  }
  return [...new Set(dirs)];
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function parseToolVersion(output: string): { version: string; major: number } | undefined {
  const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(output) ?? /\s(\d+)\.(\d+)/.exec(output);
  if (!m?.[1]) return undefined;
  return { version: `${m[1]}${m[2] ? `.${m[2]}` : ''}`, major: Number(m[1]) };
}

async function probe(name: string, file: string): Promise<PgTool | undefined> {
  if (!(await isExecutable(file))) return undefined;
  try {
    const { stdout } = await run(file, ['--version'], { timeout: 10_000 });
    const v = parseToolVersion(stdout);
    return v ? { name, path: file, ...v } : undefined;
  } catch {
    return undefined;
  }
}

/** Every distinct installation of `name`, newest first. */
export async function findTools(name: string, explicitDir?: string): Promise<PgTool[]> {
  const found: PgTool[] = [];
  for (const dir of await candidateDirs(explicitDir)) {
    const tool = await probe(name, path.join(dir, name));
    if (tool && !found.some((t) => t.version === tool.version)) found.push(tool);
  }
  return found.sort((a, b) => b.major - a.major);
}

/**
 * The tool to use against a server of `serverMajor`: the same major when
 * installed, else the newest newer one. An older pg_dump cannot dump a newer
 * server, so that is refused with what was found.
 */
export async function findTool(
  name: string,
  serverMajor: number | undefined,
  explicitDir?: string,
  /** pg_restore into a newer server: an older tool only replays its archive's SQL, which a newer server takes. */
  olderWorks = false,
): Promise<PgTool> {
  const tools = await findTools(name, explicitDir);
  const where = explicitDir ?? process.env.LIFEBOAT_PG_BINDIR;
  if (tools.length === 0 && where) {
    // A pinned directory is the only place looked at: say who pinned it.
    const setting =
      explicitDir !== undefined && explicitDir !== process.env.LIFEBOAT_PG_BINDIR
        ? 'pgBinDir in the config'
        : 'LIFEBOAT_PG_BINDIR';
    const exists = await access(where).then(
      () => true,
      () => false,
    );
    throw new ToolError(
      exists
        ? `${name} was not found in ${where}, the directory ${setting} names; point ${setting} at the directory holding pg_dump and pg_restore, or unset it to search PATH.`
        : `${setting} names ${where}, which does not exist; point it at the directory holding pg_dump and pg_restore, or unset it to search PATH.`,
    );
  }
  if (tools.length === 0) {
    throw new ToolError(
      `${name} was not found on PATH, through pg_config, or in /usr/lib/postgresql/*/bin; install the PostgreSQL client tools (Debian: apt-get install postgresql-client).`,
    );
  }
  if (serverMajor === undefined) return tools[0]!;
  const exact = tools.find((t) => t.major === serverMajor);
  if (exact) return exact;
  const newer = tools.filter((t) => t.major > serverMajor);
  if (newer.length > 0) return newer[newer.length - 1]!;
  if (olderWorks) return tools[0]!;
  throw new ToolError(olderThanServer(tools[0]!, serverMajor));
}

/**
 * Why an older tool is refused, and what to install: an older pg_dump cannot
 * read what a newer server holds (its catalogs, its new syntax), and the
 * pg_restore beside it could not read a newer pg_dump's archive.
 */
function olderThanServer(tool: PgTool, serverMajor: number): string {
  return (
    `${tool.name} ${tool.version} (${tool.path}) is older than the server (PostgreSQL ${serverMajor}), and ${tool.name} must never be older than the server it works with. ` +
    `Install the PostgreSQL ${serverMajor} client tools (Debian/Ubuntu: apt-get install postgresql-client-${serverMajor}, from apt.postgresql.org; elsewhere the same major's client package), ` +
    `and point pgBinDir in the config or LIFEBOAT_PG_BINDIR at their bin directory if they are not on PATH.`
  );
}
