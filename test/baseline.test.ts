import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { expectState, sandbox, type Sandbox } from './run/support.js';

/**
 * `lifeboat baseline RUNBOOK --to STEP`: steps applied by hand before lifeboat
 * arrived are recorded as applied (nothing runs), are never undone, and `run`
 * starts after them.
 */
const BY_HAND = `
  create table customers (id serial primary key, email text not null);
  alter table customers add column name text;
  insert into customers (email, name) select 'c' || g || '@example.com', 'n' || g from generate_series(1, 300) g;
`;

function runbook(editFirst = false): string {
  return stringify({
    name: 'shop',
    steps: [
      {
        id: 'customers',
        sql: {
          up: `create table customers (id serial primary key, email text not null)${editFirst ? ' -- edited' : ''}`,
          down: 'drop table customers',
        },
      },
      {
        id: 'customer-name',
        sql: {
          up: 'alter table customers add column name text',
          down: 'alter table customers drop column name',
        },
      },
      {
        id: 'orders',
        sql: {
          up: 'create table orders (id serial primary key, customer_id int references customers)',
          down: 'drop table orders',
        },
      },
    ],
  });
}

let current: Sandbox | undefined;
afterEach(async () => {
  await current?.cleanup();
  current = undefined;
});

interface StepState {
  id: string;
  state: string;
}

describe('lifeboat baseline', () => {
  it('records the steps applied by hand; run starts after them; rollback never undoes them', async () => {
    const sb = await sandbox('baseline', BY_HAND);
    current = sb;
    const rb = await sb.write('rb.yaml', runbook());
    const byHand = await sb.fingerprint();

    const dry = await sb.cli(['baseline', rb, '--to', 'customer-name', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('would record 2 step(s) as applied before adoption');
    const journal = await sb.db.query(`select to_regnamespace('lifeboat_journal') as j`);
    expect(journal.rows).toEqual([{ j: null }]);

    const missing = await sb.cli(['baseline', rb, '--to', 'nope']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(
      'has no step nope; its steps are customers, customer-name, orders',
    );

    const base = await sb.json(['baseline', rb, '--to', 'customer-name']);
    expect(base.code, base.stderr).toBe(0);
    const report = base.doc.baseline as { runId: string; recorded: string[] };
    expect(report.recorded).toEqual(['customers', 'customer-name']);
    expectState(await sb.fingerprint(), byHand, 'as applied by hand');

    const plan = await sb.json(['plan', rb]);
    const planned = (plan.doc.plan as { steps: StepState[] }).steps;
    expect(planned.map((s) => [s.id, s.state])).toEqual([
      ['customers', 'done'],
      ['customer-name', 'done'],
      ['orders', 'pending'],
    ]);

    const again = await sb.cli(['baseline', rb, '--to', 'customer-name']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('nothing to record');

    const run = await sb.json(['run', rb]);
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    const outcomes = (run.doc.run as { steps: { id: string; outcome: string }[] }).steps;
    expect(outcomes.map((s) => s.outcome)).toEqual([
      'already-applied',
      'already-applied',
      'applied',
    ]);

    // The last run is the real one, not the baseline: rollback undoes orders only.
    const undo = await sb.cli(['rollback', '--yes']);
    expect(undo.code, `${undo.stdout}\n${undo.stderr}`).toBe(0);
    expect(undo.stdout).toContain('rollback: orders');
    expectState(await sb.fingerprint(), byHand, 'as applied by hand');

    const refused = await sb.cli(['rollback', report.runId, '--yes']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`Run ${report.runId} is a baseline`);
    expectState(await sb.fingerprint(), byHand, 'as applied by hand');
  });

  it('refuses (exit 2) what would contradict the journal, and knex steps, changing nothing', async () => {
    const sb = await sandbox('baseline_refuse', BY_HAND);
    current = sb;
    const rb = await sb.write('rb.yaml', runbook());
    expect((await sb.cli(['baseline', rb, '--to', 'customer-name'])).code).toBe(0);
    const counts = await sb.db.query('select count(*)::int as n from lifeboat_journal.steps');

    const edited = await sb.write('edited.yaml', runbook(true));
    const r = await sb.cli(['baseline', edited, '--to', 'customer-name']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("does not match this database's journal");
    expect(r.stderr).toContain('step "customers" changed since it was applied');

    await mkdir(path.join(sb.dir, 'migrations'));
    await sb.write(
      'migrations/001_x.js',
      'exports.up = async () => {};\nexports.down = async () => {};\n',
    );
    const withKnex = await sb.write(
      'knex.yaml',
      'name: other\nsteps:\n  - id: app\n    knex: { directory: migrations }\n',
    );
    const knex = await sb.cli(['baseline', withKnex, '--to', 'app']);
    expect(knex.code).toBe(2);
    expect(knex.stderr).toContain("knex steps need no baseline, knex's own migrations table says");
    expect(
      (await sb.db.query('select count(*)::int as n from lifeboat_journal.steps')).rows,
    ).toEqual(counts.rows);
  });
});
