import { lstat, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CONFIG_NAMES } from './config.js';
import { BadInputError } from './errors.js';
import { DEFAULT_KNEX_EXTENSIONS, DEFAULT_KNEX_TABLE } from './runbook/parsed-runbook.js';
import { relativePathProblem } from './runbook/relative-path.js';

/**
 * `lifeboat init`: a commented config and a first runbook for the project in
 * a directory. Planning reads the directory (and a knexfile's text, never
 * running it); writing refuses to overwrite anything, checking every target
 * before the first byte is written.
 */
export const CONFIG_FILE = 'lifeboat.config.yaml';
/** Where the runbook goes when it runs knex migrations: a runbook may only name files below its own directory. */
export const KNEX_RUNBOOK_FILE = 'lifeboat.upgrade.yaml';
export const KNEXFILE_NAMES = ['knexfile.js', 'knexfile.cjs', 'knexfile.mjs', 'knexfile.ts'];

/** Extensions knex can load: its defaults, and .mjs for ESM projects that name it. */
const KNOWN_EXTENSIONS = [...DEFAULT_KNEX_EXTENSIONS, '.mjs'];

export interface KnexDirectory {
  /** Relative to the project directory, with forward slashes. */
  directory: string;
  loadExtensions: string[];
  migrations: number;
}

export interface KnexSetup {
  knexfile: string;
  /** Directories the runbook runs, in order. */
  directories: KnexDirectory[];
  tableName: string;
  schemaName: string | undefined;
  /** Why a directory was left out, or what to watch for. */
  notes: string[];
}

export interface InitFile {
  /** Relative to the project directory. */
  path: string;
  kind: 'config' | 'runbook';
  text: string;
}

export interface InitPlan {
  cwd: string;
  files: InitFile[];
  runbook: string;
  knex: KnexSetup | undefined;
  notes: string[];
}

/** What `lifeboat init` would write in `cwd`, or BadInputError naming every file in the way. */
export async function planInit(cwd: string): Promise<InitPlan> {
  const notes: string[] = [];
  const knex = await detectKnex(cwd);
  const usable = knex && knex.directories.length > 0;
  const runbookFile = usable
    ? KNEX_RUNBOOK_FILE
    : (await isDirectory(path.join(cwd, 'runbooks')))
      ? 'lifeboat/upgrade.yaml'
      : 'runbooks/upgrade.yaml';
  if (knex && !usable) {
    notes.push(
      `Found ${knex.knexfile} but no migrations lifeboat can run; wrote an example runbook instead (its knex step is commented out).`,
    );
  }
  const files: InitFile[] = [
    { path: CONFIG_FILE, kind: 'config', text: configText() },
    {
      path: runbookFile,
      kind: 'runbook',
      text: usable ? knexRunbookText(knex) : exampleRunbookText(knex),
    },
  ];
  const inTheWay: string[] = [];
  for (const name of new Set([...CONFIG_NAMES, ...files.map((f) => f.path)])) {
    if (await exists(path.join(cwd, name))) inTheWay.push(name);
  }
  if (inTheWay.length > 0) {
    throw new BadInputError(
      `lifeboat init never overwrites a file, and ${inTheWay.join(', ')} already exist${inTheWay.length === 1 ? 's' : ''} in ${cwd}; nothing was written.`,
      {
        details: [
          'Move the file(s) aside and run `lifeboat init` again, or edit them by hand (see `lifeboat init --help`).',
        ],
      },
    );
  }
  return { cwd, files, runbook: runbookFile, knex, notes };
}

/**
 * Write every planned file, each created exclusively (`wx`): a file that
 * appeared since planning stops the write, and what this call already wrote
 * is removed again, so either every file is written or none.
 */
export async function writeInit(plan: InitPlan): Promise<void> {
  const written: string[] = [];
  try {
    for (const file of plan.files) {
      const full = path.join(plan.cwd, file.path);
      await mkdir(path.dirname(full), { recursive: true });
      await writeFile(full, file.text, { flag: 'wx' });
      written.push(full);
    }
  } catch (cause) {
    for (const full of written) await rm(full, { force: true });
    if ((cause as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new BadInputError(
        `lifeboat init never overwrites a file, and ${(cause as NodeJS.ErrnoException).path ?? 'a file'} appeared while it ran; nothing was written.`,
        { cause },
      );
    }
    throw cause;
  }
}

/** The knex setup of the project in `cwd`, read from the knexfile's text, or undefined without a knexfile. */
export async function detectKnex(cwd: string): Promise<KnexSetup | undefined> {
  const found: string[] = [];
  for (const name of KNEXFILE_NAMES) if (await exists(path.join(cwd, name))) found.push(name);
  const knexfile = found[0];
  if (!knexfile) return undefined;
  const settings = knexSettingsFromText(await readFile(path.join(cwd, knexfile), 'utf8'));
  const notes: string[] = [];
  if (found.length > 1) notes.push(`Several knexfiles (${found.join(', ')}); read ${knexfile}.`);
  notes.push(...settings.notes);
  const directories: KnexDirectory[] = [];
  for (const raw of settings.directories) {
    const problem = relativePathProblem(raw);
    if (problem !== undefined) {
      notes.push(
        `The migrations directory ${raw} is outside the project directory, so a runbook here cannot name it (${problem}).`,
      );
      continue;
    }
    const directory = normalizeDirectory(raw);
    const names = await readdir(path.join(cwd, directory)).catch(() => undefined);
    if (!names) {
      notes.push(`The migrations directory ${directory} named by ${knexfile} does not exist.`);
      continue;
    }
    const wanted = settings.loadExtensions ?? KNOWN_EXTENSIONS;
    const present = new Set(
      names.map((n) => path.extname(n)).filter((extension) => wanted.includes(extension)),
    );
    const loadExtensions = settings.loadExtensions ?? wanted.filter((e) => present.has(e));
    const migrations = names.filter((n) => loadExtensions.includes(path.extname(n))).length;
    if (migrations === 0) {
      notes.push(
        `${directory} holds no migration files${settings.loadExtensions ? ` (${settings.loadExtensions.join(', ')})` : ''} yet.`,
      );
      continue;
    }
    if (loadExtensions.includes('.ts')) {
      notes.push(
        `${directory} holds .ts migrations: lifeboat loads them with the project's TypeScript loader (tsx, or ts-node for CommonJS), as knex does; \`lifeboat plan\` says so if none is installed.`,
      );
    }
    directories.push({ directory, loadExtensions, migrations });
  }
  if (directories.length > 1) {
    notes.push(
      'knex orders the migrations of several directories together by file name; the runbook runs them directory by directory. Check that this order is the same.',
    );
  }
  return {
    knexfile,
    directories,
    tableName: settings.tableName ?? DEFAULT_KNEX_TABLE,
    schemaName: settings.schemaName,
    notes,
  };
}

export interface KnexfileSettings {
  /** As written in the knexfile (relative to it), in order, without duplicates. */
  directories: string[];
  tableName: string | undefined;
  schemaName: string | undefined;
  loadExtensions: string[] | undefined;
  notes: string[];
}

/**
 * The migrations settings a knexfile writes literally. Pure: the text is read,
 * never run. A `directory:` inside a `seeds: {…}` block is not a migrations
 * directory; one in a `migrations: {…}` block is preferred to any other.
 */
export function knexSettingsFromText(source: string): KnexfileSettings {
  const text = withoutComments(source);
  const blocks = objectBlocks(text);
  const notes: string[] = [];
  const migrationBlocks = blocks.filter((b) => b.label === 'migrations');
  const otherBlocks = blocks.filter(
    (b) => b.label !== 'seeds' && b.label !== 'migrations' && /\bdirectory\s*:/.test(b.body),
  );
  const chosen = migrationBlocks.some((b) => /\bdirectory\s*:/.test(b.body))
    ? migrationBlocks
    : otherBlocks.length > 0
      ? otherBlocks
      : migrationBlocks;
  const directories: string[] = [];
  let tableName: string | undefined;
  let schemaName: string | undefined;
  let loadExtensions: string[] | undefined;
  for (const block of chosen) {
    const own = ownText(block, blocks);
    const dir = directoryValue(own);
    if (dir === 'unreadable') {
      const written = /\bdirectory\s*:\s*([^,\n}]*)/.exec(own)?.[1]?.trim() ?? '';
      notes.push(`Could not read the migrations directory from "directory: ${written}".`);
    } else if (dir) {
      for (const d of dir.map(normalizeDirectory))
        if (!directories.includes(d)) directories.push(d);
    }
    tableName ??= stringValue(own, 'tableName');
    schemaName ??= stringValue(own, 'schemaName');
    loadExtensions ??= arrayValue(own, 'loadExtensions');
  }
  if (directories.length === 0 && !notes.some((n) => n.startsWith('Could not'))) {
    directories.push('migrations'); // knex's default
  }
  return { directories, tableName, schemaName, loadExtensions, notes };
}

/** `./db/migrations/` and `db/migrations` are one directory. */
function normalizeDirectory(raw: string): string {
  return path.posix.normalize(raw.replaceAll('\\', '/')).replace(/(.)\/+$/, '$1');
}

interface Block {
  start: number;
  end: number;
  label: string | undefined;
  body: string;
}

/** Every `{…}` of the text with the key or name it is assigned to (`migrations: {`, `const x = {`). */
function objectBlocks(text: string): Block[] {
  const blocks: Block[] = [];
  const open: number[] = [];
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'" || c === '`') quote = c;
    else if (c === '{') open.push(i);
    else if (c === '}' && open.length > 0) {
      const start = open.pop()!;
      const label = /([A-Za-z_$][\w$]*)['"]?\s*[:=]\s*$/.exec(text.slice(0, start))?.[1];
      blocks.push({ start, end: i, label, body: text.slice(start + 1, i) });
    }
  }
  return blocks.sort((a, b) => a.start - b.start);
}

/** A block's text without the blocks nested in it (so a nested seeds block does not count). */
function ownText(block: Block, all: Block[]): string {
  let text = '';
  let at = block.start + 1;
  for (const inner of all) {
    if (inner.start <= block.start || inner.end >= block.end || inner.start < at) continue;
    text += block.body.slice(at - block.start - 1, inner.start - block.start - 1);
    text += '{}';
    at = inner.end + 1;
  }
  return text + block.body.slice(at - block.start - 1);
}

const STRING = String.raw`(?:'([^'\\]*)'|"([^"\\]*)"|\x60([^\x60\\$]*)\x60)`;

function literal(m: RegExpExecArray, from = 1): string {
  return m[from] ?? m[from + 1] ?? m[from + 2] ?? '';
}

function stringValue(text: string, key: string): string | undefined {
  const m = new RegExp(String.raw`\b${key}\s*:\s*${STRING}`).exec(text);
  return m ? literal(m) : undefined;
}

function stringsIn(text: string): string[] {
  return [...text.matchAll(new RegExp(STRING, 'g'))].map((m) => literal(m));
}

function arrayValue(text: string, key: string): string[] | undefined {
  const m = new RegExp(String.raw`\b${key}\s*:\s*\[([^\]]*)\]`).exec(text);
  return m ? stringsIn(m[1]!) : undefined;
}

/** `directory:` as a string, an array of strings, or path.join/resolve(__dirname, '…'). */
function directoryValue(text: string): string[] | 'unreadable' | undefined {
  const at = /\bdirectory\s*:\s*/.exec(text);
  if (!at) return undefined;
  const rest = text.slice(at.index + at[0].length);
  const single = new RegExp(String.raw`^${STRING}\s*(?:[,}\n]|$)`).exec(rest);
  if (single) return [literal(single)];
  const list = /^\[([^\]]*)\]/.exec(rest);
  if (list) return stringsIn(list[1]!);
  const joined =
    /^(?:path\.)?(?:join|resolve)\(\s*(?:__dirname|import\.meta\.dirname|process\.cwd\(\))\s*,([^)]*)\)/.exec(
      rest,
    );
  if (joined) {
    const parts = stringsIn(joined[1]!);
    if (parts.length > 0) return [path.posix.join(...parts)];
  }
  return 'unreadable';
}

/** The text with `//` and `/* *\/` comments blanked out (strings left alone). */
function withoutComments(text: string): string {
  let out = '';
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      out += c;
      if (c === '\\') out += text[++i] ?? '';
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'" || c === '`') {
      quote = c;
      out += c;
    } else if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
      out += '\n';
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end === -1 ? text.length : end + 1;
      out += ' ';
    } else out += c;
  }
  return out;
}

/** The commented configuration: every key with what it does (all valid per src/config.ts). */
export function configText(): string {
  return `# lifeboat configuration, written by \`lifeboat init\`.
# Every key is optional; lifeboat finds this file upward from the current
# directory (or take another with --config FILE). Durations are written as
# people write them (90s, 15m, 1h, 7d). All problems are reported together.

# The database to upgrade is best given in the environment, so no password
# lands in git: DATABASE_URL=postgres://app@db.internal:5432/shop (or the libpq
# PGHOST, PGUSER, PGDATABASE, PGPASSWORD variables; --database-url wins over both).
# databaseUrl: postgres://app@localhost:5432/app

# Where backups are kept. A relative path is relative to this file; keep
# .lifeboat/ out of git. Add a second destination on another disk or host
# (a mounted NAS, another machine): one copy is no backup strategy.
destinations:
  - name: local
    path: .lifeboat/backups
  # - name: nas
  #   path: /mnt/nas/lifeboat
  # Off-site, in any S3-compatible store (credentials from the AWS environment
  # or profile), encrypted with age to one or more keys (age-keygen -y key.txt):
  # - name: offsite
  #   url: s3://my-bucket/lifeboat
  #   region: eu-central-1
  #   encrypt:
  #     recipients: [age1...]

# What \`run\` and \`gate\` demand before anything changes: a backup of this
# database, verified by restoring it, at most maxAge old and held intact in
# at least \`copies\` destinations (copies cannot exceed the destinations above).
# A runbook's own policy overrides this one.
policy:
  maxAge: 24h
  copies: 1
  # requireOffsite: true  # one intact copy must be in an s3:// destination

# Parallel pg_dump / pg_restore jobs.
jobs: 2

# Where verification restores its scratch copy (default: the target's own
# server). A separate server keeps the load off production; the role needs
# CREATEDB there.
# scratchUrl: postgres://verify@scratch-host:5432/postgres

# Who restores scratch copies. By default, connected as a superuser, lifeboat
# creates a role with no rights for each restore, so code a table owner left in
# a backup runs with none. Name one here (its password in
# LIFEBOAT_RESTORE_PASSWORD) if the backups hold objects only it may create.
# restoreRole: lifeboat_restorer

# The directory of pg_dump and pg_restore when they are not on PATH (or set
# LIFEBOAT_PG_BINDIR). They must not be older than the server.
# pgBinDir: /usr/lib/postgresql/17/bin

# \`lifeboat backups prune\` keeps this many verified backups in each destination
# (a destination's own \`keep\` overrides it), never the newest verified one, nor
# what an unfinished run depends on.
retention:
  keep: 7
`;
}

const RUNBOOK_HEADER = `# A lifeboat runbook, written by \`lifeboat init\`. The format is described in
# lifeboat's runbooks/README.md. Review it before anything runs:
#   npx lifeboat plan RUNBOOK --offline   # pending steps, how each is undone, risks
#   npx lifeboat run RUNBOOK              # guard (a fresh, verified backup), steps, rollback on failure
name: upgrade
description: The upgrade lifeboat applies step by step, each with a checkpoint.

# What the guard demands of the backup before the first step (overrides the config's policy).
policy:
  maxAge: 24h
  copies: 1

# Give up on a lock after 5 seconds rather than queue every query behind this
# step's lock; a failed step is rolled back.
defaults:
  lockTimeout: 5s
  statementTimeout: 15m
`;

function knexRunbookText(knex: KnexSetup): string {
  const ids = new Set<string>();
  const steps = knex.directories.map((d) => {
    let id = d.directory
      .toLowerCase()
      .replace(/[^a-z0-9_-]+/g, '-')
      .replace(/^-+|-+$/g, '');
    if (!/^[a-z0-9]/.test(id)) id = 'migrations';
    for (let n = 2; ids.has(id); n++) id = `${id.replace(/-\d+$/, '')}-${n}`;
    ids.add(id);
    return [
      `  - id: ${id}`,
      `    knex:`,
      `      directory: ${yamlString(d.directory)}`,
      `      tableName: ${yamlString(knex.tableName)}`,
      ...(knex.schemaName ? [`      schemaName: ${yamlString(knex.schemaName)}`] : []),
      `      loadExtensions: [${d.loadExtensions.join(', ')}]`,
    ].join('\n');
  });
  return `${RUNBOOK_HEADER}
# Your knex migrations (found through ${knex.knexfile}), one step per migration
# file, each run through knex so its ${knex.tableName} table stays right.
# tableName, schemaName and loadExtensions must match ${knex.knexfile}, or knex
# and lifeboat disagree about what is applied. A migration without a down
# cannot be undone: \`plan\` marks it no-down.
steps:
${steps.join('\n\n')}
`;
}

function exampleRunbookText(knex: KnexSetup | undefined): string {
  return `${RUNBOOK_HEADER}
steps:
  # A check changes nothing; this one only proves lifeboat reached a database.
  # Replace it with your own steps, like the examples below.
  - id: database-reachable
    check:
      query: SELECT current_database() IS NOT NULL
      message: lifeboat could not query the target database

  # SQL with its undo beside it, and a verify query that decides the step if
  # a crash leaves it in doubt:
  # - id: add-orders-status
  #   sql:
  #     up: ALTER TABLE orders ADD COLUMN status text
  #     down: ALTER TABLE orders DROP COLUMN status
  #     verify: >-
  #       SELECT count(*) = 1 FROM information_schema.columns
  #       WHERE table_name = 'orders' AND column_name = 'status'

  # CREATE INDEX CONCURRENTLY runs outside a transaction (lifeboat sees that):
  # - id: index-orders-status
  #   sql:
  #     up: CREATE INDEX CONCURRENTLY orders_status_idx ON orders (status)
  #     down: DROP INDEX CONCURRENTLY IF EXISTS orders_status_idx
  #     verify: SELECT to_regclass('orders_status_idx') IS NOT NULL

  # An existing knex migrations directory (below this runbook's directory):
  # - id: app
  #   knex: { directory: ${knex?.directories[0]?.directory ?? 'migrations'}, tableName: ${knex?.tableName ?? DEFAULT_KNEX_TABLE}, loadExtensions: [.js] }
`;
}

/** A plain YAML scalar when safe, else double-quoted. */
function yamlString(value: string): string {
  return /^[A-Za-z0-9_./-]+$/.test(value) && !/^[-.]/.test(value) ? value : JSON.stringify(value);
}

/** A dangling symlink counts: writing there would write through it. */
async function exists(file: string): Promise<boolean> {
  return lstat(file).then(
    () => true,
    (err: NodeJS.ErrnoException) => err.code !== 'ENOENT',
  );
}

async function isDirectory(dir: string): Promise<boolean> {
  return stat(dir).then(
    (s) => s.isDirectory(),
    () => false,
  );
}
