import path from 'node:path';
import { lilconfig } from 'lilconfig';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { parseDuration } from './units.js';

/**
 * lifeboat.config.{json,yaml,yml,js,mjs,cjs}, found upward from the cwd,
 * validated once into `Config`; every problem is reported together.
 */
export const CONFIG_NAMES = [
  'lifeboat.config.json',
  'lifeboat.config.yaml',
  'lifeboat.config.yml',
  'lifeboat.config.js',
  'lifeboat.config.mjs',
  'lifeboat.config.cjs',
];

const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const millis = parseDuration(v);
  if (millis === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration (write 90s, 15m, 1h, 7d)` });
    return z.NEVER;
  }
  return millis;
});

const destinationSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'use letters, digits, dot, dash, underscore')
    .optional(),
  path: z.string().min(1),
});

const configSchema = z.strictObject({
  databaseUrl: z.string().optional(),
  destinations: z.array(destinationSchema).min(1, 'at least one destination is needed').optional(),
  policy: z
    .strictObject({
      maxAge: duration.optional(),
      copies: z.number().int().min(1).optional(),
    })
    .optional(),
  jobs: z.number().int().min(1).max(64).optional(),
  scratchUrl: z.string().optional(),
  pgBinDir: z.string().optional(),
  retention: z.strictObject({ keep: z.number().int().min(1) }).optional(),
});

export interface Destination {
  name: string;
  path: string;
}

export interface Config {
  /** The file it came from, or undefined for the built-in defaults. */
  file: string | undefined;
  databaseUrl: string | undefined;
  destinations: Destination[];
  maxAgeMs: number;
  copies: number;
  jobs: number;
  scratchUrl: string | undefined;
  pgBinDir: string | undefined;
  keep: number;
  /** Key for HMAC-signing manifests (LIFEBOAT_SIGNING_KEY); never printed. */
  signingKey: string | undefined;
}

export interface ConfigOverrides {
  config?: string;
  databaseUrl?: string;
  maxAge?: string;
  copies?: number;
  jobs?: number;
  scratchUrl?: string;
}

export const DEFAULT_DESTINATION = '.lifeboat/backups';

const loaders = {
  '.yaml': (_file: string, content: string): unknown => parseYaml(content),
  '.yml': (_file: string, content: string): unknown => parseYaml(content),
};

export async function loadConfig(
  overrides: ConfigOverrides = {},
  cwd = process.cwd(),
  env: NodeJS.ProcessEnv = process.env,
): Promise<Config> {
  const explorer = lilconfig('lifeboat', {
    searchPlaces: CONFIG_NAMES,
    stopDir: path.parse(cwd).root,
    loaders,
    cache: false,
  });
  let found: { filepath: string; config: unknown } | null;
  try {
    found = overrides.config
      ? await explorer.load(path.resolve(cwd, overrides.config))
      : await explorer.search(cwd);
  } catch (cause) {
    const file = overrides.config ?? 'the lifeboat config';
    const reason = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
    throw new ConfigError(`Cannot read ${file}: ${reason}`, { cause });
  }
  return buildConfig(found?.config ?? {}, found?.filepath, overrides, cwd, env);
}

/** Pure: raw values + flags + env → a validated Config, or every problem at once. */
export function buildConfig(
  raw: unknown,
  file: string | undefined,
  overrides: ConfigOverrides,
  cwd: string,
  env: NodeJS.ProcessEnv,
): Config {
  const problems: string[] = [];
  const where = file ? path.relative(cwd, file) || file : 'config';
  const parsed = configSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const at = issue.path.length ? issue.path.join('.') : '(top level)';
      problems.push(`${where}: ${at}: ${issue.message}`);
    }
  }
  const data = parsed.success ? parsed.data : {};
  let maxAgeMs = data.policy?.maxAge ?? 24 * 3600_000;
  if (overrides.maxAge !== undefined) {
    const v = parseDuration(overrides.maxAge);
    if (v === undefined)
      problems.push(`--max-age: "${overrides.maxAge}" is not a duration (write 90s, 15m, 1h, 7d)`);
    else maxAgeMs = v;
  }
  const copies = overrides.copies ?? data.policy?.copies ?? 1;
  if (!Number.isInteger(copies) || copies < 1)
    problems.push('--copies: must be a whole number ≥ 1');
  const jobs = overrides.jobs ?? data.jobs ?? 2;
  if (!Number.isInteger(jobs) || jobs < 1) problems.push('--jobs: must be a whole number ≥ 1');

  const base = file ? path.dirname(file) : cwd;
  const destinations = (data.destinations ?? [{ path: DEFAULT_DESTINATION }]).map((d, i) => ({
    name: d.name ?? (i === 0 ? 'local' : `local${i + 1}`),
    path: path.resolve(base, d.path),
  }));
  const names = new Set<string>();
  for (const d of destinations) {
    if (names.has(d.name))
      problems.push(`${where}: destinations: the name "${d.name}" is used twice`);
    names.add(d.name);
  }
  if (copies > destinations.length) {
    problems.push(
      `copies is ${copies} but only ${destinations.length} destination(s) are configured; add destinations or lower copies`,
    );
  }
  if (problems.length > 0) {
    throw new ConfigError(
      `The configuration has ${problems.length} problem${problems.length > 1 ? 's' : ''}.`,
      { details: problems },
    );
  }
  return {
    file,
    databaseUrl: overrides.databaseUrl ?? data.databaseUrl,
    destinations,
    maxAgeMs,
    copies,
    jobs,
    scratchUrl: overrides.scratchUrl ?? data.scratchUrl ?? env.LIFEBOAT_SCRATCH_URL,
    pgBinDir: data.pgBinDir ?? env.LIFEBOAT_PG_BINDIR,
    keep: data.retention?.keep ?? 7,
    signingKey: env.LIFEBOAT_SIGNING_KEY || undefined,
  };
}
