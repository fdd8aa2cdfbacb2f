import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { Fingerprints } from '../../src/fingerprint.js';
import { startPaused, type CliResult } from '../support/cli.js';
import { auditCounts, expectState, sandbox, type Sandbox } from './support.js';

/**
 * Promise 3 on the real process: SIGKILL at the named pause points, then
 * `status`, `run` and `rollback` must bring the database to exactly the
 * pre-run or the post-run state (proved by fingerprints the test computes
 * itself), and no step may ever be applied twice (every step writes one row
 * into `audit`; each must be there exactly once, or not at all).
 */

const INIT = `
  create table audit (step text not null);
  create table accounts (id serial primary key, name text not null, balance int not null);
  insert into accounts (name, balance) select 'account ' || g, g * 10 from generate_series(1, 200) g;
`;

const INDEX_VALID = `SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
  WHERE c.relname = 'accounts_name_idx' AND i.indisvalid)`;

/**
 * Four steps: s1, s2 and s4 transactional, s3 not (CREATE INDEX CONCURRENTLY),
 * with a verify query unless `verify: false`. `fail` appends a division by
 * zero to that step's up, after its work.
 */
function crashRunbook(opts: { verify?: boolean; fail?: 's3' | 's4' } = {}): string {
  const boom = (id: string) => (opts.fail === id ? ';\nselect 1/0' : '');
  const s3: Record<string, unknown> = {
    up: `create index concurrently accounts_name_idx on accounts (name);\ninsert into audit values ('s3')${boom('s3')}`,
    down: `drop index concurrently if exists accounts_name_idx;\ndelete from audit where step = 's3'`,
  };
  if (opts.verify !== false) s3.verify = INDEX_VALID;
  return stringify({
    name: 'crash',
    defaults: { lockTimeout: '5s' },
    steps: [
      {
        id: 's1',
        sql: {
          up: `create table ledger (id int primary key, account int not null references accounts, amount int not null);\ninsert into audit values ('s1')`,
          down: `drop table ledger;\ndelete from audit where step = 's1'`,
        },
      },
      {
        id: 's2',
        sql: {
          up: `alter table accounts add column tier text;\nupdate accounts set tier = case when balance > 1000 then 'gold' else 'basic' end;\ninsert into audit values ('s2')`,
          down: `alter table accounts drop column tier;\ndelete from audit where step = 's2'`,
        },
      },
      { id: 's3', sql: s3 },
      {
        id: 's4',
        sql: {
          up: `insert into ledger select g, g, g * 3 from generate_series(1, 50) g;\nupdate accounts set balance = balance + 1 where id <= 20;\ninsert into audit values ('s4')${boom('s4')}`,
          down: `update accounts set balance = balance - 1 where id <= 20;\ndelete from ledger;\ndelete from audit where step = 's4'`,
        },
      },
    ],
  });
}

const ALL_ONCE = { s1: 1, s2: 1, s3: 1, s4: 1 };

interface StatusDoc {
  lock: unknown;
  lastRun: { id: string; status: string; pid: number } | null;
  steps: { id: string; state: string; note: string | null }[];
}

interface RunDoc {
  runId: string;
  resumed: boolean;
  status: string;
  steps: { id: string; outcome: string }[];
  rollback?: { complete: boolean; proof?: { equal: boolean } };
}

async function killAt(sb: Sandbox, runbook: string, point: string): Promise<CliResult> {
  const run = await startPaused(['run', runbook, '--database-url', sb.db.url], point, {
    cwd: sb.dir,
  });
  await run.reached();
  const killed = await run.kill9();
  expect(killed.signal).toBe('SIGKILL');
  // The server notices the dead connections (and drops the run lock) on its own time.
  await sb.sessionsGone();
  return killed;
}

/** `status` after the kill, as text and as JSON; both must say the same. */
async function statusAfterKill(sb: Sandbox): Promise<{ text: string; status: StatusDoc }> {
  const text = await sb.cli(['status']);
  expect(text.code, text.stderr).toBe(0);
  const json = await sb.json(['status']);
  expect(json.code, json.stderr).toBe(0);
  const status = json.doc.status as StatusDoc;
  expect(status.lock, 'the dead run no longer holds the lock').toBeNull();
  expect(text.stdout).toContain('lock: free');
  expect(status.lastRun).not.toBeNull();
  expect(text.stdout).toContain(`last run: ${status.lastRun!.id} of crash`);
  return { text: text.stdout, status };
}

function stepStatesOf(status: StatusDoc): Record<string, string> {
  return Object.fromEntries(status.steps.map((s) => [s.id, s.state]));
}

function outcomes(doc: RunDoc): Record<string, string> {
  return Object.fromEntries(doc.steps.map((s) => [s.id, s.outcome]));
}

let postRun: Fingerprints;

beforeAll(async () => {
  // The post-run state: the same runbook run through, undisturbed, on an identical database.
  const ref = await sandbox('crash_ref', INIT);
  try {
    const rb = await ref.write('crash.yaml', crashRunbook());
    const r = await ref.cli(['run', rb]);
    expect(r.code, r.stderr).toBe(0);
    expect(await auditCounts(ref.db)).toEqual(ALL_ONCE);
    postRun = await ref.fingerprint();
  } finally {
    await ref.cleanup();
  }
});

let current: Sandbox | undefined;
afterEach(async () => {
  await current?.cleanup();
  current = undefined;
});

/** A sandbox with the fixture data, the runbook written, and the pre-run fingerprints. */
async function prepare(
  prefix: string,
  runbook = crashRunbook(),
): Promise<{ sb: Sandbox; rb: string; preRun: Fingerprints }> {
  const sb = await sandbox(prefix, INIT);
  current = sb;
  const rb = await sb.write('crash.yaml', runbook);
  return { sb, rb, preRun: await sb.fingerprint() };
}

const forwardKills = [
  {
    point: 'step:s2:before',
    what: 'before a middle step',
    after: { s1: 'applied' },
    resumed: { s1: 'already-applied', s2: 'applied', s3: 'applied', s4: 'applied' },
  },
  {
    point: 'step:s2:inside',
    what: 'inside a transactional step, after its SQL, before its checkpoint row',
    after: { s1: 'applied' },
    resumed: { s1: 'already-applied', s2: 'applied', s3: 'applied', s4: 'applied' },
  },
  {
    point: 'step:s3:before-checkpoint',
    what: 'after a non-transactional step with a verify query, before its checkpoint',
    after: { s1: 'applied', s2: 'applied', s3: 'in doubt (up started)' },
    resumed: { s1: 'already-applied', s2: 'already-applied', s3: 'already-applied', s4: 'applied' },
  },
] as const;

describe.each(forwardKills)('SIGKILL at $point ($what)', ({ point, after, resumed }) => {
  it('status shows the stopped run; run again resumes to the post-run state, each step applied once', async () => {
    const { sb, rb } = await prepare('crash_fwd');
    await killAt(sb, rb, point);

    const { text, status } = await statusAfterKill(sb);
    expect(status.lastRun!.status).toBe('running');
    expect(stepStatesOf(status)).toEqual(after);
    expect(text).toContain('its process stopped');
    if (point.endsWith('before-checkpoint')) {
      expect(text).toContain('s3: in doubt (up started)');
      expect(text).toContain('a step is in doubt');
    } else {
      expect(text).not.toContain('in doubt');
    }
    // Work the kill interrupted inside a transaction is gone; work before it stays.
    const before = await auditCounts(sb.db);
    expect(before).toEqual(Object.fromEntries(Object.keys(after).map((id) => [id, 1])));

    const again = await sb.json(['run', rb]);
    expect(again.code, `${again.stdout}\n${again.stderr}`).toBe(0);
    const run = again.doc.run as RunDoc;
    expect(run.runId).toBe(status.lastRun!.id);
    expect(run.resumed).toBe(true);
    expect(run.status).toBe('succeeded');
    expect(outcomes(run)).toEqual(resumed);

    expect(await auditCounts(sb.db)).toEqual(ALL_ONCE);
    expectState(await sb.fingerprint(), postRun, 'post-run');

    const final = await sb.json(['status']);
    const last = (final.doc.status as StatusDoc).lastRun!;
    expect(last.status).toBe('succeeded');
    expect(stepStatesOf(final.doc.status as StatusDoc)).toEqual({
      s1: 'applied',
      s2: 'applied',
      s3: 'applied',
      s4: 'applied',
    });
  });

  it('rollback after the kill brings back the pre-run state; a later run applies everything once', async () => {
    const { sb, rb, preRun } = await prepare('crash_back');
    await killAt(sb, rb, point);

    const undo = await sb.json(['rollback', '--yes']);
    expect(undo.code, `${undo.stdout}\n${undo.stderr}`).toBe(0);
    const report = undo.doc.rollback as RunDoc;
    expect(report.status).toBe('rolled-back');
    expect(report.rollback?.complete).toBe(true);
    expect(report.rollback?.proof?.equal).toBe(true);
    expect(await auditCounts(sb.db)).toEqual({});
    expectState(await sb.fingerprint(), preRun, 'pre-run');

    const status = (await sb.json(['status'])).doc.status as StatusDoc;
    expect(status.lastRun!.status).toBe('rolled-back');

    // The journal is coherent after all this: a fresh run applies every step exactly once.
    const fresh = await sb.cli(['run', rb]);
    expect(fresh.code, `${fresh.stdout}\n${fresh.stderr}`).toBe(0);
    expect(await auditCounts(sb.db)).toEqual(ALL_ONCE);
    expectState(await sb.fingerprint(), postRun, 'post-run');
  });
});

const rollbackKills = [
  {
    point: 'undo:s2:before',
    what: 'step 3 of 4 failed; killed before the undo of step 2',
    fail: 's3',
    after: { s1: 'applied', s2: 'applied', s3: 'not-applied' },
  },
  {
    point: 'undo:s3:before-checkpoint',
    what: "step 4 failed; killed after step 3's non-transactional down ran, before its checkpoint",
    fail: 's4',
    after: { s1: 'applied', s2: 'applied', s3: 'in doubt (down started)', s4: 'not-applied' },
  },
] as const;

describe.each(rollbackKills)('SIGKILL in the middle of a rollback at $point ($what)', (c) => {
  it('status shows it rolling back; run finishes the rollback (exit 5) to the pre-run state', async () => {
    const { sb, rb, preRun } = await prepare('crash_mid', crashRunbook({ fail: c.fail }));
    await killAt(sb, rb, c.point);

    const { text, status } = await statusAfterKill(sb);
    expect(status.lastRun!.status).toBe('rolling-back');
    expect(text).toContain('rolling-back');
    expect(stepStatesOf(status)).toEqual(c.after);

    const again = await sb.json(['run', rb]);
    expect(again.code, `${again.stdout}\n${again.stderr}`).toBe(5);
    const error = again.doc.error as { kind: string; message: string };
    expect(error.kind).toBe('rolled-back');
    expect(error.message).toContain(
      `Run ${status.lastRun!.id} was being rolled back when it stopped`,
    );
    const report = again.doc.result as RunDoc;
    expect(report.runId).toBe(status.lastRun!.id);
    expect(report.rollback?.complete).toBe(true);
    // Never forward: nothing was applied by the run that finished the rollback.
    expect(report.steps.map((s) => s.outcome)).not.toContain('applied');

    expect(await auditCounts(sb.db)).toEqual({});
    expectState(await sb.fingerprint(), preRun, 'pre-run');
    const final = (await sb.json(['status'])).doc.status as StatusDoc;
    expect(final.lastRun!.status).toBe('rolled-back');
  });

  it('rollback after the kill finishes it: exit 0, the pre-run state', async () => {
    const { sb, rb, preRun } = await prepare('crash_midrb', crashRunbook({ fail: c.fail }));
    await killAt(sb, rb, c.point);

    const undo = await sb.cli(['rollback', '--yes']);
    expect(undo.code, `${undo.stdout}\n${undo.stderr}`).toBe(0);
    expect(undo.stdout).toContain('status: rolled-back');
    expect(undo.stdout).toContain('proof: every table');
    expect(await auditCounts(sb.db)).toEqual({});
    expectState(await sb.fingerprint(), preRun, 'pre-run');
  });
});

describe('SIGKILL after a non-transactional step WITHOUT a verify query, before its checkpoint', () => {
  const point = 'step:s3:before-checkpoint';

  it('run refuses (exit 6) with a question naming the step and --resolve; --resolve s3=applied continues without re-applying', async () => {
    const { sb, rb } = await prepare('crash_noverify', crashRunbook({ verify: false }));
    await killAt(sb, rb, point);

    const { text, status } = await statusAfterKill(sb);
    expect(stepStatesOf(status)).toEqual({
      s1: 'applied',
      s2: 'applied',
      s3: 'in doubt (up started)',
    });
    expect(text).toContain('--resolve STEP=applied|not-applied');
    const runId = status.lastRun!.id;

    const refused = await sb.cli(['run', rb]);
    expect(refused.code, `${refused.stdout}\n${refused.stderr}`).toBe(6);
    expect(refused.stderr).toContain(`Step s3 of run ${runId} is in doubt`);
    expect(refused.stderr).toContain(`lifeboat run ${rb} --resolve s3=applied (or =not-applied)`);
    expect(refused.stderr).not.toMatch(/at .*\.js:\d+/); // no stack trace
    // Asking changed nothing: s4 did not run, s3 was not run again.
    expect(await auditCounts(sb.db)).toEqual({ s1: 1, s2: 1, s3: 1 });

    // rollback cannot decide it either, and changes nothing.
    const rbRefused = await sb.cli(['rollback', '--yes']);
    expect(rbRefused.code, `${rbRefused.stdout}\n${rbRefused.stderr}`).toBe(6);
    expect(rbRefused.stderr + rbRefused.stdout).toContain('s3');
    expect(await auditCounts(sb.db)).toEqual({ s1: 1, s2: 1, s3: 1 });

    const resolved = await sb.json(['run', rb, '--resolve', 's3=applied']);
    expect(resolved.code, `${resolved.stdout}\n${resolved.stderr}`).toBe(0);
    const run = resolved.doc.run as RunDoc;
    expect(run.runId).toBe(runId);
    expect(outcomes(run)).toEqual({
      s1: 'already-applied',
      s2: 'already-applied',
      s3: 'already-applied',
      s4: 'applied',
    });
    expect(await auditCounts(sb.db)).toEqual(ALL_ONCE);
    expectState(await sb.fingerprint(), postRun, 'post-run');

    const steps = await sb.db.query(
      `select error from lifeboat_journal.steps where step_id = 's3' order by seq`,
    );
    expect((steps.rows as { error: string | null }[]).map((r) => r.error)).toContain(
      'resolved applied: by the operator (--resolve)',
    );
  });

  it('rollback --resolve s3=applied undoes it and the steps before it: the pre-run state', async () => {
    const { sb, rb, preRun } = await prepare('crash_noverify_rb', crashRunbook({ verify: false }));
    await killAt(sb, rb, point);
    const undo = await sb.cli(['rollback', '--yes', '--resolve', 's3=applied']);
    expect(undo.code, `${undo.stdout}\n${undo.stderr}`).toBe(0);
    expect(await auditCounts(sb.db)).toEqual({});
    expectState(await sb.fingerprint(), preRun, 'pre-run');
  });
});
