import { describe, expect, test } from 'vitest';
import { parseRunbook } from '../../src/runbook/parse.js';
import { resolveRunbook, type KnexMigrationFile } from '../../src/runbook/resolve.js';
import { planRunbook, type AppliedStep } from '../../src/runbook/plan.js';
import { renderPlan } from '../../src/runbook/render-plan.js';
import type { Runbook } from '../../src/runbook/types.js';

/** A resolved runbook without touching the disk: inline SQL, knex files given. */
function runbookFrom(yaml: string, knex: Record<string, KnexMigrationFile[]> = {}): Runbook {
  const parsed = parseRunbook(yaml, 'rb.yaml');
  expect(parsed.problems).toEqual([]);
  const resolved = resolveRunbook(parsed.runbook as NonNullable<typeof parsed.runbook>, {
    directory: '/srv/rb',
    files: new Map(),
    knexMigrations: new Map(Object.entries(knex)),
  });
  expect(resolved.problems).toEqual([]);
  return resolved.runbook as Runbook;
}

const RUNBOOK = `name: demo
steps:
  - id: precheck
    check: { query: SELECT true }
  - id: add-column
    sql:
      up: ALTER TABLE orders ADD COLUMN status text
      down: ALTER TABLE orders DROP COLUMN status
  - id: drop-legacy
    sql:
      up: |
        SELECT 1;
        DROP TABLE legacy_orders;
  - id: index
    sql:
      up: CREATE INDEX CONCURRENTLY orders_status ON orders (status)
      down: DROP INDEX CONCURRENTLY IF EXISTS orders_status
      verify: SELECT true
  - id: reindex
    shell: { up: "psql -c 'REINDEX TABLE orders'" }
  - id: app
    knex: { directory: m }
`;

const KNEX = {
  app: [
    {
      name: '001_index.cjs',
      file: '/srv/rb/m/001_index.cjs',
      text: 'exports.config = { transaction: false };\nexports.up = (k) => k.raw("x");\nexports.down = () => {};',
    },
  ],
};

const applied = (runbook: Runbook, ...ids: string[]): AppliedStep[] =>
  ids.map((id) => ({
    stepId: id,
    checksum: runbook.steps.find((s) => s.id === id)?.checksum ?? '',
    status: 'done',
  }));

describe('planRunbook', () => {
  const runbook = runbookFrom(RUNBOOK, KNEX);

  test('shows how each step would be undone', () => {
    const plan = planRunbook(runbook, []);
    expect(plan.steps.map((s) => [s.id, s.transaction, s.onFailure, s.undo])).toEqual([
      ['precheck', true, 'not-needed', 'not-needed'],
      ['add-column', true, 'transaction', 'down'],
      ['drop-legacy', true, 'transaction', 'none'],
      ['index', false, 'down', 'down'],
      ['reindex', false, 'none', 'none'],
      ['app/001_index.cjs', false, 'none', 'none'],
    ]);
  });

  test('shows the risks of each step, with where they are', () => {
    const risks = Object.fromEntries(
      planRunbook(runbook, []).steps.map((s) => [s.id, s.risks.map((r) => r.code)]),
    );
    expect(risks).toEqual({
      precheck: [],
      'add-column': [],
      'drop-legacy': ['drop', 'no-down'],
      index: ['non-transactional'],
      reindex: ['opaque-command', 'no-verify', 'no-down'],
      'app/001_index.cjs': ['non-transactional', 'no-verify', 'no-down'],
    });
    const drop = planRunbook(runbook, []).steps[2]?.risks[0];
    expect(drop).toEqual({
      code: 'drop',
      message: 'DROP TABLE legacy_orders deletes the table and its rows',
      where: 'rb.yaml:13',
    });
  });

  test('done, in doubt and pending steps; undoable only counts open steps', () => {
    const simple = runbookFrom(`name: demo
steps:
  - id: a
    sql: { up: DROP TABLE x }
  - id: b
    sql: { up: SELECT 1, down: SELECT 2, verify: SELECT true }
  - id: c
    sql: { up: SELECT 3, down: SELECT 4 }
`);
    const journal = applied(simple, 'a', 'b');
    journal[1] = { ...(journal[1] as AppliedStep), status: 'in-doubt' };
    const plan = planRunbook(simple, journal);
    expect(plan.steps.map((s) => s.state)).toEqual(['done', 'in-doubt', 'pending']);
    expect(plan.counts).toEqual({ pending: 1, done: 1, 'in-doubt': 1, changed: 0 });
    expect(plan.undoable).toBe(true);
    expect(plan.refusals).toEqual([]);
    expect(planRunbook(simple, []).undoable).toBe(false);
  });

  test('refuses a step whose content changed since it was applied', () => {
    const before = runbookFrom(RUNBOOK, KNEX);
    const after = runbookFrom(
      RUNBOOK.replace('ADD COLUMN status text', 'ADD COLUMN status varchar'),
      KNEX,
    );
    const plan = planRunbook(after, applied(before, 'precheck', 'add-column'));
    expect(plan.steps.map((s) => s.state).slice(0, 3)).toEqual(['done', 'changed', 'pending']);
    expect(plan.refusals).toEqual([
      'step "add-column" changed since it was applied; put back the version that ran (lifeboat never re-runs or skips an edited step)',
    ]);
  });

  test('refuses a vanished applied step, a new step before applied ones, an undecidable doubt', () => {
    const plan = planRunbook(runbook, [
      { stepId: 'gone', checksum: 'x', status: 'done' },
      ...applied(runbook, 'add-column'),
      { stepId: 'reindex', checksum: runbook.steps[4]?.checksum ?? '', status: 'in-doubt' },
    ]);
    expect(plan.refusals).toEqual([
      'step "gone" was applied but is no longer in the runbook; put it back',
      'step "precheck" is new but comes before applied step "reindex"; add new steps after the last applied one',
      'step "drop-legacy" is new but comes before applied step "reindex"; add new steps after the last applied one',
      'step "index" is new but comes before applied step "reindex"; add new steps after the last applied one',
      'step "reindex" is in doubt (it started, its end was not recorded) and has no verify query to tell whether it took effect; check the database, then add a verify query or run lifeboat rollback',
    ]);
  });

  test('a knex migration in doubt is decided by knex only when it ran in a transaction', () => {
    const twoMigrations = {
      app: [
        {
          name: '1.cjs',
          file: '/srv/rb/m/1.cjs',
          text: 'exports.up = (k) => k.raw("a");\nexports.down = (k) => k.raw("c");',
        },
        {
          name: '2.cjs',
          file: '/srv/rb/m/2.cjs',
          text: 'exports.config = { transaction: false };\nexports.up = (k) => k.raw("b");\nexports.down = (k) => k.raw("d");',
        },
      ],
    };
    const knexOnly = runbookFrom(
      'name: demo\nsteps:\n  - id: app\n    knex: { directory: m }\n',
      twoMigrations,
    );
    const inDoubt = (id: string): AppliedStep[] => [
      ...applied(knexOnly, 'app/1.cjs').filter((a) => a.stepId !== id),
      {
        stepId: id,
        checksum: knexOnly.steps.find((s) => s.id === id)?.checksum ?? '',
        status: 'in-doubt',
      },
    ];
    expect(planRunbook(knexOnly, inDoubt('app/1.cjs')).refusals).toEqual([]);
    expect(planRunbook(knexOnly, inDoubt('app/2.cjs')).refusals).toEqual([
      expect.stringContaining('step "app/2.cjs" is in doubt') as unknown,
    ]);
  });

  test('is plain JSON', () => {
    const plan = planRunbook(runbook, applied(runbook, 'precheck'));
    expect(JSON.parse(JSON.stringify(plan))).toEqual(plan);
  });
});

describe('renderPlan', () => {
  const runbook = runbookFrom(RUNBOOK, KNEX);

  test('an aligned table with each open step’s risks under it and a verdict', () => {
    const lines = renderPlan(
      planRunbook(runbook, applied(runbook, 'precheck', 'add-column', 'drop-legacy')),
    );
    expect(lines[0]).toBe('Runbook demo (rb.yaml)');
    const table = [lines[1], ...lines.filter((l) => /^ {2}\d/.test(l))] as string[];
    expect(table).toHaveLength(7);
    for (const column of ['kind', 'state', 'tx', 'if it fails', 'undo']) {
      const at = table[0]?.indexOf(column) ?? -1;
      expect(at).toBeGreaterThan(0);
      expect(table.every((row) => row.length > at && row[at - 1] === ' ' && row[at] !== ' ')).toBe(
        true,
      );
    }
    expect(lines).toContain(
      '  3  drop-legacy        sql             done     yes  transaction  none',
    );
    // Risks of done steps are history; open steps' risks are shown.
    expect(lines.join('\n')).not.toContain('DROP TABLE legacy_orders');
    expect(lines).toContain(
      '     ! opaque-command: lifeboat cannot see what a shell command changes; review it and its down',
    );
    expect(lines.at(-1)).toBe(
      '6 steps: 3 pending, 3 done; some pending steps cannot be undone (see no-down).',
    );
  });

  test('ends with the reasons a run would be refused', () => {
    const lines = renderPlan(
      planRunbook(runbook, [{ stepId: 'gone', checksum: 'x', status: 'done' }]),
    );
    expect(lines.at(-1)).toBe(
      'Refused: step "gone" was applied but is no longer in the runbook; put it back',
    );
  });
});

describe("knex's table as the truth in the plan", () => {
  const migration = (name: string) => ({
    name,
    file: `/srv/rb/m/${name}`,
    text: 'exports.up = (k) => k.raw("select 1");\nexports.down = (k) => k.raw("select 1");',
  });
  const runbook = runbookFrom(
    `name: knexy\nsteps:\n  - id: app\n    knex: { directory: m }\n  - id: after\n    sql: { up: "select 1", down: "select 1" }\n`,
    { app: ['001_a.cjs', '002_b.cjs', '003_c.cjs'].map(migration) },
  );
  const step = (id: string) => runbook.steps.find((s) => s.id === id)!;
  const byKnex = (id: string): AppliedStep => ({
    stepId: id,
    checksum: step(id).checksum,
    status: 'done',
    by: 'knex',
  });

  test('a pending migration before one knex applied is what knex would run: no refusal', () => {
    const plan = planRunbook(runbook, [byKnex('app/001_a.cjs'), byKnex('app/003_c.cjs')]);
    expect(plan.refusals).toEqual([]);
    expect(plan.steps.map((s) => [s.id, s.state, s.appliedBy ?? ''])).toEqual([
      ['app/001_a.cjs', 'done', 'knex'],
      ['app/002_b.cjs', 'pending', ''],
      ['app/003_c.cjs', 'done', 'knex'],
      ['after', 'pending', ''],
    ]);
    expect(renderPlan(plan).join('\n')).toMatch(/app\/001_a\.cjs\s+knex-migration\s+done by knex/);
  });

  test('but not before a step lifeboat applied', () => {
    const plan = planRunbook(runbook, [
      byKnex('app/001_a.cjs'),
      { stepId: 'after', checksum: step('after').checksum, status: 'done' },
    ]);
    expect(plan.refusals).toEqual([
      'step "app/002_b.cjs" is new but comes before applied step "after"; add new steps after the last applied one',
      'step "app/003_c.cjs" is new but comes before applied step "after"; add new steps after the last applied one',
    ]);
  });
});
