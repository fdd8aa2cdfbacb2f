import { hostname } from 'node:os';

/**
 * Who is writing a copy, recorded beside it so that what a crashed writer
 * left behind can be told apart from a write still going on.
 */
export interface WriterMarker {
  host: string;
  pid: number;
  at: string;
}

export function writerMarker(): WriterMarker {
  return { host: hostname(), pid: process.pid, at: new Date().toISOString() };
}

/** A marker as read back; unreadable text counts as no marker. */
export function parseWriterMarker(text: string | undefined): WriterMarker | undefined {
  try {
    return text ? (JSON.parse(text) as WriterMarker) : undefined;
  } catch {
    return undefined;
  }
}

/** A writer on this host whose process is gone; a marker from another host is never judged. */
export function writerIsGone(marker: WriterMarker | undefined): boolean {
  if (!marker) return true;
  return marker.host === hostname() && !processAlive(marker.pid);
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
