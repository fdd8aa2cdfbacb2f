import path from 'node:path';

/**
 * The migration files knex would run from a directory listing, in knex's
 * order: names whose extension is in `loadExtensions`, sorted by plain string
 * comparison (lodash sortBy, as knex's FsMigrations does), not by locale.
 * Type declarations (`.d.ts`, `.d.cts`, `.d.mts`, beside compiled migrations)
 * are never migrations.
 */
export function orderKnexMigrations(
  names: readonly string[],
  loadExtensions: readonly string[],
): string[] {
  return names
    .filter((name) => loadExtensions.includes(path.extname(name)) && !/\.d\.[cm]?ts$/.test(name))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
