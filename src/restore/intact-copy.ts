import { VerificationFailedError } from '../errors.js';
import type { Manifest } from '../repository/manifest.js';
import type { Progress } from '../progress.js';
import type { StoredCopy } from '../repository/copies.js';
import { checkCopies } from '../verify.js';

/** The first copy of the backup whose files are intact; the damaged ones skipped are warned about. */
export async function intactCopy(
  copies: StoredCopy[],
  key: string | undefined,
  progress: Progress,
  warn: (message: string) => void,
): Promise<{ copy: StoredCopy; manifest: Manifest }> {
  const problems: string[] = [];
  // One intact copy is enough to restore; the others are read only when it is not.
  for (const copy of copies) {
    const { checks, manifest } = await checkCopies([copy], key, progress);
    const check = checks[0]!;
    if (check.intact && manifest) {
      if (problems.length > 0) {
        warn(`Skipped damaged copies of the backup: ${problems.join('; ')}`);
      }
      return { copy, manifest };
    }
    problems.push(...check.problems.map((p) => `${check.destination}: ${p}`));
  }
  throw new VerificationFailedError(
    `Backup ${copies[0]?.id ?? ''} has no intact copy, so it cannot be restored; nothing was created.`,
    { details: problems },
  );
}
