exports.up = (knex) =>
  knex.schema.alterTable('customers', (t) => {
    t.string('name');
  });

exports.down = (knex) =>
  knex.schema.alterTable('customers', (t) => {
    t.dropColumn('name');
  });
