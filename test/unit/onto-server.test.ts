import { describe, expect, it } from 'vitest';
import type { ClusterNeeds, RoleNeed } from '../../src/cluster-needs.js';
import { databaseRowFromNeeds, roleStatements } from '../../src/restore/onto-server.js';

const role = (name: string, attributes: string[], memberOf: string[] = []): RoleNeed => ({
  name,
  attributes,
  memberOf,
  owns: 1,
  grantedOn: 0,
  policies: 0,
});

describe('the roles a restore onto another server creates', () => {
  it('creates each as the source had it, then grants memberships among roles that will exist', () => {
    const statements = roleStatements(
      [
        role(
          'app owner',
          ['LOGIN', 'CREATEDB', 'CONNECTION LIMIT 5', 'VALID UNTIL 2027-01-01T00:00:00Z'],
          ['readers', 'gone'],
        ),
        role('readers', ['NOLOGIN', 'NOINHERIT']),
      ],
      new Set(['postgres']),
    );
    expect(statements).toEqual([
      `create role "app owner" LOGIN CREATEDB CONNECTION LIMIT 5 VALID UNTIL '2027-01-01T00:00:00Z'`,
      'create role "readers" NOLOGIN NOINHERIT',
      'grant "readers" to "app owner"',
    ]);
  });

  it('refuses an attribute it does not know rather than writing it into SQL', () => {
    expect(() => roleStatements([role('x', ['LOGIN; drop table t'])], new Set())).toThrow(
      'The backup records an unknown role attribute: LOGIN; drop table t',
    );
  });
});

describe("the source database's row, from the manifest", () => {
  const needs: ClusterNeeds = {
    roles: [],
    settings: [
      { name: 'work_mem', value: '8MB' },
      { role: 'reader', name: 'search_path', value: 'app, public' },
      { name: 'statement_timeout', value: '5s' },
    ],
    extensions: [],
    database: {
      encoding: 'UTF8',
      collate: 'en_US.UTF-8',
      ctype: 'en_US.UTF-8',
      localeProvider: 'icu',
      locale: 'und',
    },
    owner: 'app',
  };

  it('carries the owner, the settings by role and the locale', () => {
    expect(databaseRowFromNeeds(needs, 'postgres')).toEqual({
      oid: 0,
      owner: 'app',
      connlimit: -1,
      hasAcl: false,
      grants: [],
      settings: [
        { role: null, config: ['work_mem=8MB', 'statement_timeout=5s'] },
        { role: 'reader', config: ['search_path=app, public'] },
      ],
      locale: { collate: 'en_US.UTF-8', ctype: 'en_US.UTF-8', provider: 'i', icu: 'und' },
    });
  });

  it('leaves the database to whoever restores when the backup did not record its owner', () => {
    const { owner: _, ...older } = needs;
    expect(databaseRowFromNeeds(older, 'restorer').owner).toBe('restorer');
  });
});
