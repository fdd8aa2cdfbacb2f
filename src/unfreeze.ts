import { withClient } from './db.js';
import { LockHeldError } from './errors.js';
import { readFreeze, unfreezeDatabase, writableDuringFreeze, type Freeze } from './run/freeze.js';
import { describeHolder, lockHolder } from './run/lock.js';
import type { Target } from './target.js';

/**
 * Lift a freeze a run left on the target; the freeze lifted, or undefined
 * when there was none. While a run holds the lock its freeze stays (it keeps
 * the restore rung lossless) unless `force` says otherwise.
 */
export async function unfreeze(
  target: Target,
  opts: { force: boolean },
): Promise<Freeze | undefined> {
  return withClient(writableDuringFreeze(target), async (client) => {
    const holder = await lockHolder(client);
    const freeze = await readFreeze(client, target.database);
    if (freeze && holder && !opts.force) {
      throw new LockHeldError(
        `Run ${freeze.runId} froze ${target.database} and ${describeHolder(holder)} is still running; it unfreezes by itself when it ends (--force to lift it now).`,
      );
    }
    return unfreezeDatabase(client, target.database);
  });
}
