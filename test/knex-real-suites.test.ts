import { cp, mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { startPaused } from './support/cli.js';
import { knexCli, knexStatus, type KnexStatus } from './support/knex.js';
import {
  AUTH_NEW,
  AUTH_OLD,
  CATALOG_NEW,
  CATALOG_OLD,
  suiteMigrations,
} from './support/npm-suites.js';
import { expectState, sandbox, type Sandbox } from './run/support.js';

/**
 * Real applications' knex migrations (Backstage's catalog and auth backends,
 * fetched from npm at pinned versions by test/support/npm-suites.ts): the
 * migrations of an older release applied by `knex migrate:latest`, rows in
 * their tables, then the next release's directory adopted by lifeboat.
 * Nothing knex applied is ever undone, a failure rolls back to the pre-run
 * fingerprints (exit 5), and `knex migrate:status` agrees with lifeboat.
 * Each test runs many CLI commands over ~50 migrations: it gets minutes, not the default 60 s.
 */
let current: Sandbox | undefined;
afterEach(async () => {
  await current?.cleanup();
  current = undefined;
});

const CATALOG_ROWS = `
  insert into locations (id, type, target)
    select gen_random_uuid(), 'url', 'https://example.com/' || g || '/catalog-info.yaml' from generate_series(1, 50) g;
  insert into refresh_state (entity_id, entity_ref, unprocessed_entity, errors, next_update_at, last_discovery_at,
                             location_key, result_hash, unprocessed_hash)
    select 'e' || g, 'component:default/svc-' || g, '{"kind":"Component"}', '[]', now(), now(),
           'url:https://example.com/' || g, md5(g::text), md5(g::text) from generate_series(1, 200) g;
  insert into final_entities (entity_id, hash, stitch_ticket, final_entity)
    select 'e' || g, md5(g::text), '', '{"kind":"Component"}' from generate_series(1, 200) g;
  insert into search (entity_id, key, value, original_value)
    select 'e' || g, 'kind', 'component', 'Component' from generate_series(1, 200) g;
  insert into relations (originating_entity_id, source_entity_ref, type, target_entity_ref)
    select 'e' || g, 'component:default/svc-' || g, 'ownedBy', 'group:default/team-' || (g % 7) from generate_series(1, 200) g;
  insert into refresh_state_references (source_key, target_entity_ref)
    select 'url:https://example.com/' || g, 'component:default/svc-' || g from generate_series(1, 200) g;
`;

const AUTH_ROWS = `
  insert into sessions (sid, sess, expired)
    select 'sid-' || g, '{"user":"u' || g || '"}', now() + interval '1 day' from generate_series(1, 300) g;
  insert into signing_keys (kid, created_at, key)
    select 'kid-' || g, now(), '{"kty":"EC"}' from generate_series(1, 5) g;
`;

const FAILS = `exports.up = async (knex) => {
  await knex.schema.createTable('never_kept', (t) => { t.increments('id'); });
  throw new Error('this release is not ready');
};
exports.down = (knex) => knex.schema.dropTable('never_kept');
`;

/**
 * A project at an older release: `knex migrate:latest` applied `applied`
 * (file names of that release, from `from`), rows were written; the next
 * release's migrations are in `migrations/` with a runbook for them.
 */
async function projectAt(opts: {
  prefix: string;
  applied: string[];
  from: string;
  next: string;
  rows: string;
}): Promise<Sandbox> {
  const sb = await sandbox(opts.prefix);
  current = sb;
  const release = path.join(sb.dir, 'release-old');
  await mkdir(release);
  for (const name of opts.applied) await cp(path.join(opts.from, name), path.join(release, name));
  await knexCli(sb.db.url, { directory: release, loadExtensions: ['.js'] }, ['migrate:latest']);
  await sb.db.query(opts.rows);
  await cp(opts.next, path.join(sb.dir, 'migrations'), { recursive: true });
  await sb.write(
    'rb.yaml',
    'name: backstage\ndefaults: { lockTimeout: 1s }\nsteps:\n  - id: app\n    knex: { directory: migrations, loadExtensions: [.js] }\n',
  );
  return sb;
}

const migrationsOf = (sb: Sandbox) => ({
  directory: path.join(sb.dir, 'migrations'),
  loadExtensions: ['.js'],
});
const names = async (dir: string) => (await readdir(dir)).filter((n) => n.endsWith('.js')).sort();

interface PlanDoc {
  steps: { id: string; state: string; appliedBy?: string }[];
  refusals: string[];
}

/** lifeboat's plan, as knex's completed/pending lists: the two must agree. */
async function lifeboatSays(sb: Sandbox): Promise<KnexStatus> {
  const plan = await sb.json(['plan', 'rb.yaml']);
  expect(plan.code, plan.stderr).toBe(0);
  const doc = plan.doc.plan as PlanDoc;
  const name = (id: string) => id.slice('app/'.length);
  return {
    completed: doc.steps.filter((s) => s.state === 'done').map((s) => name(s.id)),
    pending: doc.steps.filter((s) => s.state === 'pending').map((s) => name(s.id)),
  };
}

async function expectAgreement(sb: Sandbox, completed: string[], pending: string[]) {
  const knex = await knexStatus(sb.db.url, migrationsOf(sb));
  expect(knex).toEqual({ completed, pending });
  expect(await lifeboatSays(sb)).toEqual(knex);
  const lock = await sb.db.query('select is_locked from knex_migrations_lock');
  expect(lock.rows, "knex's lock is left free").toEqual([{ is_locked: 0 }]);
}

async function batches(sb: Sandbox): Promise<Map<string, number>> {
  const r = await sb.db.query('select name, batch from knex_migrations order by id');
  return new Map((r.rows as { name: string; batch: number }[]).map((row) => [row.name, row.batch]));
}

describe(`Backstage's catalog: ${CATALOG_OLD.version} applied by knex, ${CATALOG_NEW.version} adopted by lifeboat`, () => {
  it('plans the new migrations only; a lock timeout rolls back to the pre-run state (exit 5); then runs in one batch; its rollback never undoes what knex applied', async () => {
    const oldNames = await names(await suiteMigrations(CATALOG_OLD));
    const next = await suiteMigrations(CATALOG_NEW);
    const all = await names(next);
    const added = all.filter((n) => !oldNames.includes(n));
    expect(oldNames).toHaveLength(30);
    expect(added).toHaveLength(17);
    // The older release's migration names, each file as the newer package ships it.
    const sb = await projectAt({
      prefix: 'bs_catalog',
      applied: oldNames,
      from: next,
      next,
      rows: CATALOG_ROWS,
    });
    const preRun = await sb.fingerprint();

    const plan = await sb.json(['plan', 'rb.yaml']);
    const doc = plan.doc.plan as PlanDoc;
    expect(doc.refusals).toEqual([]);
    expect(doc.steps.filter((s) => s.appliedBy === 'knex').map((s) => s.id)).toEqual(
      oldNames.map((n) => `app/${n}`),
    );
    await expectAgreement(sb, oldNames, added);

    // An application session reading final_entities in an open transaction: the migration that
    // alters it waits for its lock, and lockTimeout ends the wait inside knex's transaction.
    const app = new pg.Client({ connectionString: sb.db.url, application_name: 'backstage' });
    await app.connect();
    try {
      await app.query('begin; select count(*) from final_entities');
      const blocked = await sb.cli(['run', 'rb.yaml']);
      expect(blocked.code, `${blocked.stdout}\n${blocked.stderr}`).toBe(5);
      expect(blocked.stderr).toContain('lock timeout');
      expect(blocked.stderr).toContain(
        'the database is as before the run (proved by fingerprints)',
      );
    } finally {
      await app.query('rollback').catch(() => undefined);
      await app.end();
    }
    expectState(await sb.fingerprint(), preRun, 'pre-run');
    await expectAgreement(sb, oldNames, added);

    const run = await sb.cli(['run', 'rb.yaml']);
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    await expectAgreement(sb, all, []);
    const batch = await batches(sb);
    expect(new Set(oldNames.map((n) => batch.get(n)))).toEqual(new Set([1]));
    expect(new Set(added.map((n) => batch.get(n)))).toEqual(new Set([2]));

    // Every down of the run, newest first. Backstage's downs do not restore everything their ups
    // changed, and lifeboat says so instead of claiming the pre-run state (exit 6) ...
    const undo = await sb.cli(['rollback', '--yes']);
    expect(undo.code, `${undo.stdout}\n${undo.stderr}`).toBe(6);
    expect(undo.stderr).toContain(
      `Undone: ${[...added]
        .reverse()
        .map((n) => `app/${n}`)
        .join(', ')}.`,
    );
    expect(undo.stderr).toContain(
      'Every down ran, but the database differs from its pre-run state',
    );
    // ... and nothing knex applied before lifeboat arrived was undone: its rows, its data.
    await expectAgreement(sb, oldNames, added);
    const kept = await batches(sb);
    expect([...kept.keys()]).toEqual(oldNames);
    expect(new Set(kept.values())).toEqual(new Set([1]));
    const after = await sb.fingerprint();
    for (const table of [
      'locations',
      'refresh_state',
      'search',
      'relations',
      'refresh_state_references',
    ]) {
      const t = (f: typeof after) => f.tables.find((x) => x.name === table);
      expect(t(after), table).toEqual(t(preRun));
    }
  }, 300_000);
});

describe(`Backstage's auth backend: ${AUTH_OLD.version} applied by knex, ${AUTH_NEW.version} adopted by lifeboat`, () => {
  it('a failing migration after the real ones rolls back (exit 5); a run killed inside a migration resumes with nothing run twice; knex migrate:rollback then undoes the whole run', async () => {
    const old = await suiteMigrations(AUTH_OLD);
    const oldNames = await names(old);
    const next = await suiteMigrations(AUTH_NEW);
    const all = await names(next);
    const added = all.filter((n) => !oldNames.includes(n));
    const sb = await projectAt({
      prefix: 'bs_auth',
      applied: oldNames,
      from: old,
      next,
      rows: AUTH_ROWS,
    });
    const preRun = await sb.fingerprint();

    await sb.write('migrations/29991231000000_not_ready.js', FAILS);
    const failed = await sb.cli(['run', 'rb.yaml']);
    expect(failed.code, `${failed.stdout}\n${failed.stderr}`).toBe(5);
    expect(failed.stderr).toContain('this release is not ready');
    expectState(await sb.fingerprint(), preRun, 'pre-run');
    await expectAgreement(sb, oldNames, [...added, '29991231000000_not_ready.js']);
    await rm(path.join(sb.dir, 'migrations/29991231000000_not_ready.js'));

    // Killed inside the fourth new migration's transaction, before it commits.
    const victim = added[3]!;
    const killed = await startPaused(
      ['run', 'rb.yaml', '--database-url', sb.db.url],
      `step:app/${victim}:inside`,
      { cwd: sb.dir },
    );
    await killed.reached();
    await killed.kill9();
    await sb.sessionsGone();
    await expectAgreement(sb, [...oldNames, ...added.slice(0, 3)], added.slice(3));
    const status = await sb.json(['status']);
    const steps = (status.doc.status as { steps: { id: string; state: string }[] }).steps;
    expect(steps.map((s) => [s.id, s.state])).toEqual(
      added.slice(0, 3).map((n) => [`app/${n}`, 'applied']),
    );

    const resumed = await sb.json(['run', 'rb.yaml']);
    expect(resumed.code, `${resumed.stdout}\n${resumed.stderr}`).toBe(0);
    const outcomes = (resumed.doc.run as { resumed: boolean; steps: { outcome: string }[] }).steps;
    expect(outcomes.filter((o) => o.outcome === 'applied')).toHaveLength(added.length - 3);
    await expectAgreement(sb, all, []);
    const batch = await batches(sb);
    expect(new Set(added.map((n) => batch.get(n)))).toEqual(new Set([2]));

    // knex's own rollback of the last batch undoes exactly the lifeboat run.
    await knexCli(sb.db.url, migrationsOf(sb), ['migrate:rollback']);
    await expectAgreement(sb, oldNames, added);
    expectState(await sb.fingerprint(), preRun, 'pre-run');
    const after = await sb.json(['status']);
    const undone = (after.doc.status as { steps: { state: string; note: string | null }[] }).steps;
    expect(new Set(undone.map((s) => s.state))).toEqual(new Set(['not-applied']));
  }, 300_000);
});
