import { BadInputError } from '../errors.js';
import type { Manifest } from '../repository/manifest.js';
import type { Progress } from '../progress.js';
import { checkFiles, readLayout, readManifest, type StoredCopy } from '../repository/copies.js';

/**
 * Which copy of a backup a restore reads: every copy is checked against its
 * manifest, then one choice, the same for verify, rehearse and restore, picks
 * among the intact ones. What no intact copy means is the caller's to say.
 */
export interface CopyCheck {
  destination: string;
  location: string;
  remote: boolean;
  encrypted: boolean;
  intact: boolean;
  problems: string[];
}

/**
 * Read every copy of a backup back and compare it with its manifest: every
 * byte (`full`), or for object stores the store's checksums (`quick`).
 */
export async function checkCopies(
  copies: StoredCopy[],
  key: string | undefined,
  progress: Progress,
  depth: 'full' | 'quick' = 'full',
  /** Stop at the first intact copy: one is enough to restore, the others are read only when it is not. */
  untilIntact = false,
): Promise<{ checks: CopyCheck[]; manifest?: Manifest; sound?: Manifest }> {
  const checks: CopyCheck[] = [];
  let manifest: Manifest | undefined;
  let sound: Manifest | undefined;
  for (const copy of copies) {
    // A damaged copy fails its task (✖ / FAIL), never shows as done; the check goes on.
    const { check, read } = await progress
      .task(`Check checksums of the copy in ${copy.destination}`, async (update) => {
        const one = await checkOne(copy, key, depth, update);
        const found = { check: copyCheck(copy, one.problems, one.encrypted), read: one.manifest };
        if (!found.check.intact) throw new DamagedCopy(found);
        return found;
      })
      .catch((err: unknown) => {
        if (err instanceof DamagedCopy) return err.found;
        throw err;
      });
    if (check.intact) manifest ??= read;
    sound ??= read;
    checks.push(check);
    if (!check.intact)
      progress.warn(`the copy in ${copy.destination} is damaged: ${check.problems.join('; ')}`);
    if (check.intact && untilIntact) break;
  }
  return { checks, manifest, sound };
}

class DamagedCopy extends Error {
  constructor(readonly found: { check: CopyCheck; read?: Manifest }) {
    super(`damaged: ${found.check.problems.join('; ')}`);
  }
}

async function checkOne(
  copy: StoredCopy,
  key: string | undefined,
  depth: 'full' | 'quick' | 'manifest',
  update: (detail: string) => void,
): Promise<{ problems: string[]; encrypted: boolean; manifest?: Manifest }> {
  const read = await readManifest(copy, key);
  if (!read.manifest || read.problems.length > 0)
    return { problems: read.problems, encrypted: false };
  const { layout, problems } = await readLayout(copy, read.manifest, key);
  // The manifest is sound even when the files are not: records of the failure are bound to it.
  if (!layout) return { problems, encrypted: false, manifest: read.manifest };
  const encrypted = layout.encryption !== undefined;
  if (depth === 'manifest') return { problems: [], encrypted, manifest: read.manifest };
  return {
    problems: await checkFiles(copy, layout, depth, (done, total) =>
      update(`${done}/${total} files`),
    ),
    encrypted,
    manifest: read.manifest,
  };
}

function copyCheck(copy: StoredCopy, problems: string[], encrypted: boolean): CopyCheck {
  return {
    destination: copy.destination,
    location: copy.location,
    remote: copy.remote,
    encrypted,
    intact: problems.length === 0,
    problems,
  };
}

/** Only the manifests: the files were read back by this process a moment ago. */
export async function checkManifests(
  copies: StoredCopy[],
  key: string | undefined,
): Promise<{ checks: CopyCheck[]; manifest?: Manifest; sound?: Manifest }> {
  const checks: CopyCheck[] = [];
  let manifest: Manifest | undefined;
  let sound: Manifest | undefined;
  for (const copy of copies) {
    const one = await checkOne(copy, key, 'manifest', () => undefined);
    if (one.problems.length === 0) manifest ??= one.manifest;
    sound ??= one.manifest;
    checks.push(copyCheck(copy, one.problems, one.encrypted));
  }
  return { checks, manifest, sound };
}

/** What a caller asks to restore: the copy in one destination, every intact copy, or (neither) the cheapest. */
export interface CopyChoice {
  from?: string;
  all?: boolean;
}

/**
 * Which copies to restore, among those checked: the one asked for (none if
 * it is damaged), all intact ones, or the cheapest intact one (local and
 * plain first: it is read in place).
 */
export function chooseCopies(
  copies: StoredCopy[],
  checks: CopyCheck[],
  want: CopyChoice = {},
): StoredCopy[] {
  const stored = (c: CopyCheck): StoredCopy => copies.find((s) => s.destination === c.destination)!;
  if (want.from) {
    const chosen = checks.find((c) => c.destination === want.from);
    if (!chosen) {
      throw new BadInputError(
        `Backup ${copies[0]?.id ?? ''} has no copy in destination "${want.from}"; its copies are in ${checks.map((c) => c.destination).join(', ')}.`,
      );
    }
    return chosen.intact ? [stored(chosen)] : [];
  }
  const intact = checks.filter((c) => c.intact);
  if (want.all) return intact.map(stored);
  const cheapest = intact.find((c) => !c.remote && !c.encrypted) ?? intact[0];
  return cheapest ? [stored(cheapest)] : [];
}

/** Each damaged copy's problems, one line each, named by destination. */
export function copyProblems(checks: CopyCheck[]): string[] {
  return checks.flatMap((c) => c.problems.map((p) => `${c.destination}: ${p}`));
}
