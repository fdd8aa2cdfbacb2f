import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { backupDirs, partialDirs, smallDatabase } from './support/backups.js';
import { startCli, startPaused, workspace } from './support/cli.js';

const runbook = `name: interruptible
steps:
  - id: add-note
    sql: { up: "ALTER TABLE items ADD COLUMN note text", down: "ALTER TABLE items DROP COLUMN note" }
  - id: add-tag
    sql: { up: "ALTER TABLE items ADD COLUMN tag text", down: "ALTER TABLE items DROP COLUMN tag" }
`;

describe('Ctrl-C during a run', () => {
  it('stops at the next safe point, rolls back as a failure would, and says so; a second one explains', async () => {
    const db = await smallDatabase('interrupt');
    const ws = await workspace();
    try {
      await writeFile(path.join(ws.dir, 'rb.yaml'), runbook);
      const run = await startPaused(
        ['run', 'rb.yaml', '--database-url', db.url],
        'step:add-note:before',
        {
          cwd: ws.dir,
        },
      );
      await run.reached();
      run.child.kill('SIGINT');
      await new Promise((r) => setTimeout(r, 200));
      run.child.kill('SIGINT');
      await new Promise((r) => setTimeout(r, 200));
      await run.resume();
      const r = await run.done;
      expect(r.code, r.stderr).toBe(5);
      expect(r.stderr).toMatch(/interrupt: stopping at the next safe point/);
      expect(r.stderr).toMatch(/interrupt: lifeboat is finishing the current step or its rollback/);
      expect(r.stderr).toMatch(
        /The run was interrupted before step add-tag\. The run was rolled back/,
      );
      const cols = await db.query(
        `select count(*)::int as n from information_schema.columns where table_name = 'items' and column_name in ('note', 'tag')`,
      );
      expect(cols.rows[0]).toEqual({ n: 0 });
    } finally {
      await db.drop();
      await ws.cleanup();
    }
  });
});

describe('Ctrl-C during a backup', () => {
  it('before the dump: says what was stopped, removes the partial backup, exits 130', async () => {
    const db = await smallDatabase('interrupt_backup');
    const ws = await workspace();
    try {
      const dest = path.join(ws.dir, '.lifeboat/backups');
      const run = await startPaused(['backup', '--database-url', db.url], 'backup:snapshot-held', {
        cwd: ws.dir,
      });
      await run.reached();
      expect(await partialDirs(dest)).toHaveLength(1);
      run.child.kill('SIGINT');
      await new Promise((r) => setTimeout(r, 200));
      await run.resume();
      const r = await run.done;
      expect(r.code, r.stderr).toBe(130);
      expect(r.stderr).toMatch(
        /^interrupt: stopping the backup, and removing what it had half done\.$/m,
      );
      expect(r.stderr).toMatch(
        /^error: Interrupted: the backup was stopped before it was stored; pg_dump was stopped, the partial backup removed, and nothing was listed\.$/m,
      );
      expect(r.stderr).not.toMatch(/\n\s+at .*:\d+:\d+/);
      expect(await partialDirs(dest)).toEqual([]);
      expect(await backupDirs(dest)).toEqual([]);
    } finally {
      await db.drop();
      await ws.cleanup();
    }
  });

  it('while pg_dump runs with its workers: they are stopped with it and none is left behind', async () => {
    const db = await smallDatabase('interrupt_dumping', 1);
    // Two tables big enough to keep both of pg_dump's workers busy for a while.
    for (const t of ['big_a', 'big_b'])
      await db.query(
        `create table ${t} as select g as id, md5(g::text) || md5((-g)::text) as t from generate_series(1, 1000000) g`,
      );
    const ws = await workspace();
    try {
      const dest = path.join(ws.dir, '.lifeboat/backups');
      const run = startCli(['backup', '--jobs', '2', '--database-url', db.url], { cwd: ws.dir });
      let dumps: number[] = [];
      for (let waited = 0; dumps.length < 3 && waited < 30_000; waited += 20) {
        await new Promise((r) => setTimeout(r, 20));
        dumps = await descendantsNamed(run.child.pid!, 'pg_dump');
      }
      expect(dumps.length, 'pg_dump and its two workers never ran side by side').toBe(3);
      // Only lifeboat gets the signal, as from `kill -INT`: the tools hear of it from lifeboat,
      // and stop well before the dump would have finished (seconds of data left).
      const signalled = Date.now();
      run.child.kill('SIGINT');
      let alive = dumps;
      while (alive.length > 0 && Date.now() - signalled < 10_000) {
        await new Promise((r) => setTimeout(r, 20));
        alive = (
          await Promise.all(dumps.map(async (pid) => ((await isRunning(pid)) ? pid : 0)))
        ).filter(Boolean);
      }
      expect(alive, 'pg_dump processes left running').toEqual([]);
      expect(Date.now() - signalled, 'pg_dump was left to finish').toBeLessThan(1_500);
      const r = await run.done;
      expect(r.code, r.stderr).toBe(130);
      expect(r.stderr).toMatch(
        /^error: Interrupted: the backup was stopped before it was stored; pg_dump was stopped, the partial backup removed, and nothing was listed\.$/m,
      );
      expect(await partialDirs(dest)).toEqual([]);
      expect(await backupDirs(dest)).toEqual([]);
    } finally {
      await db.drop();
      await ws.cleanup();
    }
  });

  it('during its verification: the backup is kept, the scratch database dropped, nothing recorded', async () => {
    const db = await smallDatabase('interrupt_verify');
    const ws = await workspace();
    try {
      const dest = path.join(ws.dir, '.lifeboat/backups');
      const run = await startPaused(['backup', '--database-url', db.url], 'verify:restored', {
        cwd: ws.dir,
      });
      await run.reached();
      run.child.kill('SIGINT');
      await new Promise((r) => setTimeout(r, 200));
      await run.resume();
      const r = await run.done;
      expect(r.code, r.stderr).toBe(130);
      const [dir] = await backupDirs(dest);
      const id = path.basename(dir!);
      expect(r.stderr).toContain(
        `error: Interrupted: backup ${id} is stored but unverified; its verification was stopped and the scratch database dropped.`,
      );
      expect(await readdir(path.join(dir!, 'verifications')).catch(() => [])).toEqual([]);
      const scratch = await db.query(
        `select datname from pg_database where datname like 'lifeboat_verify_%' and shobj_description(oid, 'pg_database') like $1`,
        [`%${id}%`],
      );
      expect(scratch.rows).toEqual([]);
    } finally {
      await db.drop();
      await ws.cleanup();
    }
  });
});

describe('Ctrl-C during a run', () => {
  it("during the guard's own backup (--backup new): says it was interrupted, removes the partial backup, touches nothing, exits 130", async () => {
    const db = await smallDatabase('interrupt_guard');
    const ws = await workspace();
    try {
      await writeFile(path.join(ws.dir, 'rb.yaml'), runbook);
      const dest = path.join(ws.dir, '.lifeboat/backups');
      const run = await startPaused(
        ['run', 'rb.yaml', '--backup', 'new', '--database-url', db.url],
        'backup:snapshot-held',
        { cwd: ws.dir },
      );
      await run.reached();
      run.child.kill('SIGINT');
      await new Promise((r) => setTimeout(r, 200));
      await run.resume();
      const r = await run.done;
      expect(r.code, r.stderr).toBe(130);
      expect(r.stderr).toMatch(
        /^error: Interrupted: the backup was stopped before it was stored; pg_dump was stopped, the partial backup removed, and nothing was listed\.$/m,
      );
      expect(r.stderr).not.toContain('pg_dump failed');
      expect(await partialDirs(dest)).toEqual([]);
      expect(await backupDirs(dest)).toEqual([]);
      const journal = await db.query(`select to_regnamespace('lifeboat_journal') as j`);
      expect(journal.rows[0]).toEqual({ j: null });
    } finally {
      await db.drop();
      await ws.cleanup();
    }
  });

  it('a shell step stopped by Ctrl-C is reported interrupted, and the run rolled back', async () => {
    const db = await smallDatabase('interrupt_shell');
    const ws = await workspace();
    try {
      await writeFile(
        path.join(ws.dir, 'rb.yaml'),
        `name: interruptible-shell
steps:
  - id: add-note
    sql: { up: "ALTER TABLE items ADD COLUMN note text", down: "ALTER TABLE items DROP COLUMN note" }
  - id: wait
    shell: { up: "echo $$ > step.pid; exec sleep 60", down: "true" }
`,
      );
      const run = startCli(['run', 'rb.yaml', '--database-url', db.url], { cwd: ws.dir });
      const pidFile = path.join(ws.dir, 'step.pid');
      let pid = 0;
      for (let i = 0; i < 2400 && !pid; i++) {
        pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
        if (!pid) await new Promise((r) => setTimeout(r, 25));
      }
      // What a terminal does on Ctrl-C: SIGINT to lifeboat and to the step's command alike.
      run.child.kill('SIGINT');
      process.kill(pid, 'SIGINT');
      const r = await run.done;
      expect(r.code, r.stderr).toBe(5);
      expect(r.stderr).toContain('The run was interrupted during step wait.');
      expect(r.stdout).toMatch(/wait\s+✖ interrupted/);
      expect(`${r.stdout}${r.stderr}`).not.toContain('stopped by SIGINT');
      expect(`${r.stdout}${r.stderr}`).not.toMatch(/wait\s+✖ failed/);
      const cols = await db.query(
        `select count(*)::int as n from information_schema.columns where table_name = 'items' and column_name = 'note'`,
      );
      expect(cols.rows[0]).toEqual({ n: 0 });
    } finally {
      await db.drop();
      await ws.cleanup();
    }
  });
});

/** Linux process facts from /proc/<pid>/stat: name, state and parent. */
async function processStat(
  pid: number,
): Promise<{ name: string; state: string; ppid: number } | undefined> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  const m = text && /^\d+ \((.*)\) (\S) (\d+)/s.exec(text);
  return m ? { name: m[1]!, state: m[2]!, ppid: Number(m[3]) } : undefined;
}

async function isRunning(pid: number): Promise<boolean> {
  const stat = await processStat(pid);
  return stat !== undefined && stat.state !== 'Z';
}

/** Every running process below `root` with that name. */
async function descendantsNamed(root: number, name: string): Promise<number[]> {
  const stats = new Map<number, { name: string; state: string; ppid: number }>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await processStat(Number(entry));
    if (stat) stats.set(Number(entry), stat);
  }
  const below = (pid: number): boolean => {
    for (let p = stats.get(pid)?.ppid; p !== undefined && p > 1; p = stats.get(p)?.ppid)
      if (p === root) return true;
    return false;
  };
  return [...stats]
    .filter(([pid, s]) => s.name === name && s.state !== 'Z' && below(pid))
    .map(([pid]) => pid);
}
