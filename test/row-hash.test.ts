import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareFingerprints, computeFingerprints, type Fingerprints } from '../src/fingerprint.js';
import { ToolError } from '../src/errors.js';
import { findTool } from '../src/pg-programs/find.js';
import { runPgTool } from '../src/pg-programs/exec.js';
import { columnHashing, rowHashSql, type ContentMethod } from '../src/row-hash.js';
import { resolveTarget } from '../src/target.js';
import { createTestDatabase, type TestDatabase } from './support/db.js';

const METHODS = ['text', 'columns', 'typed'] as const;

async function fingerprint(url: string, contentMethod: ContentMethod): Promise<Fingerprints> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('begin isolation level repeatable read, read only');
    return await computeFingerprints(client, { contentMethod });
  } finally {
    await client.end();
  }
}

describe('which columns are hashed by their own type', () => {
  it('keeps the text path for every type whose hash equates values that text tells apart', () => {
    const own = (builtin: string | null, deterministic: boolean | null = null) =>
      columnHashing({ column: 'c', builtin, deterministic });
    expect(
      ['int4', 'int2', 'bool', 'date', 'uuid', 'bytea', 'oid', 'char'].map((t) => own(t)),
    ).toEqual(Array(8).fill('own'));
    expect(own('text', true)).toBe('own');
    expect(own('varchar', true)).toBe('own');
    expect(own('text', false)).toBe('text'); // a case-insensitive collation
    for (const t of ['int8', 'timestamp', 'timestamptz', 'time', 'bpchar'])
      expect(own(t)).toBe('send');
    for (const t of [
      'float4',
      'float8',
      'numeric',
      'jsonb',
      'json',
      'interval',
      'timetz',
      'inet',
      '_int4',
      'tstzrange',
      'xml',
      'point',
    ])
      expect(own(t)).toBe('text');
    expect(own(null)).toBe('text'); // domains, enums, citext, composites: not pg_catalog's
  });

  it('hashes the rest of a row as text inside the same record, and a row of no such column wholly as text', () => {
    const cols = [
      { column: 'id', builtin: 'int4', deterministic: null },
      { column: 'Amount', builtin: 'numeric', deterministic: null },
      { column: 'at', builtin: 'timestamptz', deterministic: null },
    ];
    expect(rowHashSql('t', 'columns', cols)).toBe(
      'pg_catalog.hash_record_extended(row(pg_catalog.int8send(pg_catalog.hash_record_extended(row(t."id", pg_catalog.timestamptz_send(t."at"), pg_catalog.int8send(pg_catalog.hashtextextended(row(t."Amount")::text, 0))), 0))), 0)',
    );
    // typed: the same record, its hash seeding a hash of its own instead of a second record.
    expect(rowHashSql('t', 'typed', cols)).toBe(
      'pg_catalog.hashint4extended(0, pg_catalog.hash_record_extended(row(t."id", pg_catalog.timestamptz_send(t."at"), pg_catalog.int8send(pg_catalog.hashtextextended(row(t."Amount")::text, 0))), 0))',
    );
    for (const method of ['columns', 'typed'] as const)
      expect(rowHashSql('t', method, [cols[1]!])).toBe('hashtextextended((t.*)::text, 0)');
    expect(rowHashSql('t', 'text', cols)).toBe('hashtextextended((t.*)::text, 0)');
  });
});

describe('every difference text sees, each method sees', () => {
  let db: TestDatabase;
  let citext = true;
  beforeAll(async () => {
    db = await createTestDatabase('rowhash');
    await db.query(
      `create collation ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)`,
    );
    await db.query('create extension citext').catch(() => (citext = false));
    await db.query(`create domain money2 as numeric; create type mood as enum ('sad', 'ok')`);
  });
  afterAll(() => db?.drop());

  // One table per case: its column, the value before and after. Each pair is equal to the type's own hash.
  const cases: { what: string; type: string; before: string; after: string }[] = [
    { what: 'a float8 zero becomes -0', type: 'float8', before: `'0'`, after: `'-0'` },
    { what: 'a float4 zero becomes -0', type: 'float4', before: `'0'`, after: `'-0'` },
    { what: 'a NaN becomes Infinity', type: 'float8', before: `'NaN'`, after: `'Infinity'` },
    { what: "a numeric's scale", type: 'numeric', before: '1.0', after: '1.00' },
    { what: "a domain's numeric scale", type: 'money2', before: '1.0', after: '1.00' },
    {
      what: "a jsonb number's scale",
      type: 'jsonb',
      before: `'{"a": 1.0}'`,
      after: `'{"a": 1.00}'`,
    },
    {
      what: 'case under a case-insensitive collation',
      type: 'text collate ci',
      before: `'a'`,
      after: `'A'`,
    },
    { what: 'case in text', type: 'text', before: `'a'`, after: `'A'` },
    { what: "an interval's units", type: 'interval', before: `'1 day'`, after: `'24 hours'` },
    { what: "a timetz's offset", type: 'timetz', before: `'12:00+01'`, after: `'11:00+00'` },
    { what: '-0 inside an array', type: 'float8[]', before: `'{0}'`, after: `'{-0}'` },
    { what: 'an enum value', type: 'mood', before: `'sad'`, after: `'ok'` },
    // hashint8 folds 64 bits into 32: 0 and 2^32 + 1 hash alike by the type's own function.
    {
      what: 'a bigint that folds to the same 32 bits',
      type: 'int8',
      before: '0',
      after: '4294967297',
    },
    {
      what: 'a timestamptz 2^32 + 1 microseconds later',
      type: 'timestamptz',
      before: `timestamptz '2000-01-01 00:00+00'`,
      after: `timestamptz '2000-01-01 00:00+00' + interval '4294967297 microseconds'`,
    },
    { what: 'trailing blanks in a bpchar', type: 'bpchar', before: `'a'`, after: `'a '` },
    { what: 'a null becomes a value', type: 'int4', before: 'null', after: '0' },
  ];

  it.each(cases)('$what', async ({ type, before, after }) => {
    const table = `t_${Math.random().toString(36).slice(2, 10)}`;
    // A column hashed by its own type beside it: the row takes the `columns` path with a text rest.
    await db.query(`create table ${table} (id int4, v ${type})`);
    await db.query(`insert into ${table} values (1, ${before}), (2, ${before})`);
    for (const method of METHODS) {
      const was = await fingerprint(db.url, method);
      await db.query(`update ${table} set v = ${after} where id = 1`);
      const now = await fingerprint(db.url, method);
      await db.query(`update ${table} set v = ${before} where id = 1`);
      expect({ method, diffs: compareFingerprints(was, now).map((d) => d.object) }).toEqual({
        method,
        diffs: [`public.${table}`],
      });
    }
  });

  it('case in citext', async () => {
    if (!citext) return; // the extension is not installed on this server
    await db.query(`create table ci_text (id int4, v citext); insert into ci_text values (1, 'a')`);
    for (const method of METHODS) {
      const was = await fingerprint(db.url, method);
      await db.query(`update ci_text set v = 'A'`);
      const now = await fingerprint(db.url, method);
      await db.query(`update ci_text set v = 'a'`);
      expect(compareFingerprints(was, now).map((d) => d.object)).toEqual(['public.ci_text']);
    }
  });

  it('values swapped between rows, in the text part or a column hashed by its type', async () => {
    await db.query(`create table swapped (id int4, n numeric, k int4, label text);
      insert into swapped values (1, 1.5, 10, 'x'), (2, 2.5, 20, 'y')`);
    for (const method of ['columns', 'typed'] as const)
      for (const column of ['n', 'k']) {
        const was = await fingerprint(db.url, method);
        await db.query(
          `update swapped set ${column} = (select ${column} from swapped s where s.id <> swapped.id)`,
        );
        const now = await fingerprint(db.url, method);
        expect({
          method,
          column,
          diffs: compareFingerprints(was, now).map((d) => d.object),
        }).toEqual({ method, column, diffs: ['public.swapped'] });
      }
  });

  it('names a different method as a difference of its own', async () => {
    const text = await fingerprint(db.url, 'text');
    const columns = await fingerprint(db.url, 'columns');
    const typed = await fingerprint(db.url, 'typed');
    expect(text.contentMethod).toBeUndefined();
    expect(columns.contentMethod).toBe('columns');
    expect(typed.contentMethod).toBe('typed');
    expect(compareFingerprints(text, columns)[0]).toEqual({
      kind: 'settings',
      object: 'content hashing',
      expected: 'text',
      found: 'columns',
    });
    expect(compareFingerprints(columns, typed)[0]).toEqual({
      kind: 'settings',
      object: 'content hashing',
      expected: 'columns',
      found: 'typed',
    });
  });

  it('refuses, in one sentence, a method a newer version wrote', async () => {
    const failure = await fingerprint(db.url, 'sketched' as ContentMethod).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ToolError);
    expect((failure as Error).message).toBe(
      'These fingerprints were hashed by the "sketched" method, which this version of lifeboat does not know; use the version that wrote them, or a newer one.',
    );
  });
});

describe('hashing by columns through pg_dump and pg_restore', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const fn of cleanup.reverse()) await fn();
  });

  it('restores the rich schema to equal fingerprints, and finds a changed row', async () => {
    const fixture = await readFile(new URL('./fixtures/rich-schema.sql', import.meta.url), 'utf8');
    const source = await createTestDatabase('rh_src');
    cleanup.push(() => source.drop());
    await source.query(fixture);
    const scratch = await createTestDatabase('rh_restored');
    cleanup.push(() => scratch.drop());
    const dir = await mkdtemp(path.join(os.tmpdir(), 'lifeboat-rh-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));

    const version = await source.query(`select current_setting('server_version_num') as v`);
    const major = Math.floor(Number((version.rows[0] as { v: string }).v) / 10000);
    const dump = await runPgTool(
      (await findTool('pg_dump', major)).path,
      ['--format=directory', `--file=${dir}/dump`],
      resolveTarget(source.url),
    );
    expect(dump.errorLines).toEqual([]);
    const restore = await runPgTool(
      (await findTool('pg_restore', major)).path,
      [
        '--exit-on-error',
        '--no-owner',
        '--no-privileges',
        `--dbname=${scratch.name}`,
        `${dir}/dump`,
      ],
      resolveTarget(scratch.url),
    );
    expect(restore.errorLines).toEqual([]);

    const columns = await fingerprint(source.url, 'columns');
    expect(compareFingerprints(columns, await fingerprint(scratch.url, 'columns'))).toEqual([]);
    const expected = await fingerprint(source.url, 'typed');
    expect(compareFingerprints(expected, await fingerprint(scratch.url, 'typed'))).toEqual([]);
    // Enums, timestamps written under several time zones, floats, arrays: the hashes still differ by method.
    const text = await fingerprint(source.url, 'text');
    const differs = (other: Fingerprints) =>
      expected.tables.filter(
        (t, i) => t.hash !== other.tables[i]!.hash && t.hash !== 'not populated',
      ).length;
    expect(differs(text)).toBeGreaterThan(0);
    expect(differs(columns)).toBeGreaterThan(0);

    await scratch.query(`update sales.orders set note = 'changed' where id = 17`);
    expect(
      compareFingerprints(expected, await fingerprint(scratch.url, 'typed')).map((d) => d.object),
    ).toEqual(['sales.orders']);
  });
});
