import { randomBytes } from 'node:crypto';

/** Run ids sort by time: run-20261121T101500Z-3f2a. */
export function newRunId(now = new Date()): string {
  return `run-${now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}-${randomBytes(2).toString('hex')}`;
}
