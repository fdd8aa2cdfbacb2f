/** The runbook module: parse, load, analyse and plan. Pure except loadRunbook. */
export type * from './types.js';
export { parseRunbook, type ParseResult } from './parse.js';
export { loadRunbook } from './load.js';
export {
  resolveRunbook,
  DEFAULT_SHELL_TIMEOUT_MS,
  type RunbookInputs,
  type KnexMigrationFile,
} from './resolve.js';
export { RunbookError, formatProblem } from './errors.js';
export {
  analyzeSql,
  splitSqlStatements,
  type SqlAnalysis,
  type SqlFinding,
} from './sql-analysis.js';
export { inspectKnexMigration } from './knex-inspection.js';
export { orderKnexMigrations } from './knex-order.js';
export { stepChecksum } from './checksum.js';
export { parseDuration } from './durations.js';
export {
  planRunbook,
  type AppliedStep,
  type Plan,
  type PlannedStep,
  type StepState,
  type UndoPath,
} from './plan.js';
export { renderPlan } from './render-plan.js';
