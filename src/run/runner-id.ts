import { randomBytes } from 'node:crypto';

/** Ids sort by time: run-20261121T101500Z-3f2a, move-20261121T101500Z-9c01. */
function stampedId(kind: 'run' | 'move', now: Date): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `${kind}-${stamp}-${randomBytes(2).toString('hex')}`;
}

export function newRunId(now = new Date()): string {
  return stampedId('run', now);
}

/** A move's id; it also names the move's freeze, lock session and journal file. */
export function newMoveId(now = new Date()): string {
  return stampedId('move', now);
}

/** A freeze, a lock holder or an argument that names a move rather than a run. */
export function isMoveId(id: string | undefined): boolean {
  return id?.startsWith('move-') ?? false;
}
