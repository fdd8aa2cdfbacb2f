import {
  isKeywordValueConnectionString,
  parseKeywordValueConnectionString,
} from '@databases/pg-connection-string';
import { parse as parseConnectionString } from 'pg-connection-string';
import type { ClientConfig } from 'pg';
import pgpass from 'pgpass';
import { ConfigError, errorMessage } from './errors.js';
import { registerSecret } from './secrets.js';

/**
 * Where a database lives, resolved once from --database-url, DATABASE_URL or
 * the libpq PG* variables. The password is held here and handed to pg and to
 * the PostgreSQL tools through the environment, never on a command line.
 */
export interface Target {
  host: string;
  port: number;
  user: string;
  database: string;
  password: string | undefined;
  sslmode: string | undefined;
  /** Server options for every session (libpq `options`), e.g. `-c default_transaction_read_only=off`. */
  options?: string;
}

/** The server as lifeboat reaches it, `host:port`: what keys the ledger of databases it creates there. */
export function serverOf(target: Target): string {
  return `${target.host}:${target.port}`;
}

export function resolveTarget(
  connection: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Target {
  const given = connection ?? env.DATABASE_URL;
  const named = given === undefined ? {} : parseConnection(given);
  // libpq's order: what the connection string says, then the PG* variables, then defaults.
  const user = named.user || env.PGUSER || env.USER || 'postgres';
  const port = Number(named.port || env.PGPORT || 5432);
  if (!Number.isInteger(port) || port <= 0 || port > 65535)
    throw new ConfigError(`The connection has an invalid port (${named.port ?? env.PGPORT}).`);
  const target: Target = {
    host: named.host || env.PGHOST || defaultHost(),
    port,
    user,
    database: named.database || env.PGDATABASE || user,
    password: named.password ?? env.PGPASSWORD,
    sslmode:
      named.sslmode !== undefined
        ? checkSslMode(
            named.sslmode,
            /^postgres(ql)?:\/\//i.test(given ?? '')
              ? 'The database URL has'
              : 'The database connection has',
          )
        : checkSslMode(env.PGSSLMODE, 'PGSSLMODE has'),
    ...(named.options ? { options: named.options } : {}),
  };
  registerSecret(target.password);
  return target;
}

/** libpq's sslmode values; anything else is a typo, not a server without SSL. */
export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'];

function checkSslMode(mode: string | undefined, from: string): string | undefined {
  if (mode === undefined || SSL_MODES.includes(mode)) return mode;
  throw new ConfigError(
    `${from} sslmode=${JSON.stringify(mode)} is not an sslmode; use one of ${SSL_MODES.join(', ')}.`,
  );
}

/**
 * A user name or password with an unencoded @, #, / or ? is cut in the wrong
 * place by every URL parser, and part of it then reads as the host. Pure;
 * looks only at the text before the last @ of the authority.
 */
export function hasUnencodedUserinfo(url: string): boolean {
  const m = /^postgres(?:ql)?:\/\/(.*)$/is.exec(url);
  if (!m) return false;
  let rest = m[1]!;
  const query = rest.search(/\?[A-Za-z_]+=/);
  if (query >= 0) rest = rest.slice(0, query);
  const at = rest.lastIndexOf('@');
  return at >= 0 && /[@#/?]/.test(rest.slice(0, at));
}

/** What a connection string names; empty values are as good as absent, as in libpq. */
interface Named {
  host?: string;
  port?: string;
  user?: string;
  database?: string;
  password?: string;
  sslmode?: string;
  options?: string;
}

/**
 * A URL (postgres:// or postgresql://) or libpq key=value pairs, read by
 * libpq's rules. Errors name keywords, never values: a value may be a password.
 */
export function parseConnection(text: string): Named {
  if (/^postgres(ql)?:\/\//i.test(text)) return parseUrl(text);
  if (isKeywordValueConnectionString(text)) return parseKeywordValue(text);
  throw new ConfigError(
    'The database connection must be a URL starting with postgres:// or postgresql:// (for example postgres://user@host:5432/db), or libpq key=value pairs (host=... dbname=...).',
  );
}

function parseUrl(url: string): Named {
  if (hasUnencodedUserinfo(url)) {
    // Never echo any of it: the part that would be shown is a piece of the password.
    throw new ConfigError(
      'The user name or password in the database URL holds an @, #, / or ? that is not percent-encoded, so the URL cannot be read as meant; write @ as %40, # as %23, / as %2F and ? as %3F (for example postgres://app:p%40ssw0rd@host/shop), or pass the password in PGPASSWORD.',
    );
  }
  let parsed: ReturnType<typeof parseConnectionString>;
  try {
    parsed = parseConnectionString(url);
  } catch (cause) {
    throw new ConfigError('The database URL is not a valid PostgreSQL connection string.', {
      cause,
    });
  }
  registerSecret(parsed.password ?? undefined);
  registerSecret(rawUrlPassword(url));
  const named: Named = {
    host: parsed.host ?? undefined,
    port: parsed.port ?? undefined,
    user: parsed.user ?? undefined,
    database: urlDatabase(url) ?? parsed.database ?? undefined,
    ...(parsed.password ? { password: parsed.password } : {}),
    ...(typeof parsed.sslmode === 'string' ? { sslmode: parsed.sslmode } : {}),
    ...(typeof parsed.options === 'string' ? { options: parsed.options } : {}),
  };
  return oneServer(named);
}

/** The database as libpq reads it: the whole path, percent-decoded (`%2F`, `%3D` too). */
function urlDatabase(url: string): string | undefined {
  try {
    const path = new URL(url).pathname.slice(1);
    return path ? decodeURIComponent(path) : undefined;
  } catch {
    return undefined;
  }
}

function rawUrlPassword(url: string): string | undefined {
  try {
    return new URL(url).password || undefined;
  } catch {
    return undefined;
  }
}

/** The libpq keywords lifeboat reads; any other is refused rather than silently ignored. */
const KEYWORDS: Record<string, keyof Named> = {
  host: 'host',
  port: 'port',
  user: 'user',
  dbname: 'database',
  password: 'password',
  sslmode: 'sslmode',
  options: 'options',
};

function parseKeywordValue(text: string): Named {
  let config: ReturnType<typeof parseKeywordValueConnectionString>;
  const unread: string[] = [];
  try {
    config = parseKeywordValueConnectionString(text, {
      env: {},
      invalidOptionMode: 'error',
      unrecognisedOptionMode: (key) => void unread.push(key),
    });
  } catch (cause) {
    // The library's messages name keywords (`Missing value for port`), not values.
    throw new ConfigError(
      `The database connection is not valid libpq key=value text: ${errorMessage(cause)}.`,
      { cause },
    );
  }
  registerSecret(config.password);
  const named: Named = {};
  for (const [keyword, value] of Object.entries(config) as [string, unknown][]) {
    const field = KEYWORDS[keyword];
    const empty = value === undefined || (Array.isArray(value) && value.length === 0);
    if (empty) continue;
    if (!field) unread.push(keyword);
    else named[field] = Array.isArray(value) ? value.map(scalar).join(',') : scalar(value);
  }
  if (unread.length > 0) {
    throw new ConfigError(
      `The database connection sets ${unread.map((k) => `"${k}"`).join(', ')}, which lifeboat does not read; give ${Object.keys(KEYWORDS).join(', ')} only (or use a postgres:// URL).`,
    );
  }
  return oneServer(named);
}

function scalar(value: unknown): string {
  return typeof value === 'string' || typeof value === 'number' ? String(value) : '';
}

/** lifeboat backs up and restores one server: a list of hosts is refused, not half-used. */
function oneServer(named: Named): Named {
  if (named.host?.includes(',') || named.port?.includes(',')) {
    throw new ConfigError(
      'The database connection names several hosts; lifeboat works on one server at a time, so name one host.',
    );
  }
  return named;
}

/**
 * The server verification restores on: `scratchUrl`, else the target's. The
 * target's password goes only to the target's own server: a scratch server
 * elsewhere gets the password its URL gives, or none (its ~/.pgpass entry).
 */
export function scratchServer(
  scratchUrl: string | undefined,
  target: Target,
  env: NodeJS.ProcessEnv = process.env,
): Target {
  if (!scratchUrl) return target;
  const scratch = resolveTarget(scratchUrl, {
    ...env,
    PGPASSWORD: undefined,
    DATABASE_URL: undefined,
  });
  if (scratch.password !== undefined || !sameServer(scratch, target)) return scratch;
  return { ...scratch, password: target.password };
}

function sameServer(a: Target, b: Target): boolean {
  return a.host.toLowerCase() === b.host.toLowerCase() && a.port === b.port;
}

function defaultHost(): string {
  return 'localhost';
}

/** The same server, another database. */
export function withDatabase(target: Target, database: string): Target {
  return { ...target, database };
}

/** A description safe to print: user@host:port/database, never the password. */
export function describeTarget(target: Target): string {
  const host = target.host.startsWith('/') ? `[${target.host}]` : target.host;
  return `${target.user}@${host}:${target.port}/${target.database}`;
}

export function clientConfig(target: Target, applicationName = 'lifeboat'): ClientConfig {
  const ssl =
    target.sslmode && !['disable', 'allow', 'prefer'].includes(target.sslmode)
      ? { rejectUnauthorized: ['verify-ca', 'verify-full'].includes(target.sslmode) }
      : undefined;
  return {
    host: target.host,
    port: target.port,
    user: target.user,
    // Never pg's own fallback to PGPASSWORD: resolveTarget alone decides which password goes where.
    password: target.password ?? (() => passwordFile(target)),
    database: target.database,
    ssl,
    application_name: applicationName,
    connectionTimeoutMillis: 10_000,
    ...(target.options ? { options: target.options } : {}),
  };
}

/** The ~/.pgpass (PGPASSFILE) entry for this server, as libpq would read it. */
function passwordFile(target: Target): Promise<string> {
  return new Promise((resolve) =>
    pgpass(
      { host: target.host, port: target.port, database: target.database, user: target.user },
      // No entry: an empty password, which the server refuses as it refuses a wrong one.
      (password) => resolve(password ?? ''),
    ),
  );
}

/**
 * The database for pg_dump and pg_restore's argv: a quoted connection value
 * (`--dbname=dbname='...'`), so a name like `--file=/tmp/x` or `host=elsewhere`
 * is only ever a database name. Everything else travels in libpqEnv.
 */
export function dbnameArgument(database: string): string {
  return `--dbname=dbname='${database.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** libpq environment for pg_dump, pg_restore and psql; the password travels here, not in argv. */
export function libpqEnv(target: Target): Record<string, string> {
  const env: Record<string, string> = {
    PGHOST: target.host,
    PGPORT: String(target.port),
    PGUSER: target.user,
    PGDATABASE: target.database,
    PGCONNECT_TIMEOUT: '10',
    PGAPPNAME: 'lifeboat',
  };
  if (target.password !== undefined) env.PGPASSWORD = target.password;
  if (target.sslmode) env.PGSSLMODE = target.sslmode;
  if (target.options) env.PGOPTIONS = target.options;
  return env;
}

/** `postgresql://user@host:port/db`, never with the password. */
export function connectionString(target: Target): string {
  const params = new URLSearchParams();
  let authority: string;
  if (target.host.startsWith('/')) {
    authority = '';
    params.set('host', target.host);
    params.set('port', String(target.port));
  } else {
    const host = target.host.includes(':') ? `[${target.host}]` : target.host;
    authority = `${host}:${target.port}`;
  }
  if (target.sslmode) params.set('sslmode', target.sslmode);
  const query = params.size > 0 ? `?${params.toString()}` : '';
  return `postgresql://${encodeURIComponent(target.user)}@${authority}/${encodeURIComponent(target.database)}${query}`;
}
