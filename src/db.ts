import pg from 'pg';
import { ConnectionError } from './errors.js';
import { redact } from './secrets.js';
import { clientConfig, describeTarget, type Target } from './target.js';

export type Client = pg.Client;

/** Connect, turning the driver's failures into one sentence a user can act on. */
export async function connect(target: Target, applicationName?: string): Promise<pg.Client> {
  const client = new pg.Client(clientConfig(target, applicationName));
  // A connection that dies later (server restart, pg_terminate_backend) must not crash the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (cause) {
    await client.end().catch(() => undefined);
    throw connectionError(target, cause);
  }
  return client;
}

export async function withClient<T>(
  target: Target,
  fn: (client: pg.Client) => Promise<T>,
  applicationName?: string,
): Promise<T> {
  const client = await connect(target, applicationName);
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export function connectionError(target: Target, cause: unknown): ConnectionError {
  const where = describeTarget(target);
  const err = cause as { code?: string; message?: string };
  const code = err.code;
  let reason: string;
  if (code === 'ECONNREFUSED') reason = 'connection refused (is the server running?)';
  else if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') reason = 'the host name does not resolve';
  else if (code === 'ENOENT') reason = 'no server socket at that path';
  else if (code === 'ETIMEDOUT' || /timeout/i.test(err.message ?? ''))
    reason = 'the connection timed out';
  else if (code === '28P01' || code === '28000')
    reason = `authentication failed for user "${target.user}"`;
  else if (code === '3D000') reason = `database "${target.database}" does not exist`;
  else if (code === '57P03') reason = 'the server is starting up or shutting down';
  else reason = redact(err.message ?? String(cause));
  return new ConnectionError(`Cannot connect to ${where}: ${reason}.`, { cause });
}

export function quoteIdent(name: string): string {
  return pg.escapeIdentifier(name);
}

export function quoteLiteral(value: string): string {
  return pg.escapeLiteral(value);
}

/**
 * Runs SQL with `$n` parameters: lifeboat's own pg client, or knex's
 * transaction (see `sqlIn` in run/knex-migration.ts).
 */
export interface SqlRunner {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
}

/** The SQLSTATE of a server error (`42P04`, `55006`, …), if it is one. */
export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}
