import type { Destination } from './storage/destination.js';
import { BadInputError } from '../errors.js';
import { storageReason } from './storage/reasons.js';
import { withClient } from '../db.js';
import { readIdentity, sameTarget, type TargetIdentity } from '../identity.js';
import { describeTarget, type Target } from '../target.js';
import type { DrillRecord, Manifest, RehearsalRecord, VerificationRecord } from './manifest.js';
import {
  DRILLS_DIR,
  REHEARSALS_DIR,
  listCopies,
  readManifest,
  readRecords,
  readVerifications,
  type StoredCopy,
} from './copies.js';

/**
 * The repository seen as a whole: every backup id with its copies across all
 * destinations, the manifest of the first copy whose manifest is sound, and
 * the verification records of every copy.
 */
export interface CatalogEntry {
  id: string;
  /** The manifest, only when its hash (and signature) prove it is the one written. */
  manifest: Manifest | undefined;
  /** What a damaged manifest claims, to name the backup in errors; never trusted for decisions. */
  claimed: Manifest | undefined;
  manifestProblems: string[];
  copies: StoredCopy[];
  /** All verification records of all copies, oldest first. */
  verifications: VerificationRecord[];
  /** Rehearsals of runbooks on this backup, oldest first. */
  rehearsals: RehearsalRecord[];
  /** Disaster-recovery drills from this backup's copies, oldest first. */
  drills: DrillRecord[];
}

export async function readCatalog(
  destinations: Destination[],
  key: string | undefined,
): Promise<CatalogEntry[]> {
  const byId = new Map<string, CatalogEntry>();
  for (const dest of destinations) {
    for (const copy of await reachableCopies(dest)) {
      let entry = byId.get(copy.id);
      if (!entry) {
        entry = {
          id: copy.id,
          manifest: undefined,
          claimed: undefined,
          manifestProblems: [],
          copies: [],
          verifications: [],
          rehearsals: [],
          drills: [],
        };
        byId.set(copy.id, entry);
      }
      entry.copies.push(copy);
      try {
        const read = await readManifest(copy, key);
        entry.claimed ??= read.manifest;
        if (read.manifest && read.problems.length === 0) {
          entry.manifest ??= read.manifest;
          // Records count only beside a sound manifest, and only those bound to it.
          entry.verifications.push(...(await readVerifications(copy, read.manifest, key)));
          entry.rehearsals.push(
            ...(await readRecords<RehearsalRecord>(copy, REHEARSALS_DIR, read.manifest, key)),
          );
          entry.drills.push(
            ...(await readRecords<DrillRecord>(copy, DRILLS_DIR, read.manifest, key)),
          );
        } else
          entry.manifestProblems.push(...read.problems.map((p) => `${copy.destination}: ${p}`));
      } catch (err) {
        entry.manifestProblems.push(
          `${copy.destination}: cannot be read: ${storageReason(dest, err)}`,
        );
      }
    }
  }
  const entries = [...byId.values()];
  for (const e of entries) {
    e.verifications.sort((a, b) => a.at.localeCompare(b.at));
    e.rehearsals.sort((a, b) => a.at.localeCompare(b.at));
    e.drills.sort((a, b) => a.at.localeCompare(b.at));
  }
  return entries.sort((a, b) => a.id.localeCompare(b.id));
}

export async function findCopies(destinations: Destination[], id: string): Promise<StoredCopy[]> {
  const copies: StoredCopy[] = [];
  for (const dest of destinations) {
    copies.push(...(await reachableCopies(dest)).filter((c) => c.id === id));
  }
  if (copies.length === 0) {
    throw new BadInputError(`No backup ${id} in any destination; see \`lifeboat backups list\`.`);
  }
  return copies;
}

/**
 * One backup's manifest, read from its first copy whose manifest is sound:
 * for a report about a backup already named, without reading the whole
 * repository. Undefined when no copy holds a sound one.
 */
export async function readBackupManifest(
  destinations: Destination[],
  id: string,
  key: string | undefined,
): Promise<Manifest | undefined> {
  for (const dest of destinations) {
    for (const copy of (await reachableCopies(dest)).filter((c) => c.id === id)) {
      const read = await readManifest(copy, key).catch(() => undefined);
      if (read?.manifest && read.problems.length === 0) return read.manifest;
    }
  }
  return undefined;
}

/**
 * The newest backup of this target, for `verify latest`. A damaged manifest
 * still names its backup here, so verify reports the damage instead of
 * claiming there is no backup.
 */
export function latestFor(
  entries: CatalogEntry[],
  identity: TargetIdentity,
): CatalogEntry | undefined {
  const said = (e: CatalogEntry): Manifest | undefined => e.manifest ?? e.claimed;
  return entries
    .filter((e) => said(e) && sameTarget(said(e)!.target, identity))
    .sort((a, b) => said(a)!.createdAt.localeCompare(said(b)!.createdAt))
    .at(-1);
}

/**
 * `latest` names the newest backup of the target (it needs the target's
 * identity); any other word is taken as an id. The same for verify, show and restore.
 */
export async function resolveBackupId(
  id: string,
  opts: { destinations: Destination[]; key: string | undefined; target: Target },
): Promise<string> {
  if (id !== 'latest') return id;
  const identity = await withClient(opts.target, readIdentity);
  const latest = latestFor(await readCatalog(opts.destinations, opts.key), identity);
  if (!latest) throw nothingLatest(opts.target);
  return latest.id;
}

/**
 * `backups show ID` or `backups show latest`: the backup's catalog entry,
 * damaged manifest and all (the caller says what damage means). Refused
 * when the repository has no such backup.
 */
export async function findBackup(
  name: string | undefined,
  opts: { destinations: Destination[]; key: string | undefined; target: () => Target },
): Promise<CatalogEntry> {
  const entries = await readCatalog(opts.destinations, opts.key);
  const entry =
    name === 'latest'
      ? latestFor(entries, await withClient(opts.target(), readIdentity))
      : entries.find((e) => e.id === name);
  if (!entry && name === 'latest') throw nothingLatest(opts.target());
  if (!entry) {
    throw new BadInputError(`No backup ${name ?? '(no id given)'}; see \`lifeboat backups list\`.`);
  }
  return entry;
}

function nothingLatest(target: Target): BadInputError {
  return new BadInputError(
    `There is no backup of ${describeTarget(target)}, so "latest" names nothing; run \`lifeboat backup\` first.`,
  );
}

/** A destination whose copies could not be listed: a store that is down, refused credentials. */
export interface UnreadableDestination {
  destination: string;
  reason: string;
}

let tellUnreadable: (found: UnreadableDestination) => void = () => undefined;
const told = new Set<string>();

/**
 * Who hears of a destination the catalog cannot read, once per destination
 * and process: the CLI, which says it. The catalog itself never prints.
 */
export function onUnreadableDestination(listener: (found: UnreadableDestination) => void): void {
  tellUnreadable = listener;
}

/**
 * The copies in one destination; a destination that cannot be read holds
 * none that count, and is told of once.
 */
async function reachableCopies(dest: Destination): Promise<StoredCopy[]> {
  try {
    return await listCopies(dest);
  } catch (err) {
    if (!told.has(dest.name)) {
      told.add(dest.name);
      tellUnreadable({ destination: dest.name, reason: storageReason(dest, err) });
    }
    return [];
  }
}
