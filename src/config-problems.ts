import type { z } from 'zod';
import { closestWord } from './runbook/closest-word.js';

/**
 * What is wrong with a configuration, as pure functions of its raw data: the
 * schema's issues in plain words (with "did you mean" for unknown keys), and
 * the rules across keys (unique destination names, enough destinations for
 * `copies`), which are checked even when a value elsewhere has the wrong type,
 * so that every problem shows at once.
 */
export interface ConfigProblem {
  /** Where in the file: `policy.maxAge` is ['policy', 'maxAge']. */
  path: (string | number)[];
  message: string;
  /** Point at the key rather than its value (an unknown key). */
  atKey?: boolean;
}

/** Finds the line and column of a path in the file, when the file is text (JSON or YAML). */
export type ConfigLocator = (
  path: (string | number)[],
  atKey: boolean,
) => { line: number; column: number };

export function schemaProblems(
  issues: readonly z.core.$ZodIssue[],
  knownKeys: readonly string[],
): ConfigProblem[] {
  return issues.flatMap((issue): ConfigProblem[] => {
    const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => {
        const hint = closestWord(key, knownKeys);
        return {
          path: [...path, key],
          atKey: true,
          message: `unknown key "${key}"${hint ? `; did you mean "${hint}"?` : ''}`,
        };
      });
    }
    return [{ path, message: plainMessage(issue) }];
  });
}

function plainMessage(issue: z.core.$ZodIssue): string {
  const got = 'input' in issue ? ` (got ${shown(issue.input)})` : '';
  switch (issue.code) {
    case 'invalid_type':
      return issue.input === undefined
        ? `is required (${issue.expected})`
        : `should be ${article(issue.expected)}${got}`;
    case 'too_small':
      return issue.origin === 'array'
        ? `needs at least ${String(issue.minimum)} item(s)`
        : `should be at least ${String(issue.minimum)}${got}`;
    case 'too_big':
      return `should be at most ${String(issue.maximum)}${got}`;
    default:
      return `${issue.message}${issue.code === 'custom' ? '' : got}`;
  }
}

function article(type: string): string {
  if (type === 'int') return 'a whole number';
  if (type === 'object') return 'a mapping (key: value)';
  if (type === 'array') return 'a list';
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** The default name of the i-th destination, as the built config will give it. */
export function defaultDestinationName(i: number, remote: boolean): string {
  if (remote) return i === 0 ? 's3' : `s3-${i + 1}`;
  return i === 0 ? 'local' : `local${i + 1}`;
}

/**
 * Rules across keys, read from the raw data so that they are reported next
 * to any type error. `copies` and `requireOffsite` may come from flags.
 */
export function crossProblems(
  raw: unknown,
  flags: { copies?: number; requireOffsite?: boolean },
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const data = isRecord(raw) ? raw : {};
  const list = Array.isArray(data.destinations) ? (data.destinations as unknown[]) : undefined;
  const destinations = (list ?? [{}]).map((d, i) => {
    const item = isRecord(d) ? d : {};
    const remote = typeof item.url === 'string';
    const name = typeof item.name === 'string' ? item.name : defaultDestinationName(i, remote);
    return { name, remote, named: typeof item.name === 'string' };
  });
  const seen = new Map<string, number>();
  destinations.forEach((d, i) => {
    const first = seen.get(d.name);
    if (first === undefined) return void seen.set(d.name, i);
    problems.push({
      path: ['destinations', i, ...(d.named ? ['name'] : [])],
      message: `the name "${d.name}" is already used by destinations[${first}]; give each destination its own name`,
    });
  });
  const policy = isRecord(data.policy) ? data.policy : {};
  const copies = flags.copies ?? policy.copies;
  if (typeof copies === 'number' && Number.isInteger(copies) && copies > destinations.length) {
    problems.push({
      path: flags.copies === undefined ? ['policy', 'copies'] : [],
      message: `${flags.copies === undefined ? '' : '--copies: '}${copies} copies are required but only ${destinations.length} destination(s) are configured; add destinations or lower copies`,
    });
  }
  const offsite = flags.requireOffsite ?? policy.requireOffsite;
  if (offsite === true && !destinations.some((d) => d.remote)) {
    problems.push({
      path: flags.requireOffsite === undefined ? ['policy', 'requireOffsite'] : [],
      message: 'an off-site copy is required but no destination has an s3:// url',
    });
  }
  return problems;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `policy.maxAge`, `destinations[1].name`. */
export function keyLabel(path: readonly (string | number)[]): string {
  return path.reduce<string>((acc, seg) => {
    if (typeof seg === 'number') return `${acc}[${seg}]`;
    return acc === '' ? seg : `${acc}.${seg}`;
  }, '');
}

/**
 * One line per problem: `file:line:column: key: message` when the file is
 * text, `file: key: message` otherwise (a .js config), the key alone for the
 * built-in defaults, and the flag itself for a problem with a flag.
 */
export function formatConfigProblems(
  problems: readonly ConfigProblem[],
  file: string | undefined,
  locate: ConfigLocator | undefined,
): string[] {
  const located = problems.map((p) => {
    const key = keyLabel(p.path);
    const text = key && !p.message.startsWith('--') ? `${key}: ${p.message}` : p.message;
    if (!file || p.path.length === 0) return { line: 0, column: 0, text };
    if (!locate) return { line: 0, column: 0, text: `${file}: ${text}` };
    const at = locate(p.path, p.atKey ?? false);
    return { ...at, text: `${file}:${at.line}:${at.column}: ${text}` };
  });
  return located.sort((a, b) => a.line - b.line || a.column - b.column).map((p) => p.text);
}
