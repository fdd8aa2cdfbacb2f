import { isSecretVariable } from './secrets.js';
import { connectionString, libpqEnv, type Target } from './target.js';

/**
 * The environment a step runs in: lifeboat's own, less its secrets (the
 * signing key, age identities, cloud credentials) unless the step names
 * them, and with every way of finding a database (DATABASE_URL, the PG*
 * variables) leading to the database the step works on: the target in a
 * run, the scratch copy in a rehearsal. DATABASE_URL carries no password;
 * PGPASSWORD does, as libpq expects.
 */
const CONNECTION_VARIABLES = [
  'DATABASE_URL',
  'PGHOST',
  'PGHOSTADDR',
  'PGPORT',
  'PGDATABASE',
  'PGUSER',
  'PGPASSWORD',
  'PGPASSFILE',
  'PGSERVICE',
  'PGSERVICEFILE',
  'PGOPTIONS',
  'PGSSLMODE',
  'PGAPPNAME',
];

export function stepEnvironment(
  target: Target,
  opts: { runId: string; secrets?: readonly string[]; applicationName?: string },
  env: NodeJS.ProcessEnv = process.env,
): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(env)) {
    if (CONNECTION_VARIABLES.includes(name)) continue;
    if (isSecretVariable(name) && !opts.secrets?.includes(name)) continue;
    out[name] = value;
  }
  return {
    ...out,
    ...libpqEnv(target),
    ...(opts.applicationName ? { PGAPPNAME: opts.applicationName } : {}),
    DATABASE_URL: connectionString(target),
    LIFEBOAT_RUN_ID: opts.runId,
  };
}

let userUmask: number | undefined;

/** The umask lifeboat was started with, before it made its own files private. */
export function setUserUmask(mask: number): void {
  userUmask = mask;
}

/** A shell prefix that gives a step's command the user's umask, not lifeboat's private one. */
export function umaskPrefix(): string {
  return userUmask === undefined ? '' : `umask ${userUmask.toString(8).padStart(3, '0')}; `;
}

/**
 * Run in-process step code (a knex migration) with process.env set to a step
 * environment, restored afterwards: code that reads process.env finds the
 * same database and the same absence of secrets as a shell step.
 */
export async function withProcessEnv<T>(env: NodeJS.ProcessEnv, fn: () => Promise<T>): Promise<T> {
  const saved = { ...process.env };
  replaceEnv(env);
  try {
    return await fn();
  } finally {
    replaceEnv(saved);
  }
}

function replaceEnv(env: NodeJS.ProcessEnv): void {
  for (const name of Object.keys(process.env)) if (!(name in env)) delete process.env[name];
  for (const [name, value] of Object.entries(env))
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
}
