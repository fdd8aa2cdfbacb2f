import { describe, expect, it } from 'vitest';
import { portableSchemaLines, unqualifySoleRelation } from '../../src/schema-portable.js';

// Lines as PostgreSQL 15 and 18 describe the same objects (fingerprint.ts).
const on15 = [
  'constraint public.positive_int positive_int_check CHECK ((VALUE > 0))',
  'extension citext 1.6 schema=public',
  'relation sales.order_totals kind=m persistence=p columns=(status sales.order_status, orders bigint) definition= SELECT orders.status,\n    count(*) AS orders\n   FROM sales.orders\n  GROUP BY orders.status;',
];
const on18 = [
  'constraint "Weird Schema"."Order Items" "Order Items_Order Id_not_null" NOT NULL "Order Id"',
  'constraint public.positive_int positive_int_check CHECK ((VALUE > 0))',
  'constraint public.positive_int positive_int_not_null NOT NULL',
  'extension citext 1.8 schema=public',
  'relation sales.order_totals kind=m persistence=p columns=(status sales.order_status, orders bigint) definition= SELECT status,\n    count(*) AS orders\n   FROM sales.orders\n  GROUP BY status;',
];

describe('portableSchemaLines', () => {
  it('describes a schema alike on 15 and on 18', () => {
    expect(portableSchemaLines(on18)).toEqual(portableSchemaLines(on15));
    expect(portableSchemaLines(on15)).toContain('extension citext schema=public');
  });

  it('keeps real differences: another check, another extension schema, another column read', () => {
    const changes: [number, string][] = [
      [1, on18[1]!.replace('> 0', '> 1')],
      [3, on18[3]!.replace('schema=public', 'schema=sales')],
      [4, on18[4]!.replace('count(*)', 'count(total)')],
    ];
    for (const [at, line] of changes) {
      const other = on18.map((l, i) => (i === at ? line : l));
      expect(other).not.toEqual(on18);
      expect(portableSchemaLines(other), line).not.toEqual(portableSchemaLines(on15));
    }
  });

  it('sorts byte-wise, as the description is', () => {
    expect(portableSchemaLines(['schema é', 'schema z', 'extension a 1.0 schema=x'])).toEqual([
      'extension a schema=x',
      'schema z',
      'schema é',
    ]);
  });
});

describe('unqualifySoleRelation', () => {
  it('takes off the alias of a view over one relation, outside string literals', () => {
    expect(
      unqualifySoleRelation(
        " SELECT o.id,\n    'o.id'::text AS label\n   FROM sales.orders o\n  WHERE (o.amount > (0)::numeric);",
      ),
    ).toBe(
      " SELECT id,\n    'o.id'::text AS label\n   FROM sales.orders o\n  WHERE (amount > (0)::numeric);",
    );
  });

  it('takes off a quoted relation name', () => {
    expect(
      unqualifySoleRelation(' SELECT "Order Items".sku\n   FROM "Weird Schema"."Order Items";'),
    ).toBe(' SELECT sku\n   FROM "Weird Schema"."Order Items";');
  });

  it('leaves joins and set operations as every major prints them', () => {
    const join =
      ' SELECT c.id,\n    o.amount\n   FROM (public.customers c\n     LEFT JOIN sales.orders o ON ((o.customer_id = c.id)));';
    expect(unqualifySoleRelation(join)).toBe(join);
    const union = ' SELECT a.id\n   FROM public.a\nUNION\n SELECT b.id\n   FROM public.b;';
    expect(unqualifySoleRelation(union)).toBe(union);
  });
});
