import { connect } from '../db.js';
import { LifeboatError, errorMessage } from '../errors.js';
import { readIdentity } from '../identity.js';
import { writableDuringFreeze } from '../run/freeze.js';
import { decideGuard } from '../run/guard.js';
import { describeHolder, lockHolder } from '../run/lock.js';
import { describeTarget, serverOf } from '../target.js';
import { moveDestination } from './destination.js';
import { moveGuard, type MoveRequest } from './move.js';
import { MOVE_PHASES, openMoveOf, pendingPhases, type MovePhase } from './plan.js';
import { destinationProblems } from './preflight.js';
import { readMoves } from './record.js';

/** What `move --dry-run` says: read only, on both servers. */
export interface MovePreview {
  source: string;
  destination: { server: string; database: string };
  /** An open move this command would resume, and from which phase. */
  resumes: { moveId: string; from: MovePhase | 'end' } | null;
  guard: string;
  phases: MovePhase[];
  problems: string[];
  notes: string[];
  wouldExit: number;
}

export async function previewMove(opts: MoveRequest): Promise<MovePreview> {
  const source = writableDuringFreeze(opts.source);
  const dest = moveDestination(opts.to, opts.as, source);
  const client = await connect(source, 'lifeboat move --dry-run');
  try {
    const open = openMoveOf(await readMoves(opts.config), await readIdentity(client));
    const problems: string[] = [];
    let wouldExit = 0;
    const refuse = (code: number, why: string): void => {
      problems.push(why);
      if (wouldExit === 0) wouldExit = code;
    };
    const holder = await lockHolder(client);
    if (holder) refuse(7, `the lock on ${source.database} is held by ${describeHolder(holder)}`);
    const phases = open ? pendingPhases(open) : [...MOVE_PHASES];
    let guard = 'already passed';
    const notes: string[] = [];
    if (!open) {
      try {
        const decision = await decideGuard(moveGuard(opts));
        guard =
          'reuse' in decision
            ? `reuse verified backup ${decision.reuse}`
            : `take and verify a new backup${decision.because ? ` (${decision.because.message})` : ''}`;
      } catch (err) {
        guard = 'refused';
        refuse(err instanceof LifeboatError ? err.exitCode : 2, errorMessage(err));
      }
      const ready = await destinationProblems(client, dest, { createRoles: opts.createRoles });
      for (const p of ready.problems) refuse(2, p);
      notes.push(...ready.notes);
    }
    return {
      source: describeTarget(source),
      destination: { server: serverOf(dest.target), database: dest.target.database },
      resumes: open ? { moveId: open.id, from: phases[0] ?? 'end' } : null,
      guard,
      phases: opts.cutover || open?.cutover ? phases : phases.filter((p) => p !== 'cutover'),
      problems,
      notes,
      wouldExit,
    };
  } finally {
    await client.end().catch(() => undefined);
  }
}
