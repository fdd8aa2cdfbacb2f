import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { smallDatabase } from '../support/backups.js';
import { runCli, runJson, workspace } from '../support/cli.js';
import type { TestDatabase } from '../support/db.js';
import { rewriteVerifiedManifest } from './support.js';

/**
 * A rehearsal must never touch the target: every way a step can find a
 * database leads to the scratch copy, and a step that reaches the target
 * anyway fails the rehearsal loudly.
 */
const SIGNING_KEY = 'rehearsal-signing-key-0123456789';

describe('inside a rehearsal', () => {
  let db: TestDatabase;
  let ws: Awaited<ReturnType<typeof workspace>>;
  beforeAll(async () => {
    db = await smallDatabase('sec_rehearse', 50);
    ws = await workspace();
    await mkdir(path.join(ws.dir, 'migrations'));
    // A migration that looks around: what it finds is written beside the runbook.
    await writeFile(
      path.join(ws.dir, 'migrations', '20240101000000_look.cjs'),
      `const fs = require('node:fs');
exports.up = async (knex) => {
  const found = await knex.raw('select current_database() as d');
  fs.writeFileSync(__dirname + '/../knex-saw.json', JSON.stringify({
    knex: found.rows[0].d,
    DATABASE_URL: process.env.DATABASE_URL ?? null,
    PGDATABASE: process.env.PGDATABASE ?? null,
    LIFEBOAT_SIGNING_KEY: process.env.LIFEBOAT_SIGNING_KEY ?? null,
  }));
  await knex.schema.createTable('seen', (t) => t.integer('n'));
};
exports.down = (knex) => knex.schema.dropTable('seen');
`,
    );
  });
  afterAll(async () => {
    await db.drop();
    await ws.cleanup();
  });

  it('DATABASE_URL, the PG* variables and the knex connection all lead to the scratch copy', async () => {
    await writeFile(
      path.join(ws.dir, 'look.yaml'),
      `name: look
steps:
  - id: shell
    shell:
      up: |
        psql "$DATABASE_URL" -Atc 'select current_database()' > shell-url.txt
        psql -Atc 'select current_database()' > shell-pg.txt
        psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -c "insert into items (name, qty) values ('from a step', 1)"
      down: psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -c "delete from items where name = 'from a step'"
  - id: app
    knex: { directory: migrations }
`,
    );
    // The target as most users name it: DATABASE_URL in the environment.
    const r = await runJson(['rehearse', 'look.yaml'], {
      cwd: ws.dir,
      env: { DATABASE_URL: db.url, LIFEBOAT_SIGNING_KEY: SIGNING_KEY },
    });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const scratch = /^lifeboat_rehearse_\d{14}_[0-9a-f]{8}$/;
    expect((await readFile(path.join(ws.dir, 'shell-url.txt'), 'utf8')).trim()).toMatch(scratch);
    expect((await readFile(path.join(ws.dir, 'shell-pg.txt'), 'utf8')).trim()).toMatch(scratch);
    const saw = JSON.parse(await readFile(path.join(ws.dir, 'knex-saw.json'), 'utf8')) as Record<
      string,
      string | null
    >;
    expect(saw.knex).toMatch(scratch);
    expect(saw.PGDATABASE).toBe(saw.knex);
    expect(new URL(saw.DATABASE_URL!).pathname).toBe(`/${saw.knex}`);
    // The URL a step sees carries no password (that travels in PGPASSWORD), and no key of lifeboat's.
    expect(new URL(saw.DATABASE_URL!).password).toBe('');
    expect(saw.LIFEBOAT_SIGNING_KEY).toBeNull();
    const rows = await db.query(`select count(*)::int as n from items where name = 'from a step'`);
    expect(rows.rows[0]).toEqual({ n: 0 });
    expect((await db.query(`select to_regclass('seen') as t`)).rows[0]).toEqual({ t: null });
  });

  it('a step that reaches the target anyway fails the rehearsal loudly', async () => {
    await writeFile(
      path.join(ws.dir, 'reach.yaml'),
      `name: reach
steps:
  - id: sneaky
    shell:
      up: psql "$TARGET" -v ON_ERROR_STOP=1 -c "insert into items (name, qty) values ('sneaked in', 1)"
      down: psql "$TARGET" -v ON_ERROR_STOP=1 -c "delete from items where name = 'sneaked in'"
`,
    );
    const r = await runJson(['rehearse', 'reach.yaml', '--database-url', db.url], {
      cwd: ws.dir,
      env: { TARGET: db.url },
    });
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(r.stderr).toMatch(
      /the target database changed during the rehearsal: \d+ row write\(s\)/,
    );
    const rehearsal = (r.doc.result ?? {}) as { passed?: boolean };
    expect(rehearsal.passed).toBe(false);
    // gate --rehearsed does not accept it.
    const gate = await runCli(
      ['gate', '--runbook', 'reach.yaml', '--rehearsed', '--database-url', db.url],
      {
        cwd: ws.dir,
      },
    );
    expect(gate.code).toBe(3);
  });

  it('a schema change on the target during the rehearsal fails it too', async () => {
    await writeFile(
      path.join(ws.dir, 'ddl.yaml'),
      `name: ddl
steps:
  - id: sneaky
    shell:
      up: psql "$TARGET" -v ON_ERROR_STOP=1 -c "create table sneaky (id int)"
      down: psql "$TARGET" -v ON_ERROR_STOP=1 -c "drop table sneaky"
`,
    );
    const r = await runCli(['rehearse', 'ddl.yaml', '--database-url', db.url], {
      cwd: ws.dir,
      env: { TARGET: db.url },
    });
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(r.stderr).toMatch(/the target database changed during the rehearsal: .*schema/);
  });
});

describe('the copy a rehearsal runs on', () => {
  it('is proved against the backup first: a copy that differs is refused (exit 3), nothing rehearsed', async () => {
    const db = await smallDatabase('sec_rehearse_proof', 20);
    const ws = await workspace();
    try {
      await writeFile(
        path.join(ws.dir, 'rb.yaml'),
        'name: rb\nsteps:\n  - id: add\n    sql: { up: "ALTER TABLE items ADD COLUMN x int", down: "ALTER TABLE items DROP COLUMN x" }\n',
      );
      const backup = await runCli(['backup', '--database-url', db.url], { cwd: ws.dir });
      expect(backup.code, backup.stderr).toBe(0);
      const root = path.join(ws.dir, '.lifeboat/backups');
      const [id] = (await readdir(root)).filter((n) => /^\d{8}T/.test(n));
      // The manifest now promises one row more than the archive holds.
      await rewriteVerifiedManifest(path.join(root, id!), (m) => {
        m.fingerprints.tables.find((t) => t.name === 'items')!.rows += 1;
      });
      const r = await runCli(
        ['rehearse', 'rb.yaml', '--backup', 'existing', '--database-url', db.url],
        { cwd: ws.dir },
      );
      expect(r.code, r.stdout + r.stderr).toBe(3);
      expect(r.stderr).toMatch(
        /its content differs from the backup in 1 place\(s\); nothing was rehearsed/,
      );
      expect(r.stderr).toMatch(/table public\.items: expected 21 rows?, found 20 rows?/);
      expect(r.stdout + r.stderr).not.toMatch(/Rehearse step/);
    } finally {
      await db.drop();
      await ws.cleanup();
    }
  });
});
