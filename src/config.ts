import { readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { lilconfig } from 'lilconfig';
import * as z from 'zod';
import { ConfigError } from './errors.js';
import { isRecipient } from './repository/age.js';
import { exists } from './files.js';
import { parseS3Url, type Destination } from './repository/storage/destination.js';
import {
  crossProblems,
  defaultDestinationName,
  formatConfigProblems,
  schemaProblems,
  type ConfigLocator,
  type ConfigProblem,
} from './config-problems.js';
import { isTextConfig, parseConfigText } from './config-source.js';
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

/** A duration with its unit and longer than zero: `maxAge: 24` is refused, not read as 24 ms. */
const duration = z.unknown().transform((v, ctx) => {
  const millis = parseDuration(v);
  if (typeof millis === 'string') {
    ctx.addIssue({ code: 'custom', message: millis });
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
  compression: z.number().int().min(0).max(9).optional(),
  scratchUrl: z.string().optional(),
  restoreRole: z.string().min(1).optional(),
  pgBinDir: z.string().optional(),
  retention: z
    .strictObject({ keep: z.number().int().min(1).optional(), reports: duration.optional() })
    .optional(),
});

/** Every key the format knows, for "did you mean" on an unknown one. */
const KNOWN_KEYS = [
  ...Object.keys(configSchema.shape),
  ...Object.keys(configSchema.shape.policy.unwrap().shape),
  ...Object.keys(destinationSchema.shape),
  'recipients',
  'recipientsFile',
];

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
  /** pg_dump --compress level of the dump files (0 to 9); undefined: pg_dump's own default. */
  compression: number | undefined;
  scratchUrl: string | undefined;
  /** The role that restores scratch copies; default: one lifeboat creates (see src/restore/restore-role.ts). */
  restoreRole: string | undefined;
  /** Its password (LIFEBOAT_RESTORE_PASSWORD); never printed. */
  restorePassword: string | undefined;
  pgBinDir: string | undefined;
  keep: number;
  /** `backups prune` removes reports about no backup once older than this (retention.reports). */
  reportsMaxAgeMs: number;
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

const textLoader = (file: string, content: string): unknown =>
  parseConfigText(path.relative(process.cwd(), file) || file, content).raw;
const loaders = { '.json': textLoader, '.yaml': textLoader, '.yml': textLoader };

export async function loadConfig(
  overrides: ConfigOverrides = {},
  cwd = process.cwd(),
  env: NodeJS.ProcessEnv = process.env,
): Promise<Config> {
  const explorer = lilconfig('lifeboat', { searchPlaces: CONFIG_NAMES, loaders, cache: false });
  const named = overrides.config
    ? path.resolve(cwd, overrides.config)
    : await findConfig(cwd, env.HOME || os.homedir());
  let found: { filepath: string; config: unknown } | null = null;
  if (named) {
    try {
      found = await explorer.load(named);
    } catch (cause) {
      if (cause instanceof ConfigError) throw cause;
      const reason = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
      throw new ConfigError(`Cannot read ${overrides.config ?? named}: ${reason}`, { cause });
    }
  }
  const file = found?.filepath;
  // Problems name their line: the text is read again only when there is one to locate.
  let locate: ConfigLocator | undefined;
  if (file && isTextConfig(file)) {
    const text = await readFile(file, 'utf8');
    locate = (at, atKey) => parseConfigText(file, text).locate(at, atKey);
  }
  return buildConfig(found?.config ?? {}, file, overrides, cwd, env, locate);
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

/**
 * Pure: raw values + flags + env → a validated Config, or every problem at
 * once, each with its line and column when `locate` can find it.
 */
export function buildConfig(
  raw: unknown,
  file: string | undefined,
  overrides: ConfigOverrides,
  cwd: string,
  env: NodeJS.ProcessEnv,
  locate?: ConfigLocator,
): Config {
  const parsed = configSchema.safeParse(raw ?? {}, { reportInput: true });
  const found: ConfigProblem[] = [
    ...(parsed.success ? [] : schemaProblems(parsed.error.issues, KNOWN_KEYS)),
    ...crossProblems(raw, overrides),
  ];
  const data = parsed.success ? parsed.data : {};
  let maxAgeMs = data.policy?.maxAge ?? 24 * 3600_000;
  if (overrides.maxAge !== undefined) {
    const v = parseDuration(overrides.maxAge);
    if (typeof v === 'string') found.push({ path: [], message: `--max-age: ${v}` });
    else maxAgeMs = v;
  }
  const copies = overrides.copies ?? data.policy?.copies ?? 1;
  if (!Number.isInteger(copies) || copies < 1)
    found.push({ path: [], message: '--copies: must be a whole number ≥ 1' });
  const jobs = overrides.jobs ?? data.jobs ?? 2;
  if (!Number.isInteger(jobs) || jobs < 1)
    found.push({ path: [], message: '--jobs: must be a whole number ≥ 1' });
  if (found.length > 0) {
    const where = file ? path.relative(cwd, file) || file : undefined;
    throw new ConfigError(
      `The configuration${where ? ` ${where}` : ''} has ${found.length} problem${found.length > 1 ? 's' : ''}.`,
      { details: formatConfigProblems(found, where, locate) },
    );
  }

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
          name: d.name ?? defaultDestinationName(i, true),
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
        name: d.name ?? defaultDestinationName(i, false),
        kind: 'local',
        path: path.resolve(base, d.path!),
        ...common,
      };
    },
  );
  return {
    file,
    databaseUrl: overrides.databaseUrl ?? data.databaseUrl,
    destinations,
    maxAgeMs,
    copies,
    requireOffsite: overrides.requireOffsite ?? data.policy?.requireOffsite ?? false,
    jobs,
    compression: data.compression,
    scratchUrl: overrides.scratchUrl ?? data.scratchUrl ?? env.LIFEBOAT_SCRATCH_URL,
    restoreRole: data.restoreRole,
    restorePassword: env.LIFEBOAT_RESTORE_PASSWORD || undefined,
    pgBinDir: data.pgBinDir ?? env.LIFEBOAT_PG_BINDIR,
    keep: data.retention?.keep ?? 7,
    reportsMaxAgeMs: data.retention?.reports ?? 90 * 24 * 3600_000,
    signingKey: env.LIFEBOAT_SIGNING_KEY || undefined,
  };
}
