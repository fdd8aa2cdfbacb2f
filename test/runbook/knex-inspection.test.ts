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

const codes = (source: string) => inspectKnexMigration(source).risks.map((r) => r.code);

describe('the risk lint reads the migration as code', () => {
  test('SQL in knex.raw and schema.raw is read like a sql step', () => {
    const risks = inspectKnexMigration(`exports.up = async (knex) => {
  await knex.schema.raw('ALTER TABLE orders ALTER COLUMN total TYPE numeric');
  await knex.raw(\`UPDATE orders SET status = 'new'\`);
  await knex.raw('CREATE INDEX CONCURRENTLY IF NOT EXISTS o_idx ON orders (status)');
};
exports.down = async () => {};`).risks;
    expect(risks.map((r) => [r.code, r.line])).toEqual([
      ['column-type-change', 2],
      ['update-all', 3],
    ]);
    expect(risks[0]!.message).toMatch(/^up runs SQL that /);
  });

  test('the schema builder on existing tables: alter, index, NOT NULL, foreign keys; not on a new table', () => {
    expect(
      codes(`exports.up = (knex) => knex.schema.alterTable('orders', (t) => {
  t.integer('total').alter();
  t.index(['customer_id']);
  t.unique(['email']);
  t.dropNullable('email');
  t.foreign('customer_id').references('customers.id');
});
exports.down = async () => {};`),
    ).toEqual([
      'column-type-change',
      'index-without-concurrently',
      'index-without-concurrently',
      'set-not-null',
      'constraint-validation',
    ]);
    expect(
      codes(`exports.up = (knex) => knex.schema.createTable('orders', (t) => {
  t.increments(); t.index(['x']); t.unique(['y']); t.foreign('z').references('c.id');
});
exports.down = (knex) => knex.schema.dropTable('orders');`),
    ).toEqual([]);
  });

  test('an update or delete without a where, on knex only', () => {
    expect(
      codes(`exports.up = async (db) => {
  await db('orders').update({ status: 'new' });
  await db('orders').where({ id: 1 }).update({ status: 'new' });
  await db('orders').update({ status: 'x' }).whereIn('id', [1]);
  await db.from('audit').del();
  const digest = createHash('sha1').update('text').digest('hex');
};
exports.down = async () => {};`),
    ).toEqual(['update-all', 'delete-all']);
  });

  test('code for other database clients is not flagged', () => {
    expect(
      codes(`exports.up = async (knex) => {
  const client = knex.client.config.client;
  if (client === 'sqlite3') {
    await knex.schema.dropTable('old');
  } else {
    await knex.schema.renameTable('a', 'b');
  }
  if (client.includes('pg')) {
    await knex.raw('ALTER TABLE t ALTER COLUMN c TYPE bigint');
  } else {
    await knex.schema.alterTable('t', (t) => t.bigInteger('c').alter());
  }
  if (isMySQL(knex)) await knex('x').del();
  if (client !== 'better-sqlite3') await knex('y').update({ a: 1 });
  switch (client) {
    case 'mysql2': await knex.schema.dropTable('z'); break;
    default: break;
  }
  await (knex.client.config.client.includes('sqlite') ? knex.schema.dropTable('w') : Promise.resolve());
};
exports.down = async () => {};`),
    ).toEqual(['rename', 'column-type-change', 'update-all']);
  });

  test('TypeScript migrations parse, with their types', () => {
    const i = inspectKnexMigration(
      `import type { Knex } from 'knex';
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('t', (t: Knex.AlterTableBuilder) => { t.dropColumn('c'); });
}
export async function down(knex: Knex): Promise<void> { await knex.raw('select 1'); }
export const config = { transaction: false } satisfies Record<string, boolean>;`,
      '001_x.ts',
      { scope: 'commonjs', requireLoadsEsm: true, typescriptLoader: 'tsx' },
    );
    expect(i).toMatchObject({ hasDown: true, transaction: false, loadProblems: [] });
    expect(i.risks.map((r) => r.code)).toEqual(['drop']);
  });
});

describe('whether knex can load the file as the project would', () => {
  const esmScope = {
    scope: 'module' as const,
    scopeFile: '/app/package.json',
    requireLoadsEsm: true,
  };
  const cjsScope = { scope: 'commonjs' as const, requireLoadsEsm: true };
  const CJS = 'exports.up = async (k) => {};\nexports.down = async (k) => {};';
  const ESM = 'export async function up(k) {}\nexport async function down(k) {}';

  test('CommonJS in an ESM scope (or .mjs) cannot load', () => {
    const [problem] = inspectKnexMigration(CJS, '001_a.js', esmScope).loadProblems;
    expect(problem).toMatchObject({ line: 1, column: 1 });
    expect(problem!.message).toContain(
      'written as CommonJS (exports, module.exports or require), but knex loads it as an ES module because /app/package.json says "type": "module"',
    );
    expect(inspectKnexMigration(CJS, '001_a.mjs', cjsScope).loadProblems).toHaveLength(1);
    const requireInEsm = `const { x } = require('./helpers');\n${ESM}`;
    expect(inspectKnexMigration(requireInEsm, '001_a.js', esmScope).loadProblems).toHaveLength(1);
    const createRequire = `import { createRequire } from 'node:module';\nconst require = createRequire(import.meta.url);\nconst h = require('./h');\n${ESM}`;
    expect(inspectKnexMigration(createRequire, '001_a.js', esmScope).loadProblems).toEqual([]);
    // .cjs is CommonJS whatever package.json says.
    expect(inspectKnexMigration(CJS, '001_a.cjs', esmScope).loadProblems).toEqual([]);
  });

  test('ES module syntax where knex requires it: .cjs never loads; .js only where Node can require ESM', () => {
    expect(inspectKnexMigration(ESM, '001_a.cjs', esmScope).loadProblems[0]!.message).toContain(
      'written as an ES module (import/export), but knex loads it with require() because its extension is .cjs',
    );
    expect(inspectKnexMigration(ESM, '001_a.js', cjsScope).loadProblems).toEqual([]);
    expect(
      inspectKnexMigration(ESM, '001_a.js', { ...cjsScope, requireLoadsEsm: false }).loadProblems,
    ).toHaveLength(1);
    expect(inspectKnexMigration(ESM, '001_a.js', esmScope).loadProblems).toEqual([]);
  });

  test('TypeScript needs a loader the project has', () => {
    const ts = 'export async function up() {}\nexport async function down() {}';
    expect(inspectKnexMigration(ts, '001_a.ts', cjsScope).loadProblems[0]!.message).toContain(
      'no TypeScript loader (tsx or ts-node) is installed',
    );
    expect(
      inspectKnexMigration(ts, '001_a.ts', { ...cjsScope, typescriptLoader: 'ts-node' })
        .loadProblems,
    ).toEqual([]);
    expect(
      inspectKnexMigration(ts, '001_a.ts', { ...esmScope, typescriptLoader: 'ts-node' })
        .loadProblems[0]!.message,
    ).toContain('ts-node) is registered for CommonJS');
  });

  test('a file that does not parse is reported with its line', () => {
    expect(
      inspectKnexMigration('exports.up = async (k) => {\n  await k.raw(;\n};', '001_a.js', cjsScope)
        .loadProblems,
    ).toEqual([
      { line: 2, column: 15, message: expect.stringMatching(/^it cannot be parsed/) as string },
    ]);
  });
});

test('type declarations beside compiled migrations are never migrations', () => {
  expect(
    orderKnexMigrations(
      ['1_a.ts', '1_a.d.ts', '2_b.d.cts', '3_c.d.mts', '2_b.js'],
      ['.ts', '.js', '.cts', '.mts'],
    ),
  ).toEqual(['1_a.ts', '2_b.js']);
});
