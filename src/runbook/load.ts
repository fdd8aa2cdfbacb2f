import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ParsedKnexStep, ParsedRunbook, Problem, Runbook } from './types.js';
import { parseRunbook } from './parse.js';
import { resolveRunbook, type KnexMigrationFile } from './resolve.js';
import { orderKnexMigrations } from './knex-order.js';
import { isInside } from './relative-path.js';
import { RunbookError } from './errors.js';
import type { ModuleContext } from './knex-inspection.js';
import { findTypeScriptLoader } from '../typescript-loader.js';

/**
 * Read, validate and resolve a runbook: the I/O edge around the pure
 * parseRunbook and resolveRunbook. Throws RunbookError listing every problem.
 */
export async function loadRunbook(file: string): Promise<Runbook> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    const problem = {
      file,
      line: 1,
      column: 1,
      message: `cannot read the runbook (${reason(cause)})`,
    };
    throw new RunbookError(file, [problem], { cause });
  }
  const parsed = parseRunbook(text, file);
  if (parsed.runbook === undefined) throw new RunbookError(file, parsed.problems);

  const directory = await realpath(path.dirname(path.resolve(file)));
  const problems: Problem[] = [];
  const files = await readReferencedFiles(parsed.runbook, directory, problems);
  const knexMigrations = new Map<string, KnexMigrationFile[]>();
  for (const step of parsed.runbook.steps) {
    if (step.kind === 'knex')
      knexMigrations.set(step.id, await readKnexMigrations(step, directory, problems));
  }
  if (problems.length > 0) throw new RunbookError(file, problems);

  const resolved = resolveRunbook(parsed.runbook, { directory, files, knexMigrations });
  if (resolved.runbook === undefined) throw new RunbookError(file, resolved.problems);
  return resolved.runbook;
}

async function readReferencedFiles(
  runbook: ParsedRunbook,
  directory: string,
  problems: Problem[],
): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const step of runbook.steps) {
    if (step.kind !== 'sql') continue;
    for (const source of [step.up, step.down]) {
      if (source?.from !== 'file' || files.has(source.path)) continue;
      const read = await readInside(directory, source.path);
      if (read.problem === undefined) files.set(source.path, read.text);
      else problems.push({ ...source.at, message: read.problem });
    }
  }
  return files;
}

/**
 * Read a file that must stay inside `root` (absolute, real). The path string
 * was checked when parsing; realpath catches a symlink that points out.
 */
async function readInside(
  root: string,
  relative: string,
): Promise<{ text: string; problem?: undefined } | { problem: string }> {
  const real = await realInside(root, relative);
  if (real.problem !== undefined) return real;
  try {
    if (!(await stat(real.path)).isFile()) return { problem: `${relative} is not a file` };
    return { text: await readFile(real.path, 'utf8') };
  } catch (cause) {
    return { problem: `cannot read ${relative} (${reason(cause)})` };
  }
}

async function realInside(
  root: string,
  relative: string,
): Promise<{ path: string; problem?: undefined } | { problem: string }> {
  let real: string;
  try {
    real = await realpath(path.resolve(root, relative));
  } catch (cause) {
    return { problem: `cannot find ${relative} (${reason(cause)})` };
  }
  if (!isInside(root, real)) {
    return { problem: `${relative} resolves to ${real}, outside the runbook's directory` };
  }
  return { path: real };
}

async function readKnexMigrations(
  step: ParsedKnexStep,
  root: string,
  problems: Problem[],
): Promise<KnexMigrationFile[]> {
  const dir = await realInside(root, step.directory);
  if (dir.problem !== undefined) {
    problems.push({ ...step.directoryAt, message: dir.problem });
    return [];
  }
  let entries;
  try {
    entries = await readdir(dir.path, { withFileTypes: true });
  } catch (cause) {
    problems.push({
      ...step.directoryAt,
      message: `cannot list ${step.directory} (${reason(cause)})`,
    });
    return [];
  }
  const names = entries.filter((e) => e.isFile() || e.isSymbolicLink()).map((e) => e.name);
  const context = await moduleContext(dir.path);
  const migrations: KnexMigrationFile[] = [];
  for (const name of orderKnexMigrations(names, step.loadExtensions)) {
    const relative = path.join(step.directory, name);
    const read = await readInside(root, relative);
    if (read.problem !== undefined) problems.push({ ...step.directoryAt, message: read.problem });
    else migrations.push({ name, file: path.join(dir.path, name), text: read.text, context });
  }
  return migrations;
}

/**
 * How knex would load the directory's files: it imports those in an ESM scope
 * and requires the others, deciding the scope as Node does (the nearest
 * package.json's "type"; inside node_modules, CommonJS), with the project's
 * TypeScript loader for `.ts`. Only reads files; runs nothing.
 */
async function moduleContext(directory: string): Promise<ModuleContext> {
  const context: ModuleContext = {
    scope: 'commonjs',
    requireLoadsEsm: (process.features as { require_module?: boolean }).require_module === true,
  };
  const loader = findTypeScriptLoader(directory);
  if (loader) context.typescriptLoader = loader;
  if (directory.split(path.sep).includes('node_modules')) return context;
  for (let dir = directory; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    const text = await readFile(file, 'utf8').catch(() => undefined);
    if (text !== undefined) {
      try {
        const type: unknown = (JSON.parse(text) as { type?: unknown }).type;
        context.scope = type === 'module' ? 'module' : 'commonjs';
        context.scopeFile = file;
        return context;
      } catch {
        // As Node's resolver (and knex's get-package-type) do: an unreadable package.json is passed over.
      }
    }
    if (path.dirname(dir) === dir) return context;
  }
}

function reason(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : err instanceof Error ? err.message : String(err);
}
