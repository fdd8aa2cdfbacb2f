import { quoteIdent, withClient } from './db.js';
import { BadInputError, LockHeldError } from './errors.js';

import {
  readFreeze,
  readMovedTo,
  unfreezeDatabase,
  writableDuringFreeze,
  type Freeze,
} from './run/freeze.js';
import { describeHolder, lockHolder } from './run/lock.js';
import { isMoveId } from './run/runner-id.js';
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
    const movedTo = await readMovedTo(client, target.database);
    if (movedTo) {
      throw new BadInputError(
        `${target.database} was moved to ${movedTo} (lifeboat move --finish); it stays read-only so that no application writes to the old copy. To write to it anyway: ALTER DATABASE ${quoteIdent(target.database)} RESET default_transaction_read_only.`,
      );
    }
    const holder = await lockHolder(client);
    const freeze = await readFreeze(client, target.database);
    if (freeze && isMoveId(freeze.runId) && !opts.force) {
      throw new BadInputError(
        `${target.database} is frozen by ${freeze.runId} since ${freeze.since}: go back to it with lifeboat rollback, or finish the move with lifeboat move --finish (--force lifts the freeze and leaves the move open).`,
      );
    }
    if (freeze && holder && !opts.force) {
      throw new LockHeldError(
        `Run ${freeze.runId} froze ${target.database} and ${describeHolder(holder)} is still running; it unfreezes by itself when it ends (--force to lift it now).`,
      );
    }
    return unfreezeDatabase(client, target.database);
  });
}
