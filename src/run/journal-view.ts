import type pg from 'pg';
import type { AppliedStep } from '../runbook/plan.js';
import type { Runbook } from '../runbook/types.js';
import { readEvents, readRuns, type RunRow, type StepEvent } from './journal.js';
import {
  knexBatch,
  knexTableKey,
  readKnexTables,
  type KnexTableRef,
  type KnexTables,
} from './knex-table.js';
import { lockHolder, type LockHolder } from './lock.js';
import { knexRefOf, stepStates, withKnexTruth } from './state.js';

/** The journal as `plan`, `status` and `gate --runbook` read it, without changing anything. */
export interface JournalView {
  runs: RunRow[];
  events: StepEvent[];
  holder: LockHolder | undefined;
  /** knex's own tables: those the runbook's knex steps use, and those the journal's knex steps name. */
  knex: KnexTables;
}

export async function readJournal(client: pg.ClientBase, runbook?: Runbook): Promise<JournalView> {
  const events = await readEvents(client);
  return {
    runs: await readRuns(client),
    events,
    holder: await lockHolder(client),
    knex: await readKnexTruth(client, events, runbook),
  };
}

/** knex's tables that decide the knex steps of `runbook` and of the journal. */
export function readKnexTruth(
  client: pg.ClientBase,
  events: readonly StepEvent[],
  runbook?: Runbook,
): Promise<KnexTables> {
  const refs: KnexTableRef[] = [];
  for (const step of runbook?.steps ?? []) if (step.kind === 'knex-migration') refs.push(step);
  for (const e of events) {
    const ref = knexRefOf(e);
    if (ref) refs.push(ref);
  }
  return readKnexTables(client, refs);
}

/**
 * The runbook's steps that are, or may be, in the database: what planning
 * needs. knex's table is the truth for knex steps: a migration it lists is
 * done even when lifeboat never ran it (`by: 'knex'`), and one it no longer
 * lists is not applied, whatever the journal says.
 */
export function appliedSteps(
  events: readonly StepEvent[],
  runbook: Runbook,
  knex: KnexTables,
): AppliedStep[] {
  const states = withKnexTruth(stepStates(events, runbook.name), knex);
  const current = new Map(runbook.steps.map((s) => [s.id, s.checksum]));
  const applied: AppliedStep[] = [...states.values()]
    .filter((s) => s.effect !== 'not-applied')
    .map((s) =>
      s.outside === 'applied'
        ? {
            stepId: s.stepId,
            checksum: current.get(s.stepId) ?? s.checksum,
            status: 'done',
            by: 'knex',
          }
        : {
            stepId: s.stepId,
            checksum: s.checksum,
            status: s.effect === 'applied' ? 'done' : 'in-doubt',
          },
    );
  const files = new Map<string, { group: string; names: Set<string> }>();
  for (const step of runbook.steps) {
    if (step.kind !== 'knex-migration') continue;
    if (!states.has(step.id) && knexBatch(knex, step) !== undefined)
      applied.push({ stepId: step.id, checksum: step.checksum, status: 'done', by: 'knex' });
    const key = knexTableKey(step);
    const table = files.get(key) ?? { group: step.group, names: new Set<string>() };
    table.names.add(step.name);
    files.set(key, table);
  }
  // A migration knex lists whose file is gone: knex refuses to run anything until it is back.
  for (const [key, table] of files) {
    for (const name of knex.get(key)?.keys() ?? []) {
      const stepId = `${table.group}/${name}`;
      if (!table.names.has(name) && !applied.some((a) => a.stepId === stepId))
        applied.push({ stepId, checksum: '', status: 'done', by: 'knex' });
    }
  }
  return applied;
}

/** appliedSteps of `runbook`, read from the database. */
export async function appliedStepsIn(
  client: pg.ClientBase,
  runbook: Runbook,
): Promise<AppliedStep[]> {
  const { events, knex } = await readJournal(client, runbook);
  return appliedSteps(events, runbook, knex);
}
