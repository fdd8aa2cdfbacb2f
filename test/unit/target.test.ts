import { describe, expect, it } from 'vitest';
import { redact } from '../../src/secrets.js';
import { describeTarget, hasUnencodedUserinfo, libpqEnv, resolveTarget } from '../../src/target.js';

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

  it('refuses a password with an unencoded @ or #, never echoing a piece of it as the host', () => {
    for (const url of [
      'postgres://app:se@cret#word@127.0.0.1:5432/shop',
      'postgres://app:p@ss@db.internal/shop',
      'postgres://app:pa#ss@db.internal/shop',
      'postgres://app:a/b@db.internal/shop',
    ]) {
      let message = '';
      try {
        resolveTarget(url, {});
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message, url).toMatch(/not percent-encoded.*write @ as %40, # as %23/);
      // No piece of the password, and no host read out of it.
      expect(message).not.toMatch(/cret|p@ss|pa#ss|a\/b|ss@db/);
    }
    // Encoded, it reads as meant; a query with an @ in it is not the password's.
    expect(resolveTarget('postgres://app:se%40cret%23word@db:5/shop', {}).password).toBe(
      'se@cret#word',
    );
    expect(resolveTarget('postgres://app@db/shop?application_name=a@b', {}).host).toBe('db');
    expect(hasUnencodedUserinfo('postgres://app@/shop?host=/run/postgresql')).toBe(false);
  });

  it('refuses an sslmode libpq does not know, from the URL or PGSSLMODE', () => {
    expect(() => resolveTarget('postgres://u@h/d?sslmode=bogus', {})).toThrow(
      /The database URL has sslmode="bogus" is not an sslmode; use one of disable, allow, prefer, require, verify-ca, verify-full/,
    );
    expect(() => resolveTarget(undefined, { PGHOST: 'h', PGSSLMODE: 'on' })).toThrow(
      /PGSSLMODE has sslmode="on"/,
    );
    expect(resolveTarget('postgres://u@h/d?sslmode=verify-full', {}).sslmode).toBe('verify-full');
  });
});
