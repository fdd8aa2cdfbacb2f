import { readCatalog, type CatalogEntry } from './repository/catalog.js';
import type { Config } from './config.js';
import { connect } from './db.js';
import { errorMessage, LifeboatError } from './errors.js';
import { ageMs } from './freshness.js';
import { readIdentity, type TargetIdentity } from './identity.js';
import type { Manifest } from './repository/manifest.js';
import type { StepEvent } from './run/journal.js';
import { readJournal, type JournalView } from './run/journal-view.js';
import { describeTarget, type Target } from './target.js';

/**
 * `lifeboat history`: the backups of one target with their verifications,
 * rehearsals and drills, the runs in its journal, and the age of its newest verified
 * backup. Reads only; an unreachable target still shows the repository part.
 */
export interface BackupHistory {
  id: string;
  createdAt: string;
  bytes: number | null;
  dumpMs: number | null;
  copies: string[];
  verifications: {
    at: string;
    ok: boolean;
    restoreMs: number;
    durationMs: number;
    restoredFrom: string;
    error: string | null;
    differences: number;
  }[];
  rehearsals: { at: string; runbook: string; passed: boolean }[];
  /** Disaster-recovery drills from its copies: recovery time and the backup's age then. */
  drills: {
    at: string;
    passed: boolean;
    from: string;
    durationMs: number;
    backupAgeMs: number;
    error: string | null;
  }[];
  /** Decided by the latest verification; `damaged` when the manifest cannot be trusted. */
  result: 'verified' | 'verification-failed' | 'not-verified' | 'damaged';
  problems: string[];
}

export interface RunHistory {
  id: string;
  runbook: string;
  runbookFile: string;
  status: string;
  host: string;
  backupId: string | null;
  startedAt: string;
  finishedAt: string | null;
  durationMs: number | null;
  /** Steps by their outcome in this run, counted as the run's own report shows them. */
  applied: number;
  undone: number;
  failed: number;
  /** Each step the run touched, oldest first: its outcome and how long its up took. */
  steps: { id: string; outcome: string; durationMs: number | null }[];
  error: string | null;
}

export interface History {
  target: string;
  /** The server identity, when the target could be reached. */
  identity: Pick<TargetIdentity, 'systemIdentifier' | 'database'> | null;
  /** How backups were matched to the target: by server identity, or (identity unknown) by database name only. */
  matchedBy: 'identity' | 'database-name';
  identityError: string | null;
  /** Oldest first. */
  backups: BackupHistory[];
  /** Backups in the repository of other databases or servers (not shown). */
  otherBackups: number;
  /** Oldest first; null when the journal could not be read. */
  runs: RunHistory[] | null;
  journalError: string | null;
  newestVerified: {
    id: string;
    createdAt: string;
    verifiedAt: string;
    ageMs: number;
    withinPolicy: boolean;
  } | null;
  maxAgeMs: number;
}

export async function readHistory(opts: {
  config: Config;
  target: Target;
  now?: Date;
}): Promise<History> {
  const { config, target } = opts;
  let identity: TargetIdentity | undefined;
  let journal: JournalView | undefined;
  let identityError: string | null = null;
  let journalError: string | null = null;
  try {
    const client = await connect(target, 'lifeboat history');
    try {
      identity = await readIdentity(client).catch((err: unknown) => {
        identityError = errorMessage(err);
        return undefined;
      });
      journal = await readJournal(client).catch((err: unknown) => {
        journalError = `the journal could not be read: ${errorMessage(err)}`;
        return undefined;
      });
    } finally {
      await client.end().catch(() => undefined);
    }
  } catch (err) {
    if (!(err instanceof LifeboatError)) throw err;
    identityError = err.message;
    journalError = `the journal could not be read: ${err.message}`;
  }
  const entries = await readCatalog(config.destinations, config.signingKey);
  return buildHistory({
    target: describeTarget(target),
    database: target.database,
    identity,
    entries,
    journal,
    identityError,
    journalError,
    now: opts.now ?? new Date(),
    maxAgeMs: config.maxAgeMs,
  });
}

/** Pure: the repository and the journal as one history of the target. */
export function buildHistory(input: {
  target: string;
  database: string;
  identity: TargetIdentity | undefined;
  entries: CatalogEntry[];
  journal: JournalView | undefined;
  identityError: string | null;
  journalError: string | null;
  now: Date;
  maxAgeMs: number;
}): History {
  const { identity, now } = input;
  const said = (e: CatalogEntry): Manifest | undefined => e.manifest ?? e.claimed;
  const ours = (e: CatalogEntry): boolean => {
    const t = said(e)?.target;
    if (!t) return false;
    return identity
      ? t.systemIdentifier === identity.systemIdentifier && t.database === identity.database
      : t.database === input.database;
  };
  const mine = input.entries.filter(ours);
  const backups = mine
    .map(backupHistory)
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  const newest = [...backups].reverse().find((b) => b.result === 'verified');
  return {
    target: input.target,
    identity: identity
      ? { systemIdentifier: identity.systemIdentifier, database: identity.database }
      : null,
    matchedBy: identity ? 'identity' : 'database-name',
    identityError: input.identityError,
    backups,
    otherBackups: input.entries.length - mine.length,
    runs: input.journal ? runHistory(input.journal) : null,
    journalError: input.journal ? null : (input.journalError ?? 'the journal was not read'),
    newestVerified: newest
      ? {
          id: newest.id,
          createdAt: newest.createdAt,
          verifiedAt: newest.verifications.at(-1)!.at,
          ageMs: ageMs(newest.createdAt, now),
          withinPolicy: ageMs(newest.createdAt, now) <= input.maxAgeMs,
        }
      : null,
    maxAgeMs: input.maxAgeMs,
  };
}

function backupHistory(e: CatalogEntry): BackupHistory {
  const m = e.manifest ?? e.claimed;
  const last = e.verifications.at(-1);
  return {
    id: e.id,
    createdAt: m?.createdAt ?? '',
    bytes: m?.dump.bytes ?? null,
    dumpMs: m?.dump.durationMs ?? null,
    copies: e.copies.map((c) => c.destination),
    verifications: e.verifications.map((v) => ({
      at: v.at,
      ok: v.ok,
      restoreMs: v.restoreMs,
      durationMs: v.durationMs,
      restoredFrom: v.restoredFrom,
      error: v.error ?? null,
      differences: v.differences.length,
    })),
    rehearsals: e.rehearsals.map((r) => ({ at: r.at, runbook: r.runbook, passed: r.passed })),
    drills: e.drills.map((d) => ({
      at: d.at,
      passed: d.passed,
      from: d.from.destination,
      durationMs: d.durationMs,
      backupAgeMs: d.backupAgeMs,
      error: d.error ?? (d.passed ? null : `${d.differences.length} difference(s)`),
    })),
    result: !e.manifest
      ? 'damaged'
      : !last
        ? 'not-verified'
        : last.ok
          ? 'verified'
          : 'verification-failed',
    problems: e.manifestProblems,
  };
}

/**
 * What became of each step of one run, as the run's report says it: a step
 * undone by its down is `undone`, not also `applied`; a check's bookkeeping
 * down changes nothing, so a check that held stays `applied`.
 */
export function stepOutcomes(events: readonly StepEvent[]): RunHistory['steps'] {
  const byStep = new Map<string, StepEvent[]>();
  for (const e of events) byStep.set(e.stepId, [...(byStep.get(e.stepId) ?? []), e]);
  return [...byStep.entries()].map(([id, evs]) => {
    const up = evs.filter((e) => e.direction === 'up').at(-1);
    const down = evs.filter((e) => e.direction === 'down').at(-1);
    let outcome: string;
    if (up?.status === 'failed') outcome = 'failed';
    else if (down && down.kind !== 'check')
      outcome =
        down.status === 'done' ? 'undone' : down.status === 'failed' ? 'undo-failed' : 'in-doubt';
    else outcome = up?.status === 'done' ? 'applied' : 'in-doubt';
    const durationMs = up?.finishedAt
      ? new Date(up.finishedAt).getTime() - new Date(up.startedAt).getTime()
      : null;
    return { id, outcome, durationMs };
  });
}

function runHistory(journal: JournalView): RunHistory[] {
  return journal.runs.map((run) => {
    const steps = stepOutcomes(journal.events.filter((e) => e.runId === run.id));
    const count = (outcome: string): number => steps.filter((s) => s.outcome === outcome).length;
    return {
      id: run.id,
      runbook: run.runbook,
      runbookFile: run.runbookFile,
      status: run.status,
      host: run.host,
      backupId: run.backupId,
      startedAt: run.startedAt,
      finishedAt: run.finishedAt,
      durationMs: run.finishedAt
        ? new Date(run.finishedAt).getTime() - new Date(run.startedAt).getTime()
        : null,
      applied: count('applied'),
      undone: count('undone'),
      failed: count('failed'),
      steps,
      error: run.error,
    };
  });
}
