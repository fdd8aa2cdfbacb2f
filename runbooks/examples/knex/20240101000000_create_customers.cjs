exports.up = (knex) =>
  knex.schema.createTable('customers', (t) => {
    t.increments('id');
    t.string('email').notNullable().unique();
    t.timestamp('created_at').notNullable().defaultTo(knex.fn.now());
  });

exports.down = (knex) => knex.schema.dropTable('customers');
