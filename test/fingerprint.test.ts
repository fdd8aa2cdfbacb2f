import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  compareFingerprints,
  computeFingerprints,
  describeSchema,
  type Difference,
  type Fingerprints,
  type SequenceFingerprint,
} from '../src/fingerprint.js';
import { findTool } from '../src/pg-programs/find.js';
import { runPgTool } from '../src/pg-programs/exec.js';
import { resolveTarget } from '../src/target.js';
import { createTestDatabase, type TestDatabase } from './support/db.js';

const fixture = await readFile(new URL('./fixtures/rich-schema.sql', import.meta.url), 'utf8');

async function withConnection<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Fingerprints read at one snapshot, as the backup does; `prepare` runs first in the session. */
function fingerprint(
  url: string,
  prepare?: (c: pg.Client) => Promise<unknown>,
  opts?: Parameters<typeof computeFingerprints>[1],
): Promise<Fingerprints> {
  return withConnection(url, async (c) => {
    await prepare?.(c);
    await c.query('begin isolation level repeatable read, read only');
    const result = await computeFingerprints(c, opts);
    await c.query('commit');
    return result;
  });
}

async function richDatabase(prefix: string): Promise<TestDatabase> {
  const db = await createTestDatabase(prefix);
  await db.query(fixture); // one multi-statement simple query
  return db;
}

const brief = (diffs: Difference[]) => diffs.map(({ kind, object }) => ({ kind, object }));

describe('computeFingerprints on the rich schema', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await richDatabase('fp_rich');
  });
  afterAll(() => db?.drop());

  it('is deterministic and covers what a dump restores', async () => {
    const progress: string[] = [];
    const first = await fingerprint(db.url, undefined, {
      onTable: (done, total, table) => progress.push(`${done}/${total} ${table}`),
    });
    const second = await fingerprint(db.url);
    expect(second).toEqual(first);
    expect(compareFingerprints(first, second)).toEqual([]);

    const tables = new Map(first.tables.map((t) => [`${t.schema}.${t.name}`, t]));
    // Partition leaves, not their parent; materialized views, not views.
    expect([...tables.keys()]).toContain('sales.events_2022');
    expect([...tables.keys()]).not.toContain('sales.events');
    expect([...tables.keys()]).not.toContain('public.customer_orders');
    expect(tables.get('sales.order_totals')?.rows).toBe(4);
    expect(tables.get('sales.not_yet_refreshed')).toMatchObject({ rows: 0, hash: 'not populated' });
    expect(tables.get('Weird Schema.Order Items')?.rows).toBe(1200);
    expect(tables.get('public.legacy')?.rows).toBe(50);
    expect(tables.get('public.vehicles')?.rows).toBe(40); // without the inheriting cars
    expect(tables.get('public.audit_log')).toMatchObject({ rows: 0 });
    expect(tables.get('public.nothing')?.rows).toBe(2);
    expect(first.tables.reduce((n, t) => n + t.rows, 0)).toBeGreaterThan(4000);
    const n = first.tables.length;
    expect(progress).toHaveLength(n);
    expect(progress.at(-1)).toBe(`${n}/${n} sales.orders`); // sorted byte-wise
    expect(progress[0]).toBe(`1/${n} "Weird Schema"."Order Items"`);

    expect(first.sequences.map((s) => `${s.schema}.${s.name}`)).toEqual(
      expect.arrayContaining([
        'sales.invoice_no',
        'public.countdown',
        'public.untouched',
        'Weird Schema.Ticket Numbers',
        'public.customers_id_seq',
        'sales.orders_id_seq',
      ]),
    );
    expect(first.sequences.find((s) => s.name === 'countdown')).toMatchObject({
      lastValue: '94',
      isCalled: true,
      increment: '-1',
    });
    expect(first.largeObjects.count).toBe(3);
    expect(first.settings).toMatchObject({ TimeZone: 'UTC', DateStyle: 'ISO, MDY' });
    expect(first.schemaHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('describes the schema without dropped columns or extension members', async () => {
    const lines = await withConnection(db.url, (c) => describeSchema(c));
    const legacy = lines.find((l) => l.startsWith('relation public.legacy '));
    expect(legacy).toContain('columns=(id integer not-null, kept text');
    expect(legacy).not.toContain('obsolete');
    expect(lines).toContain("enum public.mood ('sad', 'meh', 'ok', 'happy', 'ecstatic')");
    expect(lines.filter((l) => l.startsWith('function '))).not.toContainEqual(
      expect.stringMatching(/citext/),
    );
  });

  it('leaves excluded schemas out', async () => {
    const all = await fingerprint(db.url);
    const some = await fingerprint(db.url, undefined, { excludeSchemas: ['sales'] });
    expect(some.tables.some((t) => t.schema === 'sales')).toBe(false);
    expect(some.sequences.some((s) => s.schema === 'sales')).toBe(false);
    expect(some.tables.length).toBeGreaterThan(0);
    expect(some.schemaHash).not.toBe(all.schemaHash);
  });

  it('pins output settings: a session with other settings gets the same fingerprints', async () => {
    const pinned = await fingerprint(db.url);
    const unusual = async (c: pg.Client) => {
      await c.query(`SET TimeZone = 'Asia/Tokyo'; SET DateStyle = 'German, DMY';
        SET extra_float_digits = 0; SET IntervalStyle = 'sql_standard';
        SET bytea_output = 'escape'; SET search_path = sales, public;
        SET standard_conforming_strings = off`);
    };
    // The settings do change how these rows read as text...
    const rowText = (prepare?: (c: pg.Client) => Promise<void>) =>
      withConnection(db.url, async (c) => {
        await prepare?.(c);
        const res = await c.query<{ t: string }>(
          'select string_agg((z.*)::text, chr(10) order by id) as t from public.values_zoo z',
        );
        return res.rows[0]?.t;
      });
    expect(await rowText(unusual)).not.toBe(await rowText());
    // ...but not the fingerprints.
    expect(await fingerprint(db.url, unusual)).toEqual(pinned);
  });
});

describe('round trip through pg_dump and pg_restore', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const fn of cleanup.reverse()) await fn();
  });

  it('restores to equal fingerprints, read at the exported snapshot', async () => {
    const source = await richDatabase('fp_src');
    cleanup.push(() => source.drop());
    const scratch = await createTestDatabase('fp_restored');
    cleanup.push(() => scratch.drop());
    const dir = await mkdtemp(path.join(os.tmpdir(), 'lifeboat-fp-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const dumpDir = path.join(dir, 'dump');

    const serverMajor = await withConnection(source.url, async (c) => {
      const res = await c.query<{ v: string }>(`select current_setting('server_version_num') as v`);
      return Math.floor(Number(res.rows[0]!.v) / 10000);
    });
    const pgDump = await findTool('pg_dump', serverMajor);
    const pgRestore = await findTool('pg_restore', serverMajor);

    const expected = await withConnection(source.url, async (c) => {
      await c.query('begin isolation level repeatable read, read only');
      const snapshot = await c.query<{ id: string }>('select pg_export_snapshot() as id');
      const fingerprints = await computeFingerprints(c);
      // Writes after the snapshot: neither the fingerprints nor the dump see them,
      // except the sequence, which is not transactional and moves ahead.
      await source.query(`update sales.orders set note = 'after the snapshot' where id < 100;
        delete from public.legacy; insert into public.audit_log (what) values ('late');
        select nextval('sales.invoice_no'); select setval('public.countdown', 50)`);
      const dump = await runPgTool(
        pgDump.path,
        ['--format=directory', `--file=${dumpDir}`, `--snapshot=${snapshot.rows[0]!.id}`],
        resolveTarget(source.url),
      );
      expect(dump.errorLines).toEqual([]);
      expect(dump.ok).toBe(true);
      await c.query('commit');
      return fingerprints;
    });

    const restore = await runPgTool(
      pgRestore.path,
      ['--exit-on-error', '--no-owner', '--no-privileges', `--dbname=${scratch.name}`, dumpDir],
      resolveTarget(scratch.url),
    );
    expect(restore.errorLines).toEqual([]);
    expect(restore.ok).toBe(true);

    const found = await fingerprint(scratch.url);
    expect(compareFingerprints(expected, found)).toEqual([]);
    expect(found.tables.length).toBe(expected.tables.length);

    // The source itself has moved on since the snapshot, and the comparison sees it.
    expect(brief(compareFingerprints(expected, await fingerprint(source.url)))).toEqual([
      { kind: 'table', object: 'public.audit_log' },
      { kind: 'table', object: 'public.legacy' },
      { kind: 'table', object: 'sales.orders' },
    ]);
  });
});

describe('each kind of change is a difference', () => {
  const cases: { change: string; sql: string; expected: Partial<Difference>[] }[] = [
    {
      change: 'one value in one row',
      sql: `update sales.orders set note = 'changed' where id = 17`,
      expected: [{ kind: 'table', object: 'sales.orders' }],
    },
    {
      change: 'a deleted row',
      sql: 'delete from public.legacy where id = 7',
      expected: [{ kind: 'table', object: 'public.legacy', expected: '50 rows', found: '49 rows' }],
    },
    {
      change: 'values swapped between two rows',
      sql: `update public.vehicles set name = case id when 1 then 'vehicle 2' else 'vehicle 1' end
             where id in (1, 2)`,
      expected: [{ kind: 'table', object: 'public.vehicles' }],
    },
    {
      change: 'a row deleted from a table with a quoted name',
      sql: `delete from "Weird Schema"."Order Items" where "Order Id" = 3 and line = 2`,
      expected: [{ kind: 'table', object: '"Weird Schema"."Order Items"', found: '1199 rows' }],
    },
    {
      change: 'a row moved to another partition',
      sql: `update sales.events set happened_at = '2022-06-01 00:00+00' where id = 601`,
      expected: [
        { kind: 'table', object: 'sales.events_2022' },
        { kind: 'table', object: 'sales.events_other' },
      ],
    },
    {
      change: 'an added column',
      sql: 'alter table public.cache add column note text',
      expected: [
        { kind: 'schema', object: 'schema' },
        { kind: 'table', object: 'public.cache' },
      ],
    },
    {
      change: 'a function body',
      sql: 'create or replace function public.add_one(x integer) returns integer language sql immutable return x + 2',
      expected: [{ kind: 'schema', object: 'schema' }],
    },
    {
      change: 'a sequence set backwards',
      sql: `select setval('sales.invoice_no', 1200)`,
      expected: [
        {
          kind: 'sequence',
          object: 'sales.invoice_no',
          expected: 'next value 1235 or higher',
          found: 'next value 1201',
        },
      ],
    },
    {
      change: 'a large object',
      sql: `select lo_put(424243, 100, '\\xff'::bytea)`,
      expected: [{ kind: 'large-objects', object: 'large objects' }],
    },
  ];

  it.each(cases)('$change', async ({ sql, expected }) => {
    const db = await richDatabase('fp_change');
    try {
      const before = await fingerprint(db.url);
      await db.query(sql);
      const after = await fingerprint(db.url);
      const diffs = compareFingerprints(before, after);
      expect(diffs).toHaveLength(expected.length);
      expected.forEach((e, i) => expect(diffs[i]).toMatchObject(e));
    } finally {
      await db.drop();
    }
  });

  it('a sequence that moved ahead is fine, one that moved back is not', async () => {
    const db = await richDatabase('fp_seq');
    try {
      const before = await fingerprint(db.url);
      await db.query(`select nextval('sales.invoice_no'); select nextval('public.countdown');
        select nextval('public.untouched'); select nextval('"Weird Schema"."Ticket Numbers"')`);
      expect(compareFingerprints(before, await fingerprint(db.url))).toEqual([]);

      // The descending countdown went back up; untouched is back where it was (not behind).
      await db.query(`select setval('public.countdown', 99); select setval('public.untouched', 1, false);
        select setval('"Weird Schema"."Ticket Numbers"', 15)`);
      expect(compareFingerprints(before, await fingerprint(db.url))).toEqual([
        {
          kind: 'sequence',
          object: '"Weird Schema"."Ticket Numbers"',
          expected: 'next value 25 or higher',
          found: 'next value 20',
        },
        {
          kind: 'sequence',
          object: 'public.countdown',
          expected: 'next value 93 or lower',
          found: 'next value 98',
        },
      ]);
    } finally {
      await db.drop();
    }
  });
});

describe('compareFingerprints (pure)', () => {
  const seq = (lastValue: string, isCalled: boolean, increment = '1'): SequenceFingerprint => ({
    schema: 'public',
    name: 's',
    lastValue,
    isCalled,
    increment,
  });
  const base: Fingerprints = {
    settings: { TimeZone: 'UTC', server_encoding: 'UTF8' },
    schemaHash: 'aa',
    tables: [
      { schema: 'public', name: 'orders', rows: 1200, hash: 'h1' },
      { schema: 'Mixed', name: 'Order Items', rows: 1, hash: 'h2' },
    ],
    sequences: [seq('42', true)],
    largeObjects: { count: 0, hash: 'lo' },
  };

  it('finds nothing in equal fingerprints', () => {
    expect(compareFingerprints(base, structuredClone(base))).toEqual([]);
  });

  it('reports missing, extra and changed tables readably', () => {
    const found: Fingerprints = {
      ...base,
      tables: [
        { schema: 'public', name: 'orders', rows: 1199, hash: 'h1' },
        { schema: 'public', name: 'extra', rows: 1, hash: 'h3' },
      ],
    };
    expect(compareFingerprints(base, found)).toEqual([
      { kind: 'table', object: 'public.orders', expected: '1200 rows', found: '1199 rows' },
      { kind: 'table', object: '"Mixed"."Order Items"', expected: '1 row', found: 'missing' },
      { kind: 'table', object: 'public.extra', expected: 'absent', found: '1 row' },
    ]);
  });

  it('reports schema, settings and large-object differences', () => {
    const found: Fingerprints = {
      ...base,
      settings: { TimeZone: 'UTC', server_encoding: 'SQL_ASCII' },
      schemaHash: 'bb',
      largeObjects: { count: 1, hash: 'lo2' },
    };
    expect(brief(compareFingerprints(base, found))).toEqual([
      { kind: 'settings', object: 'server_encoding' },
      { kind: 'schema', object: 'schema' },
      { kind: 'large-objects', object: 'large objects' },
    ]);
  });

  it.each([
    ['the same position', seq('42', true), seq('42', true), false],
    ['ahead', seq('50', true), seq('42', true), false],
    ['behind', seq('41', true), seq('42', true), true],
    ['not called at the next value', seq('43', false), seq('42', true), false],
    ['not called at the last value', seq('42', false), seq('42', true), true],
    ['descending, ahead', seq('-5', true, '-1'), seq('-3', true, '-1'), false],
    ['descending, behind', seq('-2', true, '-1'), seq('-3', true, '-1'), true],
  ])('a sequence %s', (_name, found, expected, differs) => {
    const diffs = compareFingerprints(
      { ...base, sequences: [expected] },
      { ...base, sequences: [found] },
    );
    expect(diffs.length > 0).toBe(differs);
  });

  it('reports a missing sequence and a changed increment', () => {
    const e = { ...base, sequences: [seq('1', true), { ...seq('1', true), name: 'gone' }] };
    const f = { ...base, sequences: [seq('1', true, '2')] };
    expect(compareFingerprints(e, f)).toEqual([
      { kind: 'sequence', object: 'public.s', expected: 'increment 1', found: 'increment 2' },
      { kind: 'sequence', object: 'public.gone', expected: 'next value 2', found: 'missing' },
    ]);
  });
});

describe('a big table hashed in block ranges over several sessions', () => {
  it('gives the same fingerprint as one query over the whole table, at one snapshot', async () => {
    const db = await createTestDatabase('fp_split');
    try {
      await db.query(
        `create table wide (id int, payload text);
         insert into wide select g, repeat(md5(g::text), 8) from generate_series(1, 20000) g;
         delete from wide where id % 7 = 0;`,
      );
      const whole = await fingerprint(db.url);
      const split = await withConnection(db.url, async (main) => {
        await main.query('begin isolation level repeatable read, read only');
        const snapshot = (await main.query<{ id: string }>('select pg_export_snapshot() as id'))
          .rows[0]!.id;
        return withConnection(db.url, async (helper) => {
          await helper.query('begin isolation level repeatable read, read only');
          await helper.query(`set transaction snapshot '${snapshot}'`);
          // A row written after the snapshot, past the last block counted, must stay invisible.
          await db.query(`insert into wide select g, 'late' from generate_series(1, 500) g`);
          // 8 blocks a piece: the table is read in dozens of ranges, shared by two sessions.
          return computeFingerprints(main, { helpers: [helper], pieceBlocks: 8 });
        });
      });
      expect(compareFingerprints(whole, split)).toEqual([]);
      expect(split.tables.find((t) => t.name === 'wide')?.rows).toBe(20000 - Math.floor(20000 / 7));
    } finally {
      await db.drop();
    }
  });

  it('opens the extra sessions only when the tables hold 16 MiB or more, and hashes the same either way', async () => {
    const db = await createTestDatabase('fp_lazy_helpers');
    try {
      await db.query(`create table wide (id int, payload text);
         insert into wide select g, repeat(md5(g::text), 8) from generate_series(1, 1000) g;`);
      /** Fingerprints with helpers opened on demand; how many times they were asked for. */
      const shared = (): Promise<{ asked: number; fp: Fingerprints }> =>
        withConnection(db.url, async (main) => {
          await main.query('begin isolation level repeatable read, read only');
          const snapshot = (await main.query<{ id: string }>('select pg_export_snapshot() as id'))
            .rows[0]!.id;
          const opened: pg.Client[] = [];
          let asked = 0;
          try {
            const fp = await computeFingerprints(main, {
              pieceBlocks: 64,
              helpers: async () => {
                asked++;
                const helper = new pg.Client({ connectionString: db.url });
                opened.push(helper);
                await helper.connect();
                await helper.query('begin isolation level repeatable read, read only');
                await helper.query(`set transaction snapshot '${snapshot}'`);
                return [helper];
              },
            });
            return { asked, fp };
          } finally {
            await Promise.all(opened.map((h) => h.end()));
          }
        });
      const small = await shared();
      expect(small.asked).toBe(0);
      expect(compareFingerprints(await fingerprint(db.url), small.fp)).toEqual([]);

      // About 20 MiB: worth a second session.
      await db.query(
        `insert into wide select g, repeat(md5(g::text), 8) from generate_series(1001, 70000) g; analyze wide`,
      );
      const big = await shared();
      expect(big.asked).toBe(1);
      expect(compareFingerprints(await fingerprint(db.url), big.fp)).toEqual([]);
      expect(big.fp.tables.find((t) => t.name === 'wide')?.rows).toBe(70000);
    } finally {
      await db.drop();
    }
  });
});
