import { describe, expect, test } from 'vitest';
import { inspectKnexMigration } from '../../src/runbook/knex-inspection.js';
import { orderKnexMigrations } from '../../src/runbook/knex-order.js';

describe('a knex migration has a down', () => {
  test.each([
    [
      'CommonJS',
      'exports.up = async (knex) => {}; exports.down = async (knex) => knex.schema.dropTable("t");',
    ],
    [
      'module.exports',
      'module.exports = { up(knex) { return x; }, down: (knex) => knex.raw("x") };',
    ],
    [
      'method shorthand',
      'module.exports = { async up(k) { await a(k); }, async down(k) { await b(k); } };',
    ],
    [
      'ESM function',
      'export async function up(knex) { await a(); }\nexport async function down(knex) { await b(); }',
    ],
    ['ESM const', 'export const up = (k) => a(k);\nexport const down = (k) => b(k);'],
    ['ESM list', 'const up = (k) => a(k); const down = (k) => b(k);\nexport { up, down };'],
  ])('%s', (_, source) => {
    expect(inspectKnexMigration(source).hasDown).toBe(true);
  });

  test.each([
    ['no down at all', 'exports.up = (knex) => knex.schema.createTable("t", () => {});'],
    ['only in a comment', 'exports.up = (k) => a(k);\n// exports.down = (k) => b(k);\n/* down: */'],
    ['an empty function', 'exports.up = (k) => a(k);\nexports.down = async function (knex) {};'],
    ['an empty arrow', 'exports.up = (k) => a(k);\nexports.down = async (knex) => {  };'],
    [
      'an empty ESM function',
      'export async function up(k) { await a(k); }\nexport async function down() {}',
    ],
  ])('not with %s', (_, source) => {
    expect(inspectKnexMigration(source).hasDown).toBe(false);
  });
});

describe('a knex migration', () => {
  test('runs in a transaction unless it opts out', () => {
    expect(inspectKnexMigration('exports.up = (k) => a(k);').transaction).toBe(true);
    expect(
      inspectKnexMigration('exports.config = { transaction: false };\nexports.up = (k) => a(k);')
        .transaction,
    ).toBe(false);
  });

  test('risks come from up, not from down', () => {
    const risks = inspectKnexMigration(`
      exports.up = (knex) => knex.schema.alterTable('orders', (t) => {
        t.dropColumn('legacy');
        t.renameColumn('total', 'amount');
      });
      exports.down = (knex) => knex.schema.dropTable('orders');
    `).risks;
    expect(risks.map((r) => r.code)).toEqual(['drop', 'rename']);
    expect(
      inspectKnexMigration(`
        exports.up = (knex) => knex.schema.createTable('t', (t) => { t.increments(); });
        exports.down = (knex) => knex.schema.dropTable('t');
      `).risks,
    ).toEqual([]);
  });
});

describe('knex order', () => {
  test('by file name as plain strings, only the loaded extensions', () => {
    const names = ['2_b.cjs', '10_a.cjs', 'B.cjs', 'a.cjs', 'README.md', 'helper.mjs', '1_x.ts'];
    expect(orderKnexMigrations(names, ['.cjs', '.ts'])).toEqual([
      '10_a.cjs',
      '1_x.ts',
      '2_b.cjs',
      'B.cjs',
      'a.cjs',
    ]);
  });
});
