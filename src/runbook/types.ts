/**
 * The runbook as the rest of lifeboat sees it. `parseRunbook` turns YAML into a
 * `ParsedRunbook` (pure: file references are still paths); `loadRunbook` reads
 * the referenced files and knex directories and returns a `Runbook`, the
 * validated, fully resolved form the core trusts. Everything is plain data, so
 * it serialises to JSON as it is.
 */

/** One thing wrong with a runbook, located so an editor can jump to it. */
export interface Problem {
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
  message: string;
}

export interface Location {
  file: string;
  line: number;
  column: number;
}

/**
 * Where a piece of text starts. When `linesMatch`, line k column c of the
 * text is line `line + k - 1`, column `column + c - 1` of `file` (SQL files,
 * YAML literal blocks `|`, one-line scalars), so a problem in the text can
 * name its own line; otherwise (folded or multi-line quoted scalars)
 * everything is reported at `line`.
 */
export interface TextOrigin extends Location {
  linesMatch: boolean;
}

/** Backup freshness the guard demands before this runbook runs. */
export interface BackupPolicy {
  maxAgeMs?: number;
  copies?: number;
  requireOffsite?: boolean;
}

/** PostgreSQL `lock_timeout` and `statement_timeout`; absent means the server's setting. */
export interface Timeouts {
  lockTimeoutMs?: number;
  statementTimeoutMs?: number;
}

export type RiskCode =
  | 'drop'
  | 'truncate'
  | 'delete-all'
  | 'update-all'
  | 'column-type-change'
  | 'index-without-concurrently'
  | 'set-not-null'
  | 'constraint-validation'
  | 'table-rewrite'
  | 'rename'
  | 'non-transactional'
  | 'no-down'
  | 'no-verify'
  | 'opaque-command';

export interface Risk {
  code: RiskCode;
  message: string;
  /** `file:line` of the statement or call, when known. */
  where?: string;
}

// ---------------------------------------------------------------------------
// Parsed (pure) form: what the YAML says, file references not yet read.

export interface InlineText {
  text: string;
  origin: TextOrigin;
}

export type TextSource =
  | ({ from: 'inline' } & InlineText)
  /** `path` as written in the runbook (relative, checked not to escape); `at` is where. */
  | { from: 'file'; path: string; at: Location };

interface ParsedStepCommon {
  id: string;
  description?: string;
  at: Location;
  /** The step's own overrides; defaults are merged in when the runbook is resolved. */
  timeouts: Timeouts;
}

export interface ParsedSqlStep extends ParsedStepCommon {
  kind: 'sql';
  up: TextSource;
  down?: TextSource;
  verify?: InlineText;
  /** As declared; absent means "decide from the SQL". */
  transaction?: boolean;
}

export interface ParsedCheckStep extends ParsedStepCommon {
  kind: 'check';
  query: InlineText;
  message?: string;
}

export interface ParsedShellStep extends ParsedStepCommon {
  kind: 'shell';
  up: string;
  down?: string;
  verify?: InlineText;
  timeoutMs?: number;
  /** lifeboat's own secrets the command gets, by variable name. */
  secrets?: string[];
}

export interface ParsedKnexStep extends ParsedStepCommon {
  kind: 'knex';
  /** Relative to the runbook's directory, checked not to escape it. */
  directory: string;
  directoryAt: Location;
  tableName: string;
  schemaName?: string;
  loadExtensions: string[];
  /** Verify queries by migration file name. */
  verify: Map<string, InlineText>;
}

export type ParsedStep = ParsedSqlStep | ParsedCheckStep | ParsedShellStep | ParsedKnexStep;

export interface ParsedRunbook {
  name: string;
  description?: string;
  /** The runbook's path as given. */
  file: string;
  policy?: BackupPolicy;
  defaults: Timeouts;
  steps: ParsedStep[];
}

// ---------------------------------------------------------------------------
// Resolved form: what the core runs.

export interface SqlScript {
  text: string;
  /** Runs inside one transaction (committed with its checkpoint), or statement by statement. */
  transaction: boolean;
  origin: TextOrigin;
}

interface StepCommon {
  id: string;
  description?: string;
  /** Where the step is written in the runbook. */
  at: Location;
  /** Step overrides merged over the runbook's defaults. */
  timeouts: Timeouts;
  /**
   * sha256 (hex) of the step's kind and resolved content (up, down, verify;
   * a knex migration's file). An applied step whose checksum changed is refused.
   */
  checksum: string;
  /** What the step's own content does that deserves a look (found statically). */
  risks: Risk[];
}

export interface SqlStep extends StepCommon {
  kind: 'sql';
  up: SqlScript;
  down?: SqlScript;
  /** One query returning one boolean row: true when `up` has taken effect. */
  verify?: string;
}

export interface CheckStep extends StepCommon {
  kind: 'check';
  /** One query returning one boolean row that must be true. */
  query: string;
  message: string;
}

export interface ShellStep extends StepCommon {
  kind: 'shell';
  up: string;
  down?: string;
  verify?: string;
  timeoutMs: number;
  /** lifeboat's own secrets the command gets, by variable name (see src/step-env.ts). */
  secrets: string[];
}

/** One migration file of a `knex` step, run through knex so its bookkeeping stays correct. */
export interface KnexMigrationStep extends StepCommon {
  kind: 'knex-migration';
  /** The id of the `knex` step this migration was expanded from. */
  group: string;
  /** The file name, as knex records it in its migrations table. */
  name: string;
  /** Absolute path of the migration file. */
  file: string;
  /** Absolute path of the migrations directory. */
  directory: string;
  tableName: string;
  schemaName?: string;
  loadExtensions: string[];
  /** Static check of the file text: it defines a `down` that is not an empty function. */
  hasDown: boolean;
  /** knex wraps a migration in a transaction unless it exports `config = { transaction: false }`. */
  transaction: boolean;
  /** The runbook's verify query for this migration (`knex.verify`): decides it when a crash leaves it in doubt. */
  verify?: string;
}

export type Step = SqlStep | CheckStep | ShellStep | KnexMigrationStep;
export type StepKind = Step['kind'];

export interface Runbook {
  name: string;
  description?: string;
  /** The runbook's path as given to `loadRunbook`. */
  file: string;
  /** Absolute, symlinks resolved: file references and shell commands start here. */
  directory: string;
  policy?: BackupPolicy;
  steps: Step[];
}
