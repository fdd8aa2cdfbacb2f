import { stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { lilconfig } from 'lilconfig';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { isRecipient } from './storage/age.js';
import { exists } from './storage/files.js';
import { parseS3Url, type S3Location } from './storage/s3-repo.js';
import { parseDuration } from './units.js';

/**
 * lifeboat.config.{json,yaml,yml}, found upward from the cwd (see findConfig),
 * or any of these and .js/.mjs/.cjs named with --config; validated once into
 * `Config`; every problem is reported together.
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

const destinationSchema = z
  .strictObject({
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'use letters, digits, dot, dash, underscore')
      .optional(),
    path: z.string().min(1).optional(),
    url: z
      .string()
      .refine((u) => parseS3Url(u) !== undefined, 'write s3://bucket or s3://bucket/prefix')
      .optional(),
    endpoint: z.url().optional(),
    region: z.string().min(1).optional(),
    forcePathStyle: z.boolean().optional(),
    timeout: duration.optional(),
    encrypt: z
      .strictObject({
        recipients: z
          .array(z.string().refine(isRecipient, 'not an age recipient (age1...)'))
          .optional(),
        recipientsFile: z.string().min(1).optional(),
      })
      .refine(
        (e) => (e.recipients?.length ?? 0) > 0 || e.recipientsFile,
        'give recipients or recipientsFile',
      )
      .optional(),
    keep: z.number().int().min(1).optional(),
  })
  .refine((d) => (d.path === undefined) !== (d.url === undefined), {
    message: 'give either path (a directory) or url (s3://bucket/prefix), not both',
  })
  .refine(
    (d) =>
      d.url !== undefined ||
      (!d.endpoint && !d.region && d.forcePathStyle === undefined && d.timeout === undefined),
    { message: 'endpoint, region, forcePathStyle and timeout belong to an s3:// destination' },
  );

const configSchema = z.strictObject({
  databaseUrl: z.string().optional(),
  destinations: z.array(destinationSchema).min(1, 'at least one destination is needed').optional(),
  policy: z
    .strictObject({
      maxAge: duration.optional(),
      copies: z.number().int().min(1).optional(),
      requireOffsite: z.boolean().optional(),
    })
    .optional(),
  jobs: z.number().int().min(1).max(64).optional(),
  scratchUrl: z.string().optional(),
  restoreRole: z.string().min(1).optional(),
  pgBinDir: z.string().optional(),
  retention: z.strictObject({ keep: z.number().int().min(1) }).optional(),
});

export type Destination = LocalDestination | S3Destination;

interface DestinationBase {
  name: string;
  /** Encrypt this destination's copies to these age recipients (recipientsFile is read at backup time). */
  encrypt?: { recipients: string[]; recipientsFile?: string };
  /** Retention for this destination; default retention.keep. */
  keep?: number;
}

export interface LocalDestination extends DestinationBase {
  kind: 'local';
  path: string;
}

export interface S3Destination extends DestinationBase {
  kind: 's3';
  s3: S3Location;
}

export interface Config {
  /** The file it came from, or undefined for the built-in defaults. */
  file: string | undefined;
  databaseUrl: string | undefined;
  destinations: Destination[];
  maxAgeMs: number;
  copies: number;
  /** The gate and run want an intact copy in a remote (object store) destination. */
  requireOffsite: boolean;
  jobs: number;
  scratchUrl: string | undefined;
  /** The role that restores scratch copies; default: one lifeboat creates (see restore-role.ts). */
  restoreRole: string | undefined;
  /** Its password (LIFEBOAT_RESTORE_PASSWORD); never printed. */
  restorePassword: string | undefined;
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
  requireOffsite?: boolean;
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
  const explorer = lilconfig('lifeboat', { searchPlaces: CONFIG_NAMES, loaders, cache: false });
  const file = overrides.config
    ? path.resolve(cwd, overrides.config)
    : await findConfig(cwd, env.HOME || os.homedir());
  let found: { filepath: string; config: unknown } | null = null;
  if (file) {
    try {
      found = await explorer.load(file);
    } catch (cause) {
      const reason = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
      throw new ConfigError(`Cannot read ${overrides.config ?? file}: ${reason}`, { cause });
    }
  }
  return buildConfig(found?.config ?? {}, found?.filepath, overrides, cwd, env);
}

const CODE_CONFIG = /\.(js|mjs|cjs)$/;

/**
 * lifeboat.config.* upward from `cwd`, no further than the repository root
 * (a directory holding .git) or the home directory: a config elsewhere on the
 * machine is not this project's. A code config found this way is refused,
 * not run: code runs only from a file named with --config.
 */
async function findConfig(cwd: string, home: string): Promise<string | undefined> {
  for (let dir = path.resolve(cwd); ; dir = path.dirname(dir)) {
    for (const name of CONFIG_NAMES) {
      const file = path.join(dir, name);
      if (!(await isFile(file))) continue;
      if (CODE_CONFIG.test(name)) {
        const shown = path.relative(cwd, file) || file;
        throw new ConfigError(
          `${shown} is code: lifeboat runs a config file only when it is named, with --config ${shown}.`,
        );
      }
      return file;
    }
    const stop = dir === path.resolve(home) || (await exists(path.join(dir, '.git')));
    if (stop || dir === path.dirname(dir)) return undefined;
  }
}

async function isFile(file: string): Promise<boolean> {
  return stat(file).then(
    (s) => s.isFile(),
    () => false,
  );
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
  const destinations = (data.destinations ?? [{ path: DEFAULT_DESTINATION }]).map(
    (d, i): Destination => {
      const common = {
        ...(d.encrypt
          ? {
              encrypt: {
                recipients: d.encrypt.recipients ?? [],
                ...(d.encrypt.recipientsFile
                  ? { recipientsFile: path.resolve(base, d.encrypt.recipientsFile) }
                  : {}),
              },
            }
          : {}),
        ...(d.keep ? { keep: d.keep } : {}),
      };
      if (d.url) {
        const where = parseS3Url(d.url)!;
        return {
          name: d.name ?? (i === 0 ? 's3' : `s3-${i + 1}`),
          kind: 's3',
          s3: {
            ...where,
            ...(d.endpoint ? { endpoint: d.endpoint } : {}),
            ...(d.region ? { region: d.region } : {}),
            ...(d.forcePathStyle !== undefined ? { forcePathStyle: d.forcePathStyle } : {}),
            ...(d.timeout !== undefined ? { timeoutMs: d.timeout } : {}),
          },
          ...common,
        };
      }
      return {
        name: d.name ?? (i === 0 ? 'local' : `local${i + 1}`),
        kind: 'local',
        path: path.resolve(base, d.path!),
        ...common,
      };
    },
  );
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
  const offsite = overrides.requireOffsite ?? data.policy?.requireOffsite ?? false;
  if (offsite && !destinations.some((d) => d.kind === 's3'))
    problems.push('requireOffsite is set but no s3:// destination is configured');
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
    requireOffsite: overrides.requireOffsite ?? data.policy?.requireOffsite ?? false,
    jobs,
    scratchUrl: overrides.scratchUrl ?? data.scratchUrl ?? env.LIFEBOAT_SCRATCH_URL,
    restoreRole: data.restoreRole,
    restorePassword: env.LIFEBOAT_RESTORE_PASSWORD || undefined,
    pgBinDir: data.pgBinDir ?? env.LIFEBOAT_PG_BINDIR,
    keep: data.retention?.keep ?? 7,
    signingKey: env.LIFEBOAT_SIGNING_KEY || undefined,
  };
}
