import { describe, expect, test } from 'vitest';
import { analyzeSql, splitSqlStatements } from '../../src/runbook/sql-analysis.js';

const nonTransactional = (sql: string): string[] =>
  analyzeSql(sql).nonTransactional.map((f) =>
    f.message.replace(' cannot run inside a transaction block', ''),
  );
const riskCodes = (sql: string): string[] => analyzeSql(sql).risks.map((r) => r.code);

describe('statements that cannot run in a transaction', () => {
  test.each([
    ['CREATE INDEX CONCURRENTLY i ON t (a)', 'CREATE INDEX CONCURRENTLY'],
    ['create unique index concurrently if not exists i on t (a)', 'CREATE INDEX CONCURRENTLY'],
    ['DROP INDEX CONCURRENTLY IF EXISTS i', 'DROP INDEX CONCURRENTLY'],
    ['REINDEX (VERBOSE) TABLE CONCURRENTLY t', 'REINDEX … CONCURRENTLY'],
    ['REINDEX DATABASE app', 'REINDEX DATABASE'],
    ['VACUUM ANALYZE t', 'VACUUM'],
    ['CREATE DATABASE scratch', 'CREATE DATABASE'],
    ['DROP DATABASE scratch', 'DROP DATABASE'],
    ["CREATE TABLESPACE fast LOCATION '/ssd'", 'CREATE TABLESPACE'],
    ["ALTER SYSTEM SET work_mem = '64MB'", 'ALTER SYSTEM'],
    ['ALTER DATABASE app SET TABLESPACE fast', 'ALTER DATABASE … SET TABLESPACE'],
    ['ALTER TABLE m DETACH PARTITION m_2020 CONCURRENTLY', 'DETACH PARTITION … CONCURRENTLY'],
    ['CLUSTER VERBOSE', 'CLUSTER without a table'],
  ])('%s', (sql, reason) => {
    expect(nonTransactional(sql)).toEqual([reason]);
  });

  test.each([
    'CREATE INDEX i ON t (a)',
    'REINDEX TABLE t',
    'ANALYZE t',
    'CLUSTER t USING i',
    "ALTER DATABASE app SET search_path = 'x'",
    "ALTER TYPE mood ADD VALUE 'meh'",
  ])('%s can', (sql) => {
    expect(nonTransactional(sql)).toEqual([]);
  });

  test('ignores comments, string literals, dollar quotes and quoted identifiers', () => {
    const sql = `
      -- VACUUM;
      /* CREATE INDEX CONCURRENTLY i ON t (a); /* nested */ VACUUM; */
      SELECT 'VACUUM; CREATE DATABASE x', E'it\\'s; VACUUM', $$ VACUUM; $$, $fn$ DROP DATABASE x; $fn$;
      SELECT "VACUUM" FROM "DROP DATABASE x";
      CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $body$
      BEGIN
        EXECUTE 'VACUUM';
      END $body$;
    `;
    const analysis = analyzeSql(sql);
    expect(analysis.nonTransactional).toEqual([]);
    expect(analysis.transactionControl).toEqual([]);
    expect(analysis.statementCount).toBe(3);
  });

  test('finds the statement after the noise, with its line and column', () => {
    const analysis = analyzeSql("SELECT ';'; -- ;\n  /* ; */ VACUUM t;");
    expect(analysis.nonTransactional).toEqual([
      { line: 2, column: 11, message: 'VACUUM cannot run inside a transaction block' },
    ]);
  });

  test('transaction control written in the script', () => {
    const found = analyzeSql(
      'BEGIN; SAVEPOINT s; ROLLBACK TO SAVEPOINT s; START TRANSACTION; ROLLBACK; END; COMMIT',
    ).transactionControl.map((f) => f.message);
    expect(found).toEqual([
      'BEGIN controls the transaction',
      'START TRANSACTION controls the transaction',
      'ROLLBACK controls the transaction',
      'END controls the transaction',
      'COMMIT controls the transaction',
    ]);
  });

  test('an unterminated dollar quote is reported where it starts', () => {
    expect(analyzeSql('SELECT 1;\nDO $x$ BEGIN NULL; END $y$;').unterminated).toEqual({
      line: 2,
      column: 4,
      message: 'unterminated dollar-quoted string',
    });
  });
});

describe('splitting into statements', () => {
  test('splits at top-level semicolons only', () => {
    expect(
      splitSqlStatements(`CREATE INDEX CONCURRENTLY a ON t (x);
        -- comment; still a comment
        INSERT INTO t VALUES (';', $$;$$);;
        CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END;
        SELECT a$b$ FROM t`),
    ).toEqual([
      'CREATE INDEX CONCURRENTLY a ON t (x)',
      "INSERT INTO t VALUES (';', $$;$$)",
      'CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END',
      'SELECT a$b$ FROM t',
    ]);
  });
});

describe('risks', () => {
  test.each([
    ['DROP TABLE orders', 'drop'],
    ['DROP SCHEMA app CASCADE', 'drop'],
    ['DROP VIEW v CASCADE', 'drop'],
    ['ALTER TABLE orders DROP COLUMN status', 'drop'],
    ['ALTER TABLE orders DROP status', 'drop'],
    ['TRUNCATE orders', 'truncate'],
    ['DELETE FROM orders', 'delete-all'],
    ['UPDATE orders SET a = (SELECT 1 FROM x WHERE x.id = 1)', 'update-all'],
    ['WITH x AS (SELECT 1) UPDATE orders SET a = 1', 'update-all'],
    ['ALTER TABLE orders ALTER COLUMN total TYPE numeric(12,2)', 'column-type-change'],
    ['ALTER TABLE orders ALTER total SET DATA TYPE bigint', 'column-type-change'],
    ['CREATE INDEX orders_status ON orders (status)', 'index-without-concurrently'],
    ['ALTER TABLE orders ADD CONSTRAINT u UNIQUE (code)', 'index-without-concurrently'],
    ['ALTER TABLE orders ALTER COLUMN status SET NOT NULL', 'set-not-null'],
    ['ALTER TABLE orders ADD CONSTRAINT c CHECK (total > 0)', 'constraint-validation'],
    ['ALTER TABLE orders ADD FOREIGN KEY (c) REFERENCES customers', 'constraint-validation'],
    ['ALTER TABLE orders ADD COLUMN token uuid DEFAULT gen_random_uuid()', 'table-rewrite'],
    ['VACUUM (FULL, ANALYZE) orders', 'table-rewrite'],
    ['ALTER TABLE orders RENAME COLUMN total TO amount', 'rename'],
    ['ALTER VIEW v RENAME TO w', 'rename'],
  ])('%s', (sql, code) => {
    expect(riskCodes(sql)).toContain(code);
  });

  test.each([
    'CREATE INDEX CONCURRENTLY i ON orders (status)',
    'DELETE FROM orders WHERE id = 1',
    'UPDATE orders SET a = 1 WHERE id = 2',
    'ALTER TABLE orders ADD COLUMN status text DEFAULT now()',
    'ALTER TABLE orders ADD CONSTRAINT c CHECK (total > 0) NOT VALID',
    'ALTER TABLE orders ADD CONSTRAINT u UNIQUE USING INDEX orders_code',
    'ALTER TABLE orders DROP CONSTRAINT c',
    'ALTER TABLE orders ALTER COLUMN status DROP NOT NULL',
    'ALTER TABLE orders RENAME CONSTRAINT a TO b',
    'ALTER INDEX i RENAME TO j',
    'DROP INDEX i',
    "SELECT 'DROP TABLE orders'",
    '-- TRUNCATE orders',
    'SELECT * FROM "DELETE"',
  ])('%s is not flagged', (sql) => {
    expect(riskCodes(sql)).toEqual([]);
  });

  test('a table created in the same script is nobody else’s yet', () => {
    expect(
      riskCodes(`CREATE TABLE staging (id int, v text);
        CREATE INDEX ON staging (v);
        ALTER TABLE staging ALTER COLUMN v TYPE varchar(10), ALTER COLUMN v SET NOT NULL;
        UPDATE staging SET v = 'x';
        DROP TABLE staging;
        CREATE INDEX ON orders (v);`),
    ).toEqual(['index-without-concurrently']);
  });

  test('each action of an ALTER TABLE is looked at, with its line', () => {
    const analysis = analyzeSql(
      'SELECT 1;\nALTER TABLE orders ADD COLUMN a int, DROP COLUMN b, ALTER COLUMN c TYPE text',
    );
    expect(analysis.risks.map((r) => [r.line, r.code])).toEqual([
      [2, 'drop'],
      [2, 'column-type-change'],
    ]);
    expect(analysis.risks[0]?.message).toBe('DROP COLUMN orders.b deletes the column and its data');
  });
});
