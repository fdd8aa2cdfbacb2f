import * as z from 'zod';
import { MAX_TIMEOUT_MS, parseDuration } from '../units.js';
import { relativePathProblem } from './relative-path.js';
import { SECRET_VARIABLES, isSecretVariable } from '../secrets.js';

/**
 * The shape of a runbook file, key by key. Every object is strict so a typo
 * (`statment_timeout`) is reported instead of silently ignored. Rules that
 * relate several keys (one kind per step, `up` or `upFile`, unique ids) are in
 * runbook-structure.ts, so they are reported even when a shape is wrong too.
 */

export const ID_PATTERN = /^[a-z0-9][a-z0-9_-]*$/;

const identifier = z
  .string()
  .max(100, 'at most 100 characters')
  .regex(ID_PATTERN, 'use a-z, 0-9, "-" and "_", starting with a letter or digit');

function duration(max = Number.MAX_SAFE_INTEGER) {
  return z.unknown().transform((value, ctx) => {
    const millis = parseDuration(value);
    if (typeof millis === 'string') ctx.addIssue({ code: 'custom', message: millis });
    else if (millis > max) ctx.addIssue({ code: 'custom', message: 'at most 24d (2^31 - 1 ms)' });
    return typeof millis === 'number' ? millis : 0;
  });
}

const timeout = duration(MAX_TIMEOUT_MS);

const relativePath = z.string().superRefine((value, ctx) => {
  const problem = relativePathProblem(value);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
});

const text = z.string();

export const sqlSpec = z.strictObject({
  up: text.optional(),
  upFile: relativePath.optional(),
  down: text.optional(),
  downFile: relativePath.optional(),
  verify: text.optional(),
  transaction: z.boolean().optional(),
});

export const checkSpec = z.strictObject({
  query: text,
  message: z.string().optional(),
});

export const knexSpec = z.strictObject({
  directory: relativePath,
  tableName: z.string().min(1).optional(),
  schemaName: z.string().min(1).optional(),
  loadExtensions: z
    .array(z.string().regex(/^\.[A-Za-z0-9]+$/, 'an extension starts with a dot, like .cjs'))
    .min(1)
    .optional(),
  /** Per migration file name: a query returning true once it took effect (for one run outside a transaction). */
  verify: z.record(z.string(), text).optional(),
});

/** Which of lifeboat's own secrets a shell step gets, by variable name (it gets none otherwise). */
const secretName = z.string().superRefine((name, ctx) => {
  if (!isSecretVariable(name))
    ctx.addIssue({
      code: 'custom',
      message: `${name} is not one of lifeboat's own secrets (${SECRET_VARIABLES.join(', ')}, AWS_*); a step gets every other variable already`,
    });
});

export const shellSpec = z.strictObject({
  up: z.string().min(1, 'must not be empty'),
  down: z.string().min(1, 'must not be empty').optional(),
  verify: text.optional(),
  timeout: timeout.optional(),
  secrets: z.array(secretName).optional(),
});

export const STEP_KINDS = ['sql', 'check', 'knex', 'shell'] as const;

export const stepSpec = z.strictObject({
  id: identifier,
  description: z.string().optional(),
  sql: sqlSpec.optional(),
  check: checkSpec.optional(),
  knex: knexSpec.optional(),
  shell: shellSpec.optional(),
  lockTimeout: timeout.optional(),
  statementTimeout: timeout.optional(),
});

export const runbookSpec = z.strictObject({
  name: identifier,
  description: z.string().optional(),
  policy: z
    .strictObject({
      maxAge: duration().optional(),
      copies: z.number().int('a whole number').min(1, 'at least 1').optional(),
      requireOffsite: z.boolean().optional(),
    })
    .optional(),
  defaults: z
    .strictObject({ lockTimeout: timeout.optional(), statementTimeout: timeout.optional() })
    .optional(),
  steps: z.array(stepSpec).min(1, 'a runbook needs at least one step'),
});

export type RunbookSpec = z.output<typeof runbookSpec>;
export type StepSpec = z.output<typeof stepSpec>;

/** Every key the format knows, for "did you mean" hints on unknown keys. */
export const KNOWN_KEYS = [
  ...Object.keys(runbookSpec.shape),
  ...Object.keys(stepSpec.shape),
  ...Object.keys(sqlSpec.shape),
  ...Object.keys(checkSpec.shape),
  ...Object.keys(knexSpec.shape),
  ...Object.keys(shellSpec.shape),
  'maxAge',
  'copies',
];
