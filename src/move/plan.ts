import type { MoveRecord } from './record.js';

/**
 * The decisions of a move, pure: which phases remain, which move is open on
 * a source, what a failure leads to, and whether going back would lose
 * writes. move.ts and way-back.ts do the I/O around them.
 */
export const MOVE_PHASES = ['guard', 'preflight', 'freeze', 'copy', 'checks', 'cutover'] as const;
export type MovePhase = (typeof MOVE_PHASES)[number];

/**
 * moving: phases remain; moved: the destination is proved and checked, the
 * source frozen until --finish or rollback; needs-operator: the cutover
 * failed after the destination was proved; finished: the source is retired;
 * rolled-back: the source took its writes back.
 */
export type MoveState = 'moving' | 'moved' | 'needs-operator' | 'finished' | 'rolled-back';

export const OPEN_STATES: readonly MoveState[] = ['moving', 'moved', 'needs-operator'];

/** The phases not yet checkpointed, in order: a resumed move starts at the first. */
export function pendingPhases(record: Pick<MoveRecord, 'phases'>): MovePhase[] {
  const done = new Set(record.phases.map((p) => p.phase));
  return MOVE_PHASES.filter((phase) => !done.has(phase));
}

/** The one move still open on this source (one at a time per source), if any. */
export function openMoveOf(
  moves: readonly MoveRecord[],
  source: { systemIdentifier: string; database: string },
): MoveRecord | undefined {
  return moves.find(
    (m) =>
      OPEN_STATES.includes(m.state) &&
      m.source.systemIdentifier === source.systemIdentifier &&
      m.source.database === source.database,
  );
}

/**
 * A phase failed. Before the cutover nothing outside lifeboat has seen the
 * destination, so the move goes back by itself (the source unfrozen, exit
 * 5). A failed cutover may have repointed part of the applications: only
 * the operator knows, so everything stays as it is (exit 6).
 */
export function afterFailure(phase: MovePhase): 'roll-back' | 'stop' {
  return phase === 'cutover' ? 'stop' : 'roll-back';
}

export type RollbackVerdict =
  { go: true; unfreeze: boolean } | { go: false; why: string; exitCode: 2 | 6 };

/**
 * Going back to the source: allowed while the move is open, unless the
 * destination took writes since its checks (they exist only there, and
 * the source would not have them); `force` accepts losing them from the
 * application's view (they stay on the destination, which is never dropped).
 */
export function rollbackVerdict(
  record: Pick<MoveRecord, 'id' | 'state' | 'destination' | 'frozenSince'>,
  writesSince: number | 'unknown' | undefined,
  force: boolean,
): RollbackVerdict {
  if (record.state === 'finished')
    return {
      go: false,
      exitCode: 2,
      why: `Move ${record.id} was finished: the source was retired and ${record.destination.server}/${record.destination.database} is the database now; there is no way back through lifeboat.`,
    };
  if (record.state === 'rolled-back')
    return { go: false, exitCode: 2, why: `Move ${record.id} was already rolled back.` };
  if (!force && writesSince === 'unknown')
    return {
      go: false,
      exitCode: 6,
      why: `The destination ${record.destination.server} cannot be read, or its statistics were reset since the move was checked, so lifeboat cannot tell whether it took writes that going back would leave behind; give --to URL to reach it, or --force to go back anyway.`,
    };
  if (!force && typeof writesSince === 'number' && writesSince > 0)
    return {
      go: false,
      exitCode: 6,
      why: `The destination took ${writesSince} row write(s) since the move was checked; they are not on the source, and going back would leave them behind. Copy them to the source first, or keep the destination (lifeboat move --finish); --force goes back anyway (the destination is kept, never dropped).`,
    };
  return { go: true, unfreeze: record.frozenSince !== undefined };
}
