import type { SqlRunner } from '../../db.js';
import { pausePoint } from '../../faults.js';
import type { KnexMigrationStep } from '../../runbook/types.js';
import { withProcessEnv } from '../../step-env.js';
import { recordEvent, type Undo } from '../journal.js';
import type { KnexMigrationRef } from '../knex-migration.js';
import { knexBatch, readKnexTables } from '../knex-table.js';
import { booleanQuery, failed, heldLocks, outsideTransaction } from './checkpoint.js';
import type { StepKind, UndoKind } from './kind.js';
import { StepFailure, message, stepEnv, type Checkpoint, type StepRunner } from './runner.js';

/** One migration file of a knex step, run through knex so its bookkeeping stays correct. */
export const knexStep: StepKind<KnexMigrationStep> = {
  label: (step) => `knex ${step.name}`,
  transactional: (step) => step.transaction,
  undo: (step) => {
    const ref = knexRefOfStep(step);
    return step.hasDown ? { kind: 'knex', ...ref } : { kind: 'none', knex: ref };
  },
  verify: (step) => step.verify ?? null,
  async apply(r, step, base) {
    const ref = knexRefOfStep(step);
    // A file that throws while loading (a missing environment variable) ran nothing.
    // In-process step code reads process.env: it sees the step's environment, as a shell step does.
    await withProcessEnv(stepEnv(r), () => r.knex.load(ref)).catch((err: unknown) =>
      failed(r, { ...base, transactional: true }, err),
    );
    if (step.transaction) {
      await applyInKnexTransaction(r, base, ref, (inside) =>
        withProcessEnv(stepEnv(r), () => r.knex.apply(ref, { timeouts: step.timeouts, inside })),
      );
      return;
    }
    await outsideTransaction(r, base, async () => {
      await withProcessEnv(stepEnv(r), () => r.knex.apply(ref, { timeouts: step.timeouts }));
      if (step.verify && !(await booleanQuery(r.client, step.verify))) {
        throw new Error('its verify query returned false after up');
      }
    });
  },
};

export const knexUndo: UndoKind<Extract<Undo, { kind: 'knex' }>> = {
  transactional: (undo) => undo.transaction === true,
  async run(r, undo, base, timeouts) {
    // knex's migrate.down undoes what knex lists; a migration it does not list stopped part-way outside a transaction.
    const listed = knexBatch(await readKnexTables(r.client, [undo]), undo) !== undefined;
    await pausePoint(`undo:${base.stepId}:before`);
    if (listed && undo.transaction === true) {
      await applyInKnexTransaction(r, base, undo, (inside) =>
        withProcessEnv(stepEnv(r), () => r.knex.undo(undo, { timeouts, inside })),
      );
      return;
    }
    await outsideTransaction(r, base, () =>
      withProcessEnv(stepEnv(r), () =>
        listed ? r.knex.undo(undo, { timeouts }) : r.knex.undoHalfDone(undo, { timeouts }),
      ),
    );
  },
};

/** What knex needs to run the migration, as stored with it. */
function knexRefOfStep(step: KnexMigrationStep): KnexMigrationRef {
  return {
    name: step.name,
    directory: step.directory,
    tableName: step.tableName,
    ...(step.schemaName ? { schemaName: step.schemaName } : {}),
    loadExtensions: step.loadExtensions,
    transaction: step.transaction,
  };
}

/**
 * A knex migration that runs in knex's transaction: the checkpoint is written
 * inside it, after knex's row, so migration, row, batch and checkpoint commit
 * together. A failure anywhere rolls all of it back: recorded as failed, the
 * step is not applied. Once the checkpoint is written, an error means the
 * commit itself failed or was not confirmed: nothing more is recorded, the
 * journal and knex's table (committed together, or not) say which.
 */
async function applyInKnexTransaction(
  r: StepRunner,
  base: Checkpoint,
  ref: KnexMigrationRef,
  run: (inside: (sql: SqlRunner) => Promise<void>) => Promise<void>,
): Promise<void> {
  // knex's own tables are its bookkeeping, not what the migration locks.
  const own = new Set([ref.tableName, `${ref.tableName}_lock`]);
  const point =
    base.direction === 'up' ? `step:${base.stepId}:inside` : `undo:${base.stepId}:inside`;
  let checkpointed = false;
  try {
    await run(async (sql) => {
      await pausePoint(point);
      if (r.observeLocks && base.direction === 'up') {
        const locks = await heldLocks(sql);
        r.observeLocks(
          base.stepId,
          locks.filter((l) => !own.has(l.slice(l.lastIndexOf('.') + 1))),
        );
      }
      await recordEvent(sql, { ...base, status: 'done' });
      checkpointed = true;
    });
  } catch (err) {
    if (checkpointed)
      throw new StepFailure(base.stepId, base.direction, message(err), { cause: err });
    return failed(r, base, err);
  }
  // knex ran it without a transaction after all (its config says so at run time): checkpoint now.
  if (!checkpointed) await recordEvent(r.client, { ...base, transactional: false, status: 'done' });
}
