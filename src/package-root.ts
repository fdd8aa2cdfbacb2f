import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * lifeboat's installed directory, where package.json, runbooks/ and scripts/
 * live. This module sits directly in dist/, as the bundled CLI does, so the
 * same relative path holds whichever of the two runs.
 */
const PACKAGE_ROOT = fileURLToPath(new URL('..', import.meta.url));

export function packageFile(...parts: string[]): string {
  return path.join(PACKAGE_ROOT, ...parts);
}
