import { mkdir, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { smallDatabase } from '../support/backups.js';
import { runCli, workspace } from '../support/cli.js';
import type { TestDatabase } from '../support/db.js';

/**
 * What held up under attack, kept under test. (Elsewhere: passwords in argv
 * and connection errors in secrets.test.ts; quoted identifiers in
 * hostile-schema.test.ts; look-alike scratch databases in
 * ../verify-faults.test.ts; swap refused with sessions in ../restore.test.ts.)
 */
describe('what held up', () => {
  let db: TestDatabase;
  let ws: Awaited<ReturnType<typeof workspace>>;
  beforeAll(async () => {
    db = await smallDatabase('sec_keep', 10);
    ws = await workspace();
  });
  afterAll(async () => {
    await db.drop();
    await ws.cleanup();
  });

  it('verify ../../etc is refused as no such backup, reading nothing there', async () => {
    for (const id of ['../../etc', '/etc', '..', 'x/../../y']) {
      const r = await runCli(['verify', id, '--database-url', db.url], { cwd: ws.dir });
      expect(r.code, id).toBe(2);
      expect(r.stderr).toContain(`No backup ${id} in any destination`);
    }
  });

  it('plan and gate never execute migration code', async () => {
    const marker = path.join(ws.dir, 'migration-ran');
    await mkdir(path.join(ws.dir, 'migrations'));
    await writeFile(
      path.join(ws.dir, 'migrations', '20240101000000_boom.cjs'),
      `require('node:fs').writeFileSync(${JSON.stringify(marker)}, 'ran');
exports.up = async () => {};
exports.down = async () => {};
`,
    );
    await writeFile(
      path.join(ws.dir, 'knex.yaml'),
      'name: k\nsteps:\n  - id: app\n    knex: { directory: migrations }\n',
    );
    const plan = await runCli(['plan', 'knex.yaml', '--database-url', db.url], { cwd: ws.dir });
    expect(plan.code, plan.stderr).toBe(0);
    const offline = await runCli(['plan', 'knex.yaml', '--offline'], { cwd: ws.dir });
    expect(offline.code, offline.stderr).toBe(0);
    const gate = await runCli(['gate', '--runbook', 'knex.yaml', '--database-url', db.url], {
      cwd: ws.dir,
    });
    expect(gate.code).toBe(3);
    expect(
      await stat(marker).then(
        () => true,
        () => false,
      ),
    ).toBe(false);
  });

  it('a runbook file that is a symlink out of the runbook directory is refused', async () => {
    const outside = path.join(ws.dir, 'outside.sql');
    await writeFile(outside, 'DROP TABLE items;');
    await mkdir(path.join(ws.dir, 'rb'));
    await symlink(outside, path.join(ws.dir, 'rb', 'up.sql'));
    await writeFile(
      path.join(ws.dir, 'rb', 'rb.yaml'),
      'name: r\nsteps:\n  - id: s\n    sql: { upFile: up.sql }\n',
    );
    const r = await runCli(['plan', 'rb/rb.yaml', '--offline'], { cwd: ws.dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/up\.sql.*outside the runbook/);
  });
});
