import { closestWord } from '../runbook/closest-word.js';

/**
 * yargs' usage errors, made to say what to type instead. Pure: the message
 * yargs gave, the words on the command line, and what the command knows.
 */
export function usageMessage(
  message: string,
  args: readonly string[],
  known: { options: readonly string[]; commands: readonly string[] },
): string {
  // `--max-age -1h` reads to yargs as the flags -1 and -h; say what is really wrong.
  const negative = args.find((a) => /^-\d/.test(a));
  if (negative !== undefined) {
    return `${negative} is not a value lifeboat takes: durations and counts are written without a sign (for example --max-age 6h).`;
  }
  const unknown = /^Unknown arguments?: (.*)$/s.exec(message);
  if (!unknown) return `${message} (see lifeboat --help)`;
  const names = unknown[1]!.split(', ');
  // yargs names a flag twice, as typed and camelCased; keep the one typed.
  const typed = names.filter((n) => !(/[A-Z]/.test(n) && names.includes(kebab(n))));
  return typed
    .map((name) => {
      // yargs reports `--no-verfy` as `verfy`: find the word as it was typed.
      const typedAs = args.find((a) => /^--?/.test(a) && flagName(a) === name);
      const negated = args.find((a) => flagName(a) === `no-${name}`);
      const flag = typedAs ?? negated;
      const hint = closestWord(name, flag ? known.options : known.commands);
      const prefix = negated && !typedAs ? '--no-' : '--';
      const suggestion = hint ? `; did you mean ${flag ? `${prefix}${hint}` : hint}?` : '';
      return `Unknown ${flag ? 'option' : 'argument'} ${flag ?? name}${suggestion}`;
    })
    .join('. ')
    .concat(' (see lifeboat --help)');
}

function flagName(arg: string): string {
  return arg.replace(/^--?/, '').split('=')[0]!;
}

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/**
 * An option that takes a value but was given none (`--copies` at the end, or
 * followed by another flag): yargs leaves it empty or undefined and the
 * command would run on its default. Returns the first such flag as typed.
 */
export function missingValue(
  args: readonly string[],
  parsed: Record<string, unknown>,
): string | undefined {
  for (const [i, arg] of args.entries()) {
    const m = /^--([a-z][a-z0-9-]*)$/.exec(arg);
    if (!m || m[1]!.startsWith('no-')) continue;
    const next = args[i + 1];
    if (next !== undefined && !next.startsWith('-')) continue;
    const value = parsed[camel(m[1]!)];
    const empty =
      value === '' ||
      value === undefined ||
      (typeof value === 'number' && Number.isNaN(value)) ||
      (Array.isArray(value) && value.length === 0);
    if (empty) return arg;
  }
  return undefined;
}

function camel(name: string): string {
  return name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}
