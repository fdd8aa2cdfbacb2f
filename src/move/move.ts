import type pg from 'pg';
import type { Config } from '../config.js';
import { takeBackup } from '../backup.js';
import { connect, withClient } from '../db.js';
import {
  BadInputError,
  InterruptedError,
  LifeboatError,
  RollbackIncompleteError,
  RolledBackError,
  errorMessage,
} from '../errors.js';
import { pausePoint } from '../faults.js';
import { readIdentity, readWriteCounters, type TargetIdentity } from '../identity.js';
import type { Progress } from '../progress.js';
import { restoredFrom, withMaintenanceConnection } from '../restore/databases.js';
import { restoreBackup } from '../restore/restore-backup.js';
import {
  freezeDatabase,
  readFreeze,
  unfreezeDatabase,
  writableDuringFreeze,
} from '../run/freeze.js';
import { guard, type BackupMode, type GuardOptions } from '../run/guard.js';
import { withRunLock } from '../run/lock.js';
import { connectionString, describeTarget, serverOf, type Target } from '../target.js';
import { analyzeMoved, checkMoved } from './checks.js';
import { runCutover } from './cutover.js';
import { moveDestination, type MoveDestination } from './destination.js';
import { afterFailure, openMoveOf, pendingPhases, type MovePhase } from './plan.js';
import { destinationProblems } from './preflight.js';
import { newMoveId } from '../run/runner-id.js';
import { readMoves, saveMove, type MoveRecord } from './record.js';

/**
 * `lifeboat move --to URL`: the whole database moved to another server (a
 * newer major allowed), guarded like a run. One checkpoint per phase in the
 * move's record (record.ts); a move stopped by a crash is resumed by the
 * same command, or undone by `lifeboat rollback` (way-back.ts). The source
 * is frozen before the copy and stays frozen, untouched, until the move is
 * finished or rolled back: no write can fall between copy and cutover.
 */
/** What a move is asked: read by the move and by its dry run. */
export interface MoveRequest {
  config: Config;
  /** The source: the database being moved. */
  source: Target;
  /** A connection URL to the other server (its database is where lifeboat connects). */
  to: string;
  /** The database's name on the destination; default the source's. */
  as?: string;
  createRoles: boolean;
  /** A shell command that repoints the applications, run once the destination is proved. */
  cutover?: string;
  backup: BackupMode;
  progress: Progress;
}

export interface MoveOptions extends MoveRequest {
  lockWaitMs: number;
  signal?: AbortSignal;
}

/** The guard of a move: the config's policy, as `run` applies it without a runbook's own. */
export function moveGuard(opts: MoveRequest & { signal?: AbortSignal }): GuardOptions {
  return {
    mode: opts.backup,
    policy: {
      maxAgeMs: opts.config.maxAgeMs,
      copies: opts.config.copies,
      requireOffsite: opts.config.requireOffsite,
    },
    config: opts.config,
    target: writableDuringFreeze(opts.source),
    progress: opts.progress,
    ...(opts.signal ? { signal: opts.signal } : {}),
  };
}

export interface MoveReport {
  moveId: string;
  state: MoveRecord['state'];
  resumed: boolean;
  source: string;
  destination: MoveRecord['destination'];
  guardBackupId: string | null;
  copyBackupId: string | null;
  createdRoles: string[];
  checks: MoveRecord['checks'] | null;
  phases: MoveRecord['phases'];
  copyTimes: MoveRecord['copyTimes'] | null;
  cutover: { command: string; ran: boolean } | null;
}

export async function moveDatabase(opts: MoveOptions): Promise<MoveReport> {
  const source = writableDuringFreeze(opts.source);
  const dest = moveDestination(opts.to, opts.as, source);
  const identity = await withClient(source, async (client) => {
    await requireSuperuser(client);
    return readIdentity(client);
  });
  // Read under the lock: a move that waited for another finds it, never starts a second one.
  return withRunLock(source, 'move-pending', opts.lockWaitMs, async (lockClient) => {
    const open = openMoveOf(await readMoves(opts.config), identity);
    if (open && !sameDestination(open, dest)) {
      throw new BadInputError(
        `Move ${open.id} of ${open.source.described} to ${open.destination.server}/${open.destination.database} is still open; resume it with that --to, finish it (lifeboat move --finish) or roll it back (lifeboat rollback).`,
      );
    }
    const moveId = open?.id ?? newMoveId();
    await lockClient.query(`select set_config('application_name', $1, false)`, [
      `lifeboat run ${moveId}`,
    ]);
    const client = await connect(source, `lifeboat move ${moveId}`);
    try {
      const record = open ?? newRecord(moveId, identity, source, dest, opts);
      if (opts.cutover !== undefined) record.cutover = opts.cutover;
      const move: Moving = { opts, client, source, dest, record };
      for (const phase of pendingPhases(record)) await runPhase(move, phase);
      if (record.state === 'moving' || record.state === 'needs-operator') {
        record.state = 'moved';
        delete record.error;
        await saveMove(opts.config, record);
      }
      return report(record, Boolean(open));
    } finally {
      await client.end().catch(() => undefined);
    }
  });
}

interface Moving {
  opts: MoveOptions;
  /** A writable session on the source, for the freeze and the needs. */
  client: pg.Client;
  source: Target;
  dest: MoveDestination;
  record: MoveRecord;
}

function newRecord(
  id: string,
  identity: TargetIdentity,
  source: Target,
  dest: MoveDestination,
  opts: MoveOptions,
): MoveRecord {
  return {
    id,
    state: 'moving',
    source: {
      described: describeTarget(source),
      systemIdentifier: identity.systemIdentifier,
      database: identity.database,
      serverVersion: identity.serverVersion,
    },
    destination: {
      server: serverOf(dest.target),
      database: dest.target.database,
      connection: connectionString(dest.target),
    },
    cutover: opts.cutover ?? null,
    createRoles: opts.createRoles,
    startedAt: new Date().toISOString(),
    phases: [],
  };
}

function sameDestination(record: MoveRecord, dest: MoveDestination): boolean {
  return (
    record.destination.server === serverOf(dest.target) &&
    record.destination.database === dest.target.database
  );
}

/** The freeze tags the source and ends other roles' sessions: refused before anything, not at it. */
async function requireSuperuser(client: pg.ClientBase): Promise<void> {
  const role = await client.query<{ superuser: boolean; name: string }>(
    'select rolsuper as superuser, current_user as name from pg_roles where rolname = current_user',
  );
  if (!role.rows[0]?.superuser)
    throw new BadInputError(
      `A move freezes the source (it marks the database and ends other roles' sessions), which needs a superuser; role ${role.rows[0]?.name ?? '?'} is not one. Nothing was changed.`,
    );
}

/**
 * One phase, then its checkpoint. The record is first written once the
 * guard and the preflight have passed: until then nothing was changed, and
 * a refusal leaves no move behind. A failure goes back by itself before the
 * cutover and stops for the operator after it (plan.ts, afterFailure).
 */
async function runPhase(move: Moving, phase: MovePhase): Promise<void> {
  const { record, opts } = move;
  const started = Date.now();
  try {
    await PHASES[phase](move);
  } catch (err) {
    if (phase === 'guard' || phase === 'preflight') throw err;
    throw await failed(move, phase, err);
  }
  record.phases.push({ phase, at: new Date().toISOString(), ms: Date.now() - started });
  if (phase !== 'guard') await saveMove(opts.config, record);
  await pausePoint(`move:${phase}`);
}

const PHASES: Record<MovePhase, (move: Moving) => Promise<void>> = {
  async guard({ opts, record }) {
    const guarded = await guard(moveGuard(opts));
    record.guardBackupId = guarded.backupId;
  },

  async preflight({ opts, client, dest, record }) {
    const found = await opts.progress.task(
      `Check ${record.destination.server} for what ${record.source.database} needs`,
      () => destinationProblems(client, dest, { createRoles: opts.createRoles }),
    );
    const held = await readFreeze(client, record.source.database);
    if (held && held.runId !== record.id)
      found.problems.push(
        `${record.source.database} is frozen by ${held.runId} since ${held.since}; lift that freeze first (lifeboat rollback or lifeboat unfreeze)`,
      );
    record.destination.serverVersion = found.serverVersion;
    for (const note of found.notes) opts.progress.warn(note);
    if (found.problems.length > 0)
      throw new BadInputError(
        `The destination server is not ready for ${record.source.database}; nothing was changed.${found.problems.some((p) => p.startsWith('role ')) ? ' Create the roles, or move with --create-roles.' : ''}`,
        { details: found.problems },
      );
  },

  async freeze({ opts, client, source, record }) {
    const held = await readFreeze(client, source.database);
    if (held?.runId === record.id) {
      record.frozenSince = held.since;
      return;
    }
    if (held) {
      throw new BadInputError(
        `${source.database} is frozen by ${held.runId} since ${held.since}; a move freezes it itself. Lift that freeze first (lifeboat unfreeze).`,
      );
    }
    const freeze = await opts.progress.task(
      `Freeze ${source.database}: other sessions read-only until the move is finished or rolled back`,
      () => freezeDatabase(client, source.database, record.id),
    );
    record.frozenSince = freeze.since;
  },

  async copy({ opts, source, dest, record }) {
    if (!record.copyBackupId) {
      // The copy is a backup of the frozen source: dumped and fingerprinted at one snapshot.
      const backup = await takeBackup({
        config: opts.config,
        target: source,
        progress: opts.progress,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      record.copyBackupId = backup.id;
      record.copyTimes = {
        dumpMs: backup.phases.snapshotMs,
        checksumMs: backup.phases.checksumMs,
        copiesMs: backup.phases.copiesMs,
      };
      await saveMove(opts.config, record);
      await pausePoint('move:dumped');
    }
    if (await restoredBefore(dest, record.copyBackupId)) return;
    const restored = await restoreBackup({
      config: opts.config,
      target: dest.target,
      backupId: record.copyBackupId,
      as: dest.target.database,
      keepOwners: true,
      onto: { createRoles: record.createRoles },
      ...(dest.maintenanceDb ? { maintenanceDb: dest.maintenanceDb } : {}),
      progress: opts.progress,
      ...(opts.signal ? { signal: opts.signal } : {}),
      // Statistics only: ANALYZE changes nothing the proof reads, so it runs beside it.
      alongsideProof: async () => {
        record.analyzeMs = await analyzeMoved(dest.target);
      },
    });
    await pausePoint('move:restored');
    record.createdRoles = restored.onto?.createdRoles ?? [];
    const t = restored.onto?.phases;
    if (record.copyTimes && t)
      Object.assign(record.copyTimes, {
        preflightMs: t.preflightMs,
        restoreMs: t.restoreMs,
        proveMs: t.proveMs,
        settingsMs: t.finishMs,
      });
    record.proved = restored.compared;
  },

  async checks({ opts, dest, record }) {
    record.checks = await opts.progress.task(
      `Check ${record.destination.database} on ${record.destination.server}: indexes (amcheck), collations, extensions, statistics`,
      () =>
        checkMoved(dest.target, {
          sequences: record.proved?.sequences ?? 0,
          ...(record.analyzeMs !== undefined ? { analyzeMs: record.analyzeMs } : {}),
        }),
    );
    const counters = await withClient(dest.target, readWriteCounters, 'lifeboat move checks');
    record.writeBaseline = counters.rowWrites;
    record.statsReset = counters.statsReset;
  },

  async cutover({ opts, source, dest, record }) {
    if (!record.cutover) return;
    const command = record.cutover;
    await opts.progress.task(`Cutover: ${command}`, () =>
      runCutover(command, { moveId: record.id, source, destination: dest.target }),
    );
  },
};

/** The copy restored and proved before a crash that came ahead of its checkpoint. */
async function restoredBefore(dest: MoveDestination, backupId: string): Promise<boolean> {
  return withMaintenanceConnection(dest.target, dest.maintenanceDb, async (admin) => {
    const res = await admin.query<{ comment: string | null }>(
      `select shobj_description(oid, 'pg_database') as comment from pg_database where datname = $1`,
      [dest.target.database],
    );
    return res.rows[0]?.comment?.startsWith(restoredFrom(backupId)) ?? false;
  });
}

/**
 * A phase failed. Before the cutover: the source is unfrozen (it was never
 * changed otherwise) and the move recorded as rolled back, exit 5; an
 * interrupt keeps its own exit. After it: the move waits for the operator.
 */
async function failed(move: Moving, phase: MovePhase, err: unknown): Promise<Error> {
  const { record, opts, client, source } = move;
  const why = errorMessage(err);
  const details = err instanceof LifeboatError ? err.details : [];
  record.error = `${phase}: ${why}`;
  if (afterFailure(phase) === 'stop') {
    record.state = 'needs-operator';
    await saveMove(opts.config, record);
    return new RollbackIncompleteError(
      `The move's cutover failed: ${why} The destination ${record.destination.server}/${record.destination.database} is proved and checked; ${record.source.database} stays frozen and untouched.`,
      {
        details: [
          'If the applications now use the destination, finish the move: lifeboat move --finish',
          'If they still use the source, go back to it: lifeboat rollback',
          `Or fix the cutover command and resume: lifeboat move --to <the same URL>`,
        ],
        cause: err,
      },
    );
  }
  const freeze = await readFreeze(client, source.database).catch(() => undefined);
  const ours = freeze?.runId === record.id;
  if (ours) await unfreezeDatabase(client, source.database);
  record.state = 'rolled-back';
  record.rolledBackAt = new Date().toISOString();
  await saveMove(opts.config, record);
  const back = ours
    ? `${record.source.database} was unfrozen and is as before the move`
    : `${record.source.database} is as before the move`;
  if (err instanceof InterruptedError || opts.signal?.aborted) {
    return new InterruptedError(`Interrupted: the move stopped at its ${phase}; ${back}.`, {
      cause: err,
    });
  }
  return new RolledBackError(`The move failed at its ${phase}: ${why} Went back: ${back}.`, {
    details: [
      ...details,
      `on ${record.destination.server}, whatever lifeboat created for the move is kept for inspection, never dropped`,
    ],
    cause: err,
  });
}

function report(record: MoveRecord, resumed: boolean): MoveReport {
  return {
    moveId: record.id,
    state: record.state,
    resumed,
    source: record.source.described,
    destination: record.destination,
    guardBackupId: record.guardBackupId ?? null,
    copyBackupId: record.copyBackupId ?? null,
    createdRoles: record.createdRoles ?? [],
    checks: record.checks ?? null,
    phases: record.phases,
    copyTimes: record.copyTimes ?? null,
    cutover: record.cutover
      ? { command: record.cutover, ran: record.phases.some((p) => p.phase === 'cutover') }
      : null,
  };
}
