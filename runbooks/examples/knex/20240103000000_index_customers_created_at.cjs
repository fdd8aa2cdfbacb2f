// CREATE INDEX CONCURRENTLY cannot run in a transaction, so this migration
// opts out of knex's per-migration transaction.
exports.config = { transaction: false };

exports.up = (knex) =>
  knex.raw(
    'CREATE INDEX CONCURRENTLY IF NOT EXISTS customers_created_at_idx ON customers (created_at)',
  );

exports.down = (knex) => knex.raw('DROP INDEX CONCURRENTLY IF EXISTS customers_created_at_idx');
