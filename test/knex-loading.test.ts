import { mkdir, realpath, symlink } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { sandbox, type Sandbox } from './run/support.js';

/**
 * lifeboat loads migrations the way the project's knex would (import in an
 * ESM scope, require otherwise, the project's TypeScript loader for .ts), and
 * `plan` finds, without running them, the files that could not load.
 */
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CJS = `exports.up = (knex) => knex.schema.createTable('gizmos', (t) => { t.increments('id'); });
exports.down = (knex) => knex.schema.dropTable('gizmos');
`;
const TS = `import type { Knex } from 'knex';
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('typed', (t: Knex.CreateTableBuilder) => { t.increments('id'); });
}
export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('typed');
}
`;

let current: Sandbox | undefined;
afterEach(async () => {
  await current?.cleanup();
  current = undefined;
});

async function project(files: Record<string, string>, knex = '{ directory: migrations }') {
  const sb = await sandbox('knex_load');
  current = sb;
  await mkdir(path.join(sb.dir, 'migrations'));
  for (const [name, text] of Object.entries(files)) await sb.write(name, text);
  await sb.write('rb.yaml', `name: app\nsteps:\n  - id: app\n    knex: ${knex}\n`);
  return sb;
}

async function journalExists(sb: Sandbox): Promise<boolean> {
  const r = await sb.db.query(`select to_regclass('lifeboat_journal.runs') is not null as there`);
  return (r.rows[0] as { there: boolean }).there;
}

describe('a migration knex could not load', () => {
  it('CommonJS .js in a "type": "module" package: plan, gate --runbook and run refuse it (exit 2) with its path, before anything runs', async () => {
    const sb = await project({
      'package.json': '{ "name": "shop", "type": "module" }\n',
      'migrations/001_create_gizmos.js': CJS,
    });
    for (const args of [
      ['plan', 'rb.yaml'],
      ['gate', '--runbook', 'rb.yaml'],
      ['run', 'rb.yaml'],
    ]) {
      const r = await sb.cli(args);
      expect(r.code, `${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(2);
      expect(r.stderr).toContain('migrations/001_create_gizmos.js:1:1');
      expect(r.stderr).toContain(
        `knex loads it as an ES module because ${path.join(await realDir(sb), 'package.json')} says "type": "module"`,
      );
      expect(r.stderr).not.toMatch(/at .*\.js:\d+/); // no stack trace
    }
    expect(await journalExists(sb)).toBe(false);
  });

  it('TypeScript without a loader in the project is refused by plan (exit 2)', async () => {
    const sb = await project({ 'migrations/001_typed.ts': TS });
    const r = await sb.cli(['plan', 'rb.yaml']);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain('migrations/001_typed.ts:1:1');
    expect(r.stderr).toContain('no TypeScript loader (tsx or ts-node) is installed');
  });

  it('a verify query for a file that is not there is a problem', async () => {
    const sb = await project(
      { 'migrations/001_create_gizmos.js': CJS },
      `{ directory: migrations, verify: { 001_create_gizmo.js: "select true" } }`,
    );
    const r = await sb.cli(['plan', 'rb.yaml']);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(
      'verify names 001_create_gizmo.js, which is not a migration in migrations',
    );
  });
});

describe('migrations loaded as the project loads them', () => {
  it.each([
    ['a CommonJS package', '{ "name": "shop" }\n'],
    ['an ESM package', '{ "name": "shop", "type": "module" }\n'],
  ])(
    '.ts migrations run through the project’s tsx in %s; .d.ts files are not migrations',
    async (_, pkg) => {
      const sb = await project({
        'package.json': pkg,
        'migrations/001_typed.ts': TS,
        'migrations/001_typed.d.ts': 'export declare function up(): Promise<void>;\n',
      });
      // The project has tsx installed, as a project with .ts migrations does.
      await symlink(path.join(ROOT, 'node_modules'), path.join(sb.dir, 'node_modules'), 'dir');
      const plan = await sb.cli(['plan', 'rb.yaml']);
      expect(plan.code, plan.stderr).toBe(0);
      expect(plan.stdout).toContain('app/001_typed.ts');
      expect(plan.stdout).not.toContain('001_typed.d.ts');
      const run = await sb.cli(['run', 'rb.yaml']);
      expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
      expect((await sb.db.query('select name from knex_migrations')).rows).toEqual([
        { name: '001_typed.ts' },
      ]);
      expect((await sb.db.query(`select to_regclass('typed') is not null as t`)).rows).toEqual([
        { t: true },
      ]);
    },
  );
});

const realDir = (sb: Sandbox): Promise<string> => realpath(sb.dir);
