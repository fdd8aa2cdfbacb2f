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
