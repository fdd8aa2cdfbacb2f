import { describe, expect, it } from 'vitest';
import type { ClusterNeeds } from '../../src/cluster-needs.js';
import { preflightProblems, type DestinationFacts, type SourceFacts } from '../../src/preflight.js';

const needs: ClusterNeeds = {
  roles: [
    { name: 'app', attributes: ['LOGIN'], memberOf: [], owns: 12, grantedOn: 0, policies: 0 },
    { name: 'reader', attributes: ['NOLOGIN'], memberOf: [], owns: 0, grantedOn: 3, policies: 1 },
  ],
  settings: [
    { name: 'work_mem', value: '64MB' },
    { role: 'reporting', name: 'search_path', value: 'app' },
  ],
  extensions: [
    { name: 'citext', version: '1.6', schema: 'public' },
    { name: 'plpgsql', version: '1.0', schema: 'pg_catalog' },
  ],
  database: { encoding: 'UTF8', collate: 'C.UTF-8', ctype: 'C.UTF-8', localeProvider: 'libc' },
};
const source: SourceFacts = { serverVersion: '15.18', serverMajor: 15, needs };

/** A destination that has everything. */
const ready: DestinationFacts = {
  serverVersion: '17.10',
  serverMajor: 17,
  roles: ['postgres', 'app', 'reader', 'reporting'],
  extensions: {
    citext: { defaultVersion: '1.6', reachable: true },
    plpgsql: { defaultVersion: '1.0', reachable: true },
  },
  database: { ...needs.database },
};

const names = (dest: DestinationFacts) =>
  preflightProblems(source, dest).map((p) => `${p.kind} ${p.name}`);

describe('preflightProblems', () => {
  it('finds nothing missing on a destination that has it all, of the same major or newer', () => {
    expect(preflightProblems(source, ready)).toEqual([]);
    expect(preflightProblems(source, { ...ready, serverMajor: 15, serverVersion: '15.2' })).toEqual(
      [],
    );
  });

  it('names each missing role: owners, grantees and roles with settings in the database', () => {
    const problems = preflightProblems(source, { ...ready, roles: ['postgres'] });
    expect(problems).toEqual([
      { kind: 'role', name: 'app', detail: 'role app is missing (LOGIN; owns 12 object(s))' },
      {
        kind: 'role',
        name: 'reader',
        detail: 'role reader is missing (NOLOGIN; granted on 3, named in 1 policy(ies))',
      },
      {
        kind: 'role',
        name: 'reporting',
        detail: 'role reporting is missing (has settings in the database)',
      },
    ]);
  });

  it('names an extension not installed, and one without an update path from the source version', () => {
    const { citext: _, ...withoutCitext } = ready.extensions;
    expect(names({ ...ready, extensions: withoutCitext })).toEqual(['extension citext']);
    const older = { ...ready.extensions, citext: { defaultVersion: '1.4', reachable: false } };
    const [problem] = preflightProblems(source, { ...ready, extensions: older });
    expect(problem?.detail).toBe(
      "extension citext: the destination's version 1.4 has no update path from the source's 1.6",
    );
  });

  it('refuses a destination of an older major', () => {
    const [problem, ...rest] = preflightProblems(source, {
      ...ready,
      serverMajor: 14,
      serverVersion: '14.11',
    });
    expect(rest).toEqual([]);
    expect(problem).toMatchObject({ kind: 'version', name: 'server' });
    expect(problem?.detail).toMatch(/PostgreSQL 14\.11, older than the source's 15\.18/);
  });

  it('names an encoding, a locale provider, a collation or ctype that differ', () => {
    const db = needs.database;
    expect(names({ ...ready, database: { ...db, encoding: 'LATIN1' } })).toEqual([
      'encoding encoding',
    ]);
    const icu = { ...db, localeProvider: 'icu', locale: 'en-US' };
    expect(preflightProblems(source, { ...ready, database: icu })[0]?.detail).toBe(
      'the source sorts text with libc, the destination with icu (en-US): text would sort differently',
    );
    expect(names({ ...ready, database: { ...db, collate: 'en_US.UTF-8', ctype: 'C' } })).toEqual([
      'locale collate',
      'locale ctype',
    ]);
  });

  it('lists every problem at once, in a stable order', () => {
    expect(
      names({
        serverVersion: '14.11',
        serverMajor: 14,
        roles: [],
        extensions: {},
        database: { ...needs.database, encoding: 'SQL_ASCII' },
      }),
    ).toEqual([
      'version server',
      'role app',
      'role reader',
      'role reporting',
      'extension citext',
      'extension plpgsql',
      'encoding encoding',
    ]);
  });
});
