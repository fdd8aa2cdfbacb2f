import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { Fingerprints } from './fingerprint.js';
import { describeSchema } from './fingerprint.js';
import { withClient } from './db.js';
import { schemaObjects } from './schema-objects.js';
import { inRolledBackSnapshot } from './snapshot.js';
import type { Target } from './target.js';
import { JOURNAL_SCHEMA } from './run/journal.js';

/**
 * Whether the live schema is still the one a backup holds. A backup taken
 * before a column was added is no base for a rehearsal (its steps would meet
 * a schema that no longer exists) nor for a rollback by restore. lifeboat's
 * own journal schema is left out on both sides: a run creates it for good.
 */
export interface SchemaDrift {
  changed: boolean;
  /** What differs, as far as the backup recorded it: `relation public.items changed`. */
  changes: string[];
}

function inJournal(object: string): boolean {
  return object === `schema ${JOURNAL_SCHEMA}` || object.includes(`${JOURNAL_SCHEMA}.`);
}

/**
 * Pure: the backup's fingerprints against the live schema's lines. The same
 * when the backup's schema hash is the live one's, with or without the journal.
 */
export function compareSchema(backup: Fingerprints, liveLines: readonly string[]): SchemaDrift {
  const live = schemaObjects(liveLines);
  const withoutJournal = liveLines.filter((_, i) => !inJournal(live[i]!.slice(17)));
  const same = [liveLines, withoutJournal].some(
    (lines) => createHash('sha256').update(lines.join('\n')).digest('hex') === backup.schemaHash,
  );
  if (same) return { changed: false, changes: [] };
  if (!backup.schemaObjects) {
    return {
      changed: true,
      changes: ['the schema fingerprint differs (this backup predates the record of its objects)'],
    };
  }
  const split = (entries: readonly string[]): Map<string, Set<string>> => {
    const byObject = new Map<string, Set<string>>();
    for (const e of entries) {
      const object = e.slice(17);
      if (inJournal(object)) continue;
      byObject.set(object, (byObject.get(object) ?? new Set()).add(e.slice(0, 16)));
    }
    return byObject;
  };
  const before = split(backup.schemaObjects);
  const now = split(live);
  const changes: string[] = [];
  for (const [object, hashes] of now) {
    const old = before.get(object);
    if (!old) changes.push(`${object} added`);
    else if ([...hashes].some((h) => !old.has(h)) || old.size !== hashes.size)
      changes.push(`${object} changed`);
  }
  for (const object of before.keys()) if (!now.has(object)) changes.push(`${object} removed`);
  return { changed: true, changes };
}

/**
 * Read the live schema of `target` and compare it with a backup's fingerprints.
 * Reads only. On `session` (a run's own, sparing a connection) it reads inside
 * a transaction it rolls back, which undoes the output settings it pins.
 */
export async function readSchemaDrift(
  target: Target,
  backup: Fingerprints,
  session?: pg.ClientBase,
): Promise<SchemaDrift> {
  const lines = session
    ? await inRolledBackSnapshot(session, () => describeSchema(session))
    : await withClient(target, (client) => describeSchema(client));
  return compareSchema(backup, lines);
}
