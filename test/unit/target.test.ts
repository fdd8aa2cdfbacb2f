import { describe, expect, it } from 'vitest';
import { redact } from '../../src/secrets.js';
import { describeTarget, libpqEnv, resolveTarget } from '../../src/target.js';

describe('resolveTarget', () => {
  it('reads a URL and keeps the password out of every description', () => {
    const t = resolveTarget('postgres://app:s%40cret-pw@db.example:6543/shop', {});
    expect(t).toMatchObject({
      host: 'db.example',
      port: 6543,
      user: 'app',
      database: 'shop',
      password: 's@cret-pw',
    });
    expect(describeTarget(t)).toBe('app@db.example:6543/shop');
    expect(redact('failed for postgres://app:s%40cret-pw@db.example/shop')).not.toMatch(/cret-pw/);
    expect(redact('password s@cret-pw leaked')).toBe('password *** leaked');
  });

  it('falls back to DATABASE_URL, then the PG* variables', () => {
    expect(resolveTarget(undefined, { DATABASE_URL: 'postgres://u@h/d' }).database).toBe('d');
    const t = resolveTarget(undefined, {
      PGHOST: '/run/pg',
      PGPORT: '5433',
      PGUSER: 'me',
      PGDATABASE: 'x',
    });
    expect(t).toMatchObject({ host: '/run/pg', port: 5433, user: 'me', database: 'x' });
  });

  it('hands the password to the tools through the environment', () => {
    const env = libpqEnv(resolveTarget('postgres://u:pw-123@h:1/d', {}));
    expect(env).toMatchObject({
      PGHOST: 'h',
      PGPORT: '1',
      PGUSER: 'u',
      PGDATABASE: 'd',
      PGPASSWORD: 'pw-123',
    });
  });

  it('refuses a URL that is not PostgreSQL', () => {
    expect(() => resolveTarget('mysql://u@h/d', {})).toThrow(/postgres:\/\//);
  });
});
