import { cp, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../src/config.js';
import { knexSettingsFromText } from '../src/init.js';
import { runCli, runJson, workspace } from './support/cli.js';
import { createTestDatabase, type TestDatabase } from './support/db.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const KNEX_EXAMPLES = fileURLToPath(new URL('../runbooks/examples/knex/', import.meta.url));

describe('knexSettingsFromText (a knexfile read as text, never run)', () => {
  it('takes the migrations block, not seeds, nor a commented-out directory', () => {
    const s = knexSettingsFromText(`
      // directory: './wrong'
      module.exports = {
        development: {
          client: 'pg',
          seeds: { directory: './seeds' },
          migrations: {
            /* directory: './also-wrong', */
            directory: "./db/migrations/",
            tableName: 'app_migrations',
            schemaName: 'ops',
            loadExtensions: ['.cjs', ".js"],
          },
        },
        production: { migrations: { directory: 'db/migrations', tableName: 'other' } },
      };`);
    expect(s).toEqual({
      directories: ['db/migrations'],
      tableName: 'app_migrations',
      schemaName: 'ops',
      loadExtensions: ['.cjs', '.js'],
      notes: [],
    });
  });

  it("reads path.join(__dirname, …), arrays, and knex's default when nothing is said", () => {
    expect(
      knexSettingsFromText(
        `export default { migrations: { directory: path.join(__dirname, 'src', 'migrations') } }`,
      ).directories,
    ).toEqual(['src/migrations']);
    expect(
      knexSettingsFromText(`const config = { migrations: { directory: ['./a', \`b\`] } }`)
        .directories,
    ).toEqual(['a', 'b']);
    expect(
      knexSettingsFromText(`module.exports = { client: 'pg', seeds: { directory: './seeds' } }`),
    ).toMatchObject({ directories: ['migrations'], tableName: undefined });
    // A separate object holding the migrations settings.
    expect(
      knexSettingsFromText(
        `const migrationConfig = { directory: './sql/migrations' };\nmodule.exports = { migrations: migrationConfig };`,
      ).directories,
    ).toEqual(['sql/migrations']);
  });

  it('says so, instead of guessing, when the directory is computed', () => {
    const s = knexSettingsFromText(`module.exports = { migrations: { directory: dirs.main } }`);
    expect(s.directories).toEqual([]);
    expect(s.notes).toEqual([
      'Could not read the migrations directory from "directory: dirs.main".',
    ]);
  });
});

describe('lifeboat init', () => {
  let ws: Awaited<ReturnType<typeof workspace>>;
  beforeEach(async () => {
    ws = await workspace();
  });
  afterEach(() => ws.cleanup());
  const inWs = (...args: string[]) => runCli(args, { cwd: ws.dir });
  const read = (file: string) => readFile(path.join(ws.dir, file), 'utf8');

  it('writes a commented, valid config and an example runbook that plan --offline accepts', async () => {
    const r = await runJson(['init'], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(0);
    const init = r.doc.init as { written: { path: string }[]; knex: unknown; runbook: string };
    expect(init.written.map((w) => w.path)).toEqual([
      'lifeboat.config.yaml',
      'runbooks/upgrade.yaml',
    ]);
    expect(init.knex).toBeNull();

    const configText = await read('lifeboat.config.yaml');
    const config = await loadConfig({}, ws.dir, {});
    expect(config.file).toBe(path.join(ws.dir, 'lifeboat.config.yaml'));
    expect(config.destinations).toEqual([
      { name: 'local', kind: 'local', path: path.join(ws.dir, '.lifeboat/backups') },
    ]);
    expect(config.maxAgeMs).toBe(24 * 3600_000);
    // Every key the file sets, or offers commented out, has a comment above it.
    const lines = configText.split('\n');
    for (const key of [
      'destinations',
      'policy',
      'jobs',
      'retention',
      'databaseUrl',
      'scratchUrl',
      'pgBinDir',
    ]) {
      const at = lines.findIndex((l) => new RegExp(`^(# )?${key}:`).test(l));
      expect(at, key).toBeGreaterThan(0);
      expect(lines[at - 1], `the line above ${key}`).toMatch(/^#/);
    }
    // Uncommenting the offered keys still gives a valid config.
    const uncommented = configText.replace(/^# (databaseUrl|scratchUrl|pgBinDir):/gm, '$1:');
    await writeFile(path.join(ws.dir, 'lifeboat.config.yaml'), uncommented);
    await expect(loadConfig({}, ws.dir, {})).resolves.toMatchObject({
      scratchUrl: 'postgres://verify@scratch-host:5432/postgres',
    });

    const plan = await runJson(['plan', 'runbooks/upgrade.yaml', '--offline'], { cwd: ws.dir });
    expect(plan.code, plan.stderr).toBe(0);
    expect((plan.doc.plan as { steps: { id: string }[] }).steps.map((s) => s.id)).toEqual([
      'database-reachable',
    ]);
  });

  it('puts the runbook in lifeboat/ when the project already has a runbooks/ directory', async () => {
    await mkdir(path.join(ws.dir, 'runbooks'));
    const r = await inWs('init');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Wrote lifeboat/upgrade.yaml');
    expect(await readdir(path.join(ws.dir, 'runbooks'))).toEqual([]);
    expect((await inWs('plan', 'lifeboat/upgrade.yaml', '--offline')).code).toBe(0);
  });

  it('refuses to overwrite (exit 2), names every file in the way, and writes nothing', async () => {
    await mkdir(path.join(ws.dir, 'runbooks'));
    await mkdir(path.join(ws.dir, 'lifeboat'));
    await writeFile(path.join(ws.dir, 'lifeboat/upgrade.yaml'), 'mine\n');
    await writeFile(path.join(ws.dir, 'lifeboat.config.json'), '{}\n');
    const r = await inWs('init');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('lifeboat.config.json, lifeboat/upgrade.yaml already exist');
    expect(r.stderr).toContain('nothing was written');
    expect(r.stderr).not.toMatch(/at .*\.js:\d+/);
    expect((await readdir(ws.dir)).sort()).toEqual([
      'lifeboat',
      'lifeboat.config.json',
      'runbooks',
    ]);
    expect(await read('lifeboat/upgrade.yaml')).toBe('mine\n');

    // One file in the way is enough; the other is not written either.
    const again = await workspace();
    try {
      await writeFile(path.join(again.dir, 'lifeboat.config.yaml'), 'policy: { copies: 1 }\n');
      const j = await runJson(['init'], { cwd: again.dir });
      expect(j.code).toBe(2);
      expect((j.doc.error as { message: string }).message).toContain(
        'lifeboat.config.yaml already exists',
      );
      expect(await readdir(again.dir)).toEqual(['lifeboat.config.yaml']);
    } finally {
      await again.cleanup();
    }
  });

  it('has help with its purpose, examples and exit codes', async () => {
    const r = await inWs('init', '--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Write a commented lifeboat\.config\.yaml and a first runbook/);
    expect(r.stdout).toContain('Examples:');
    expect(r.stdout).toMatch(/Exit codes:\n\s+0 .*\n\s+2 /);
  });
});

describe('lifeboat init in an existing knex project', () => {
  let ws: Awaited<ReturnType<typeof workspace>>;
  beforeEach(async () => {
    ws = await workspace();
  });
  afterEach(() => ws.cleanup());

  it('finds knexfile.ts with its directory, table and .ts migrations; the runbook plans', async () => {
    await mkdir(path.join(ws.dir, 'src/db/migrations'), { recursive: true });
    await writeFile(
      path.join(ws.dir, 'knexfile.ts'),
      `import type { Knex } from 'knex';
const config: { [key: string]: Knex.Config } = {
  development: {
    client: 'pg',
    connection: process.env.DATABASE_URL,
    migrations: { directory: './src/db/migrations', tableName: 'schema_history', extension: 'ts' },
    seeds: { directory: './src/db/seeds' },
  },
};
export default config;
`,
    );
    await writeFile(
      path.join(ws.dir, 'src/db/migrations/20240101_users.ts'),
      `import type { Knex } from 'knex';
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('users', (t) => { t.increments('id'); });
}
export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('users');
}
`,
    );
    await writeFile(path.join(ws.dir, 'src/db/migrations/notes.md'), 'not a migration\n');
    const r = await runJson(['init'], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(0);
    const init = r.doc.init as {
      runbook: string;
      knex: { knexfile: string; tableName: string; directories: unknown[]; notes: string[] };
    };
    expect(init.runbook).toBe('lifeboat.upgrade.yaml');
    expect(init.knex).toMatchObject({
      knexfile: 'knexfile.ts',
      tableName: 'schema_history',
      directories: [{ directory: 'src/db/migrations', loadExtensions: ['.ts'], migrations: 1 }],
    });
    expect(init.knex.notes.join('\n')).toContain('TypeScript loader');
    const runbook = parseYaml(
      await readFile(path.join(ws.dir, 'lifeboat.upgrade.yaml'), 'utf8'),
    ) as {
      steps: { id: string; knex: unknown }[];
    };
    expect(runbook.steps).toEqual([
      {
        id: 'src-db-migrations',
        knex: {
          directory: 'src/db/migrations',
          tableName: 'schema_history',
          loadExtensions: ['.ts'],
        },
      },
    ]);
    // Without a TypeScript loader in the project, knex could not load the migration: plan says so.
    const unloadable = await runCli(['plan', 'lifeboat.upgrade.yaml', '--offline'], {
      cwd: ws.dir,
    });
    expect(unloadable.code).toBe(2);
    expect(unloadable.stderr).toContain('no TypeScript loader (tsx or ts-node) is installed');
    // The project has tsx installed, as a project with .ts migrations does.
    await symlink(path.join(ROOT, 'node_modules'), path.join(ws.dir, 'node_modules'), 'dir');
    const plan = await runJson(['plan', 'lifeboat.upgrade.yaml', '--offline'], { cwd: ws.dir });
    expect(plan.code, plan.stderr).toBe(0);
    const steps = (plan.doc.plan as { steps: { id: string; undo: string }[] }).steps;
    expect(steps.map((s) => [s.id, s.undo])).toEqual([
      ['src-db-migrations/20240101_users.ts', 'down'],
    ]);
  });

  it('an .mjs project: loadExtensions [.mjs], as knex would need it', async () => {
    await mkdir(path.join(ws.dir, 'migrations'));
    await writeFile(
      path.join(ws.dir, 'knexfile.mjs'),
      `export default { client: 'pg', migrations: { loadExtensions: ['.mjs'] } };\n`,
    );
    await writeFile(
      path.join(ws.dir, 'migrations/001_a.mjs'),
      `export const up = (knex) => knex.raw('select 1');\nexport const down = (knex) => knex.raw('select 1');\n`,
    );
    const r = await runJson(['init'], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(0);
    expect((r.doc.init as { knex: { directories: unknown[] } }).knex.directories).toEqual([
      { directory: 'migrations', loadExtensions: ['.mjs'], migrations: 1 },
    ]);
    expect(
      (await runCli(['plan', 'lifeboat.upgrade.yaml', '--offline'], { cwd: ws.dir })).code,
    ).toBe(0);
  });

  it('a knexfile whose migrations directory is empty or outside: an example runbook, and why', async () => {
    await mkdir(path.join(ws.dir, 'migrations'));
    await writeFile(path.join(ws.dir, 'knexfile.js'), `module.exports = { client: 'pg' };\n`);
    const r = await runCli(['init'], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Wrote runbooks/upgrade.yaml: an example runbook');
    expect(r.stdout).toContain('note: migrations holds no migration files yet.');
    expect(r.stdout).toContain('its knex step is commented out');
    expect(
      (await runCli(['plan', 'runbooks/upgrade.yaml', '--offline'], { cwd: ws.dir })).code,
    ).toBe(0);

    const outside = await workspace();
    try {
      await writeFile(
        path.join(outside.dir, 'knexfile.cjs'),
        `module.exports = { migrations: { directory: '../shared/migrations' } };\n`,
      );
      const o = await runCli(['init'], { cwd: outside.dir });
      expect(o.code, o.stderr).toBe(0);
      expect(o.stdout).toContain('../shared/migrations is outside the project directory');
    } finally {
      await outside.cleanup();
    }
  });
});

describe('from lifeboat init in a knex project to a guarded run', () => {
  let db: TestDatabase;
  let ws: Awaited<ReturnType<typeof workspace>>;
  beforeAll(async () => {
    db = await createTestDatabase('init_knex_run');
    ws = await workspace();
    await cp(KNEX_EXAMPLES, path.join(ws.dir, 'db/migrations'), { recursive: true });
    await writeFile(
      path.join(ws.dir, 'knexfile.js'),
      `module.exports = {\n  client: 'pg',\n  connection: process.env.DATABASE_URL,\n  migrations: { directory: './db/migrations' },\n};\n`,
    );
  });
  afterAll(async () => {
    await db.drop();
    await ws.cleanup();
  });

  it('init, plan, run: every migration applied through knex, its table agreeing', async () => {
    const init = await runCli(['init'], { cwd: ws.dir });
    expect(init.code, init.stderr).toBe(0);
    expect(init.stdout).toContain(
      'Wrote lifeboat.upgrade.yaml: runs the knex migrations in db/migrations/ (3 files, .cjs)',
    );
    const env = { DATABASE_URL: db.url };
    const plan = await runCli(['plan', 'lifeboat.upgrade.yaml'], { cwd: ws.dir, env });
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toContain('3 steps: 3 pending; every pending step can be undone.');

    const run = await runJson(['run', 'lifeboat.upgrade.yaml'], { cwd: ws.dir, env });
    expect(run.code, run.stderr).toBe(0);
    expect((run.doc.run as { steps: { id: string; outcome: string }[] }).steps).toEqual([
      expect.objectContaining({
        id: 'db-migrations/20240101000000_create_customers.cjs',
        outcome: 'applied',
      }),
      expect.objectContaining({
        id: 'db-migrations/20240102000000_add_customer_name.cjs',
        outcome: 'applied',
      }),
      expect.objectContaining({
        id: 'db-migrations/20240103000000_index_customers_created_at.cjs',
        outcome: 'applied',
      }),
    ]);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const names = await client.query<{ name: string }>(
        'select name from knex_migrations order by id',
      );
      expect(names.rows.map((r) => r.name)).toEqual([
        '20240101000000_create_customers.cjs',
        '20240102000000_add_customer_name.cjs',
        '20240103000000_index_customers_created_at.cjs',
      ]);
    } finally {
      await client.end();
    }
  });
});
