import { parse as parseConnectionString } from 'pg-connection-string';
import type { ClientConfig } from 'pg';
import { ConfigError } from './errors.js';
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

export function resolveTarget(
  url: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Target {
  const fromUrl = url ?? env.DATABASE_URL;
  if (fromUrl) return targetFromUrl(fromUrl, env);
  const target: Target = {
    host: env.PGHOST ?? defaultHost(),
    port: Number(env.PGPORT ?? 5432),
    user: env.PGUSER ?? env.USER ?? 'postgres',
    database: env.PGDATABASE ?? env.PGUSER ?? env.USER ?? 'postgres',
    password: env.PGPASSWORD,
    sslmode: checkSslMode(env.PGSSLMODE, 'PGSSLMODE has'),
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

function targetFromUrl(url: string, env: NodeJS.ProcessEnv): Target {
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
  if (!/^postgres(ql)?:/i.test(url) && !url.includes('=')) {
    throw new ConfigError(
      'The database URL must start with postgres:// or postgresql:// (for example postgres://user@host:5432/db).',
    );
  }
  const password = parsed.password ? decodeURIComponentSafe(parsed.password) : env.PGPASSWORD;
  registerSecret(password);
  registerSecret(parsed.password ?? undefined);
  const port = Number(parsed.port || env.PGPORT || 5432);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new ConfigError(`The database URL has an invalid port (${String(parsed.port)}).`);
  }
  const user = parsed.user || env.PGUSER || env.USER || 'postgres';
  return {
    host: parsed.host || env.PGHOST || defaultHost(),
    port,
    user,
    database: parsed.database || env.PGDATABASE || user,
    password,
    sslmode:
      typeof parsed.sslmode === 'string'
        ? checkSslMode(parsed.sslmode, 'The database URL has')
        : checkSslMode(env.PGSSLMODE, 'PGSSLMODE has'),
  };
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
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
    password: target.password,
    database: target.database,
    ssl,
    application_name: applicationName,
    connectionTimeoutMillis: 10_000,
    ...(target.options ? { options: target.options } : {}),
  };
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
