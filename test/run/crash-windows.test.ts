import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Fingerprints } from '../../src/fingerprint.js';
import { auditCounts, sandbox, type Sandbox } from './support.js';
import {
  ALL_ONCE,
  INIT,
  expectPreOrPost,
  killAt,
  postRunState,
  statusOf,
  windowRunbook,
  type RunDoc,
  type WindowRunbookOptions,
} from './windows.js';

/**
 * Promise 3 at each named window where a kill used to leave lifeboat unsure
 * of where things stand: the real process is killed there, every time, and
 * each recovery path (status, run again, rollback) must end in the pre-run or
 * the post-run state, with no step applied twice.
 */

let postRun: Fingerprints;
beforeAll(async () => {
  postRun = await postRunState('cw_ref');
});

let current: Sandbox | undefined;
afterEach(async () => {
  await current?.cleanup();
  current = undefined;
});

async function prepare(
  prefix: string,
  opts: WindowRunbookOptions = {},
): Promise<{ sb: Sandbox; rb: string; states: { preRun: Fingerprints; postRun: Fingerprints } }> {
  const sb = await sandbox(prefix, INIT);
  current = sb;
  const rb = await sb.write('windows.yaml', windowRunbook(opts));
  return { sb, rb, states: { preRun: await sb.fingerprint(), postRun } };
}

describe('window: the run is recorded, its pre-run fingerprints are not', () => {
  const point = 'run:recorded';

  it('status shows the stopped run with nothing applied; rollback closes it as "nothing applied" (exit 0)', async () => {
    const { sb, rb, states } = await prepare('cw_rec_rb');
    await killAt(sb, ['run', rb], point);

    const status = await statusOf(sb);
    expect(status.lastRun!.status).toBe('running');
    expect(status.steps).toEqual([]);

    const undo = await sb.json(['rollback', '--yes']);
    expect(undo.code, `${undo.stdout}\n${undo.stderr}`).toBe(0);
    const report = undo.doc.rollback as RunDoc;
    expect(report.status).toBe('rolled-back');
    expect(report.rollback).toMatchObject({ complete: true, nothingApplied: true });
    const text = await sb.cli(['status']);
    expect(text.stdout).toContain('nothing applied');
    expect((await statusOf(sb)).lastRun!.status).toBe('rolled-back');
    await expectPreOrPost(sb, states, 'pre-run');

    // Closed for good: a second rollback finds nothing to undo, a new run applies each step once.
    const again = await sb.cli(['rollback', '--yes']);
    expect(again.code, again.stderr).toBe(2);
    const fresh = await sb.cli(['run', rb]);
    expect(fresh.code, `${fresh.stdout}\n${fresh.stderr}`).toBe(0);
    await expectPreOrPost(sb, states, 'post-run');
  });

  it('run again resumes it, taking its proof before the first step: a failing step then rolls back (exit 5)', async () => {
    const { sb, rb, states } = await prepare('cw_rec_fail', { fail: 'last' });
    await killAt(sb, ['run', rb], point);
    const runId = (await statusOf(sb)).lastRun!.id;

    const again = await sb.json(['run', rb]);
    expect(again.code, `${again.stdout}\n${again.stderr}`).toBe(5);
    const report = again.doc.result as RunDoc;
    expect(report.runId).toBe(runId);
    expect(report.resumed).toBe(true);
    expect(report.rollback).toMatchObject({ complete: true, proof: { equal: true } });
    await expectPreOrPost(sb, states, 'pre-run');
  });

  it('run again resumes it to the post-run state, each step applied once', async () => {
    const { sb, rb, states } = await prepare('cw_rec_fwd');
    await killAt(sb, ['run', rb], point);
    const again = await sb.json(['run', rb]);
    expect(again.code, `${again.stdout}\n${again.stderr}`).toBe(0);
    expect((again.doc.run as RunDoc).resumed).toBe(true);
    await expectPreOrPost(sb, states, 'post-run');
    expect(await auditCounts(sb.db)).toEqual(ALL_ONCE);
  });
});
