import { createHash } from 'node:crypto';

/**
 * sha256 (hex) of a step's kind and content. Parts are JSON-encoded so
 * ("ab", "c") and ("a", "bc") differ; line endings are normalised so a
 * checkout that turns LF into CRLF does not look like an edited step.
 */
export function stepChecksum(kind: string, parts: readonly (string | undefined)[]): string {
  const normalized = parts.map((p) => (p === undefined ? null : p.replaceAll('\r\n', '\n')));
  return createHash('sha256')
    .update(JSON.stringify([kind, ...normalized]))
    .digest('hex');
}

/** One checksum for a whole runbook: its name and every step's checksum, in order. */
export function runbookChecksum(name: string, stepChecksums: readonly string[]): string {
  return createHash('sha256')
    .update(JSON.stringify([name, ...stepChecksums]))
    .digest('hex');
}
