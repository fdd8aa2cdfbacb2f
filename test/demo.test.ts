import { chmod, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, runJson, workspace } from './support/cli.js';

/** What a demo left in `tmp`, its own TMPDIR (other files run demos meanwhile). */
async function leftovers(tmp: string): Promise<string[]> {
  return (await readdir(tmp)).filter((n) => n.startsWith('lifeboat-demo-'));
}

describe('lifeboat demo', () => {
  it('shows backup, verification, steps, failure, rollback and proof, and leaves nothing behind', async () => {
    const ws = await workspace();
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'lb-demo-'));
    await chmod(tmp, 0o755); // the demo's server runs as another OS user when we are root
    try {
      const r = await runCli(['demo'], { cwd: ws.dir, env: { TMPDIR: tmp } });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/3\. Backup \S+: .* dumped at one snapshot, 4 tables fingerprinted/);
      expect(r.stdout).toMatch(
        /4\. Verified: restored into lifeboat_verify_\S+ .*4 tables, \d+ sequences and the schema matched/,
      );
      expect(r.stdout).toMatch(
        /unique-email-normalized +✖ failed .*Key \(email_normalized\)=\(customer42@example\.com\) is duplicated/,
      );
      expect(r.stdout).toMatch(/rollback: backfill-email-normalized → add-email-normalized/);
      expect(r.stdout).toMatch(/proof: every table, sequence, large object and the schema match/);
      expect(await leftovers(tmp)).toEqual([]);
      // The demo ran on its own server, which must be gone: its password never printed either.
      expect(r.stdout).not.toMatch(/postgres:\/\/lifeboat:[^*]/);
    } finally {
      await ws.cleanup();
      await rm(tmp, { recursive: true, force: true });
    }
  });

  it('--json gives the run record', async () => {
    const ws = await workspace();
    try {
      const r = await runJson(['demo'], { cwd: ws.dir });
      expect(r.code, r.stderr).toBe(0);
      const run = (
        r.doc.demo as { run: { status: string; rollback: { proof: { equal: boolean } } } }
      ).run;
      expect(run.status).toBe('rolled-back');
      expect(run.rollback.proof.equal).toBe(true);
    } finally {
      await ws.cleanup();
    }
  });
});

describe('lifeboat demo --freeze', () => {
  it('rolls back a step with no down by restoring the backup, with proof, keeping the failed database', async () => {
    const ws = await workspace();
    try {
      const r = await runCli(['demo', '--freeze'], { cwd: ws.dir });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/drop-country-column +✔ applied/);
      expect(r.stdout).toMatch(/reference-countries +✖ failed/);
      expect(r.stdout).toMatch(
        /drop-country-column cannot be undone \(it has no down\): the run held the database frozen since its backup, so lifeboat restored backup \S+ beside it, proved it by fingerprints, and swapped it in; the failed database was kept as shop__replaced_\d+/,
      );
    } finally {
      await ws.cleanup();
    }
  });
});
