import pLimit from 'p-limit';
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
    const copies = await reachableCopies(dest);
    // A few small reads per copy (round trips to an object store): read side by side, then
    // taken in the listing's order, so the result is the same as one after the other.
    const limit = pLimit(COPIES_READ_AT_ONCE);
    const reads = await Promise.all(copies.map((copy) => limit(() => readCopy(dest, copy, key))));
    for (const [i, copy] of copies.entries()) {
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
      const read = reads[i]!;
      entry.claimed ??= read.claimed;
      entry.manifest ??= read.manifest;
      entry.verifications.push(...read.verifications);
      entry.rehearsals.push(...read.rehearsals);
      entry.drills.push(...read.drills);
      entry.manifestProblems.push(...read.problems);
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

const COPIES_READ_AT_ONCE = 8;

/** One copy's manifest and the records bound to it, or why it cannot be trusted. */
interface CopyRead {
  claimed: Manifest | undefined;
  /** Only when it is sound: hash (and signature) prove it is the one written. */
  manifest: Manifest | undefined;
  /** Why the manifest is not sound, or what could not be read. */
  problems: string[];
  verifications: VerificationRecord[];
  rehearsals: RehearsalRecord[];
  drills: DrillRecord[];
}

async function readCopy(
  dest: Destination,
  copy: StoredCopy,
  key: string | undefined,
): Promise<CopyRead> {
  const read: CopyRead = {
    claimed: undefined,
    manifest: undefined,
    problems: [],
    verifications: [],
    rehearsals: [],
    drills: [],
  };
  try {
    const { manifest, problems } = await readManifest(copy, key);
    read.claimed = manifest;
    if (!manifest || problems.length > 0) {
      read.problems.push(...problems.map((p) => `${copy.destination}: ${p}`));
      return read;
    }
    read.manifest = manifest;
    // Records count only beside a sound manifest, and only those bound to it.
    read.verifications = await readVerifications(copy, manifest, key);
    read.rehearsals = await readRecords<RehearsalRecord>(copy, REHEARSALS_DIR, manifest, key);
    read.drills = await readRecords<DrillRecord>(copy, DRILLS_DIR, manifest, key);
  } catch (err) {
    read.problems.push(`${copy.destination}: cannot be read: ${storageReason(dest, err)}`);
  }
  return read;
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
