import { createHash } from 'node:crypto';

/**
 * The objects of a schema description (fingerprint.ts, one object a line),
 * named and hashed one by one, so that a later difference can be named.
 */

/** `relation public.items`, `index items_name_idx on public.items`: what a schema line describes. */
export function schemaObjectName(line: string): string {
  const [kind = '', name = '', third = ''] = line.split(' ');
  if (kind === 'index') {
    const m = / INDEX (?:CONCURRENTLY )?(?:IF NOT EXISTS )?(\S+) ON (?:ONLY )?(\S+)/.exec(line);
    return m ? `index ${m[1]} on ${m[2]}` : 'index';
  }
  if (kind === 'trigger') {
    const m = / TRIGGER (\S+) .* ON (\S+)/.exec(line);
    return m ? `trigger ${m[1]} on ${m[2]}` : 'trigger';
  }
  if (kind === 'rule') {
    const m = / RULE (\S+) AS\s+ON \S+ TO (\S+)/.exec(line);
    return m ? `rule ${m[1]} on ${m[2]}` : 'rule';
  }
  if (kind === 'constraint' || kind === 'policy') return `${kind} ${third} on ${name}`;
  return `${kind} ${name}`;
}

/** Each schema line as `<hash> <object>`: what a manifest keeps to name a later change. */
export function schemaObjects(lines: readonly string[]): string[] {
  return lines.map(
    (l) => `${createHash('sha256').update(l).digest('hex').slice(0, 16)} ${schemaObjectName(l)}`,
  );
}
