import { mkdir, readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config.js';
import { PRIVATE_DIR, inside, writeFileAtomic } from '../files.js';
import { repositoryHome } from '../repository/home.js';
import type { MovePhase, MoveState } from './plan.js';

/**
 * A move's journal: one JSON file per move in lifeboat's own directory,
 * rewritten atomically at every checkpoint (one per phase). It lives there,
 * not in the source database, because the source is what is being copied:
 * a journal inside it would travel to the destination with the data. The
 * source's freeze names the move too (lifeboat.frozen_by), so the database
 * itself shows which move holds it.
 */
export interface MoveRecord {
  id: string;
  state: MoveState;
  source: {
    described: string;
    systemIdentifier: string;
    database: string;
    serverVersion: string;
  };
  destination: {
    /** user@host:port of the other server, never a password. */
    server: string;
    database: string;
    /** A connection string for the moved database, without the password. */
    connection: string;
    serverVersion?: string;
  };
  cutover: string | null;
  createRoles: boolean;
  startedAt: string;
  /** Each phase done, with when it ended and how long it took. */
  phases: { phase: MovePhase; at: string; ms: number }[];
  /** The verified backup that guards the move (the guard's). */
  guardBackupId?: string;
  /** The backup taken of the frozen source: what was copied. */
  copyBackupId?: string;
  frozenSince?: string;
  /** Where the copy's time went: the dump of the frozen source, then restore and proof on the destination. */
  copyTimes?: {
    dumpMs: number;
    checksumMs: number;
    copiesMs: number;
    preflightMs?: number;
    restoreMs?: number;
    proveMs?: number;
    settingsMs?: number;
  };
  /** What the copy's proof compared with the frozen source's fingerprints. */
  proved?: { tables: number; sequences: number; largeObjects: number; schema: boolean };
  /** ANALYZE of the destination, run beside the copy's proof. */
  analyzeMs?: number;
  /** Roles created on the destination for the copy. */
  createdRoles?: string[];
  checks?: MoveChecks;
  /** Row writes on the destination counted right after the checks: later writes came after the move. */
  writeBaseline?: string;
  /** When the destination's statistics were last reset, as the baseline was read: a later reset voids it. */
  statsReset?: string | null;
  finishedAt?: string;
  rolledBackAt?: string;
  /** Why the move stopped, for a move that failed or needs the operator. */
  error?: string;
}

export interface MoveChecks {
  indexesChecked: number;
  /** Why indexes were not checked, when they could not be. */
  indexesSkipped?: string;
  collationsChecked: number;
  extensionsUpdated: string[];
  sequences: number;
  analyzeMs: number;
}

function movesDir(config: Pick<Config, 'destinations'>): string {
  return path.join(repositoryHome(config), 'moves');
}

export async function saveMove(
  config: Pick<Config, 'destinations'>,
  record: MoveRecord,
): Promise<void> {
  const dir = movesDir(config);
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR });
  await writeFileAtomic(inside(dir, `${record.id}.json`), `${JSON.stringify(record, null, 2)}\n`);
}

/** Every move recorded in lifeboat's directory, oldest first; unreadable files are skipped. */
export async function readMoves(config: Pick<Config, 'destinations'>): Promise<MoveRecord[]> {
  const dir = movesDir(config);
  const names = await readdir(dir).catch(() => [] as string[]);
  const moves: MoveRecord[] = [];
  for (const name of names.filter((n) => /^move-[\w-]+\.json$/.test(n)).sort()) {
    try {
      moves.push(JSON.parse(await readFile(inside(dir, name), 'utf8')) as MoveRecord);
    } catch {
      // A file that is not a move record is not one of ours to act on.
    }
  }
  return moves;
}
