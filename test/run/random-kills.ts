import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'vitest';
import type { Fingerprints } from '../../src/fingerprint.js';
import { CLI, startCli } from '../support/cli.js';
import { prng, sandbox, type Sandbox } from './support.js';
import { INIT, expectPreOrPost, expectStatusMatchesDatabase, windowRunbook } from './windows.js';

/**
 * Random SIGKILLs over whole runs, then one recovery path: a kill at a delay
 * drawn (from a recorded seed) between the start of `lifeboat run` and its
 * end, to the whole process group (a shell step's command dies with it).
 * Cheap on purpose: one small database and one backup for all the trials of
 * a path; each trial ends back in the pre-run state for the next.
 *
 * A failure names the seed and the delay; replay it with
 * LIFEBOAT_TRIAL_SEED=<seed> (and LIFEBOAT_TRIAL_DELAY=<ms> for one trial).
 */
export type RecoveryPath = 'status' | 'run' | 'rollback';

export const TRIALS = 30;

export async function randomKillTrials(recovery: RecoveryPath, prefix: string): Promise<void> {
  const seed = Number(process.env.LIFEBOAT_TRIAL_SEED ?? Date.now() % 2 ** 31);
  const onlyDelay = process.env.LIFEBOAT_TRIAL_DELAY;
  const random = prng(seed);
  const sb = await sandbox(prefix, INIT);
  try {
    const rb = await sb.write('windows.yaml', windowRunbook());
    const backup = await sb.cli(['backup']);
    expect(backup.code, backup.stderr).toBe(0);
    const preRun = await sb.fingerprint();
    // One undisturbed run gives the post-run state, how long a run takes, and when its steps begin.
    const { runMs, recordedMs } = await timedRun(sb, ['run', rb, '--backup', 'existing']);
    const states = { preRun, postRun: await sb.fingerprint() };
    await reset(sb);

    const trials = onlyDelay ? 1 : TRIALS;
    // Where the kills landed (the journal's last word), so that a reader sees what was covered.
    const landed = new Map<string, number>();
    for (let trial = 1; trial <= trials; trial++) {
      // Half over the whole run, half over its steps (after the guard), where most windows are.
      const from = random.chance(0.5) ? 0 : recordedMs;
      const delayMs = onlyDelay ? Number(onlyDelay) : random.int(from, runMs);
      const replay = `seed ${seed}, trial ${trial}, delay ${delayMs} ms (replay: LIFEBOAT_TRIAL_SEED=${seed} LIFEBOAT_TRIAL_DELAY=${delayMs})`;
      try {
        await killAfter(sb, ['run', rb, '--backup', 'existing'], delayMs);
        const where = await landedAt(sb);
        landed.set(where, (landed.get(where) ?? 0) + 1);
        await recover(sb, rb, recovery, states);
        expect(await ledgerEntries(sb), 'no database left half-created').toEqual([]);
        await reset(sb);
        await expectPreOrPost(sb, states, 'pre-run');
      } catch (err) {
        throw new Error(`${replay}: ${err instanceof Error ? err.message : String(err)}`, {
          cause: err,
        });
      }
    }
    console.log(
      `${recovery}: ${trials} kills (seed ${seed}) landed at: ${[...landed]
        .map(([k, n]) => `${k} ${n}`)
        .join(', ')}`,
    );
  } finally {
    await sb.cleanup();
  }
}

/** An undisturbed run, timed: its whole length, and when it recorded itself in the journal. */
async function timedRun(
  sb: Sandbox,
  args: string[],
): Promise<{ runMs: number; recordedMs: number }> {
  const started = Date.now();
  const run = startCli([...args, '--database-url', sb.db.url], { cwd: sb.dir });
  let finished = false;
  void run.done.then(() => (finished = true));
  let recordedMs = 0;
  while (!finished && !recordedMs) {
    const res = await sb.db
      .query('select count(*)::int as n from lifeboat_journal.runs')
      .catch(() => ({ rows: [{ n: 0 }] }));
    if ((res.rows[0] as { n: number }).n > 0) recordedMs = Date.now() - started;
    else await sleep(10);
  }
  const r = await run.done;
  expect(r.code, r.stderr).toBe(0);
  const runMs = Date.now() - started;
  return { runMs, recordedMs: Math.min(recordedMs || runMs, runMs) };
}

/** The run in a process group of its own, SIGKILLed as a whole after `delayMs` (if still running). */
async function killAfter(sb: Sandbox, args: string[], delayMs: number): Promise<void> {
  const env: NodeJS.ProcessEnv = { ...process.env, CI: 'true', NO_COLOR: '1' };
  for (const k of ['DATABASE_URL', 'PGHOST', 'PGPORT', 'PGUSER', 'PGPASSWORD', 'PGDATABASE'])
    delete env[k];
  const child = spawn(process.execPath, [CLI, ...args, '--database-url', sb.db.url], {
    cwd: sb.dir,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const ended = await Promise.race([done.then(() => true), sleep(delayMs).then(() => false)]);
  if (ended) {
    // Not killed: it ran to its end, which must be a success.
    expect(await done, stderr).toBe(0);
  } else {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // It ended just now.
    }
    await done;
  }
  // Idle sessions go at once; one the server is still executing is the recovery's to wait for.
  for (let i = 0; i < 400; i++) {
    const res = await sb.db.query(
      `select count(*)::int as n from pg_stat_activity
        where datname = current_database() and application_name like 'lifeboat %'
          and state is distinct from 'active' and pid <> pg_backend_pid()`,
    );
    if ((res.rows[0] as { n: number }).n === 0) return;
    await sleep(25);
  }
  throw new Error('the killed run still has idle sessions in the database after 10 s');
}

/** The recovery path, and what it must prove. */
async function recover(
  sb: Sandbox,
  rb: string,
  recovery: RecoveryPath,
  states: { preRun: Fingerprints; postRun: Fingerprints },
): Promise<void> {
  if (recovery === 'run') {
    const again = await sb.cli(['run', rb, '--backup', 'existing', '--lock-wait', '30s']);
    expect(again.code, `${again.stdout}\n${again.stderr}`).toBe(0);
    await expectPreOrPost(sb, states, 'post-run');
  } else if (recovery === 'rollback') {
    const undo = await sb.cli(['rollback', '--yes', '--lock-wait', '30s']);
    // Killed before the run was recorded (or after it was already rolled back): nothing to undo.
    if (undo.code === 2) expect(undo.stderr).toMatch(/no run to roll back|already rolled back/);
    else expect(undo.code, `${undo.stdout}\n${undo.stderr}`).toBe(0);
    await expectPreOrPost(sb, states, 'pre-run');
  } else {
    const status = await expectStatusMatchesDatabase(sb);
    if (status.lastRun?.status === 'succeeded') await expectPreOrPost(sb, states, 'post-run');
  }
}

/** Back to the pre-run state for the next trial: the last run, if any is left, rolled back. */
async function reset(sb: Sandbox): Promise<void> {
  const undo = await sb.cli(['rollback', '--yes', '--lock-wait', '30s']);
  if (undo.code !== 0)
    expect(undo.stderr, `${undo.stdout}\n${undo.stderr}`).toMatch(
      /no run to roll back|already rolled back/,
    );
}

async function ledgerEntries(sb: Sandbox): Promise<string[]> {
  return readdir(path.join(sb.dir, '.lifeboat/backups/databases')).catch(() => []);
}

/** The newest run's status and its last step event, or "before the run was recorded". */
async function landedAt(sb: Sandbox): Promise<string> {
  const res = await sb.db
    .query(
      `select r.status, (select s.step_id || ' ' || s.direction || ' ' || s.status
                           from lifeboat_journal.steps s where s.run_id = r.id
                          order by s.seq desc limit 1) as step
         from lifeboat_journal.runs r order by r.started_at desc limit 1`,
    )
    .catch(() => ({ rows: [] }));
  const row = res.rows[0] as { status: string; step: string | null } | undefined;
  if (!row || row.status === 'rolled-back') return 'before the run was recorded';
  return `${row.status}${row.step ? ` after ${row.step}` : ' before any step'}`;
}
