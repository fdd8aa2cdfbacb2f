import { runPgTool } from './run-tool.js';
import { dbnameArgument, type Target } from './target.js';

/**
 * pg_restore of a directory archive into an existing, empty database, with
 * progress in tables. Verification restores without owners and privileges
 * (the roles may not exist on a scratch server); a real restore keeps them.
 */
export async function restoreArchive(
  pgRestore: string,
  dumpDir: string,
  into: Target,
  options: {
    jobs: number;
    tables: number;
    keepOwners: boolean;
    onProgress?: (detail: string) => void;
  },
): Promise<void> {
  let restored = 0;
  const result = await runPgTool(
    pgRestore,
    [
      '--exit-on-error',
      `--jobs=${options.jobs}`,
      ...(options.keepOwners ? [] : ['--no-owner', '--no-privileges']),
      // A subscription would start replicating into the copy; a publication is the source's business.
      '--no-subscriptions',
      '--no-publications',
      '--verbose',
      '--no-password',
      dbnameArgument(into.database),
      dumpDir,
    ],
    into,
    (line) => {
      if (/processing data for table|launching item \d+ TABLE DATA/.test(line)) {
        restored++;
        options.onProgress?.(`${Math.min(restored, options.tables)}/${options.tables} tables`);
      }
    },
  );
  if (!result.ok) {
    throw new Error(
      `pg_restore exited with ${result.exitCode ?? result.signal}: ${result.errorLines.slice(-3).join(' | ') || 'no message'}`,
    );
  }
}
