#!/usr/bin/env zx
// lifeboat's benchmarks: each figure is a ratio against the raw tools measured
// in the same run, on the same machine. Never part of the test suite.
//
//   npm run bench                      scale 50 (~750 MB) and 300 steps
//   BENCH_SCALE=5 npm run bench        a quicker pass
//   BENCH_ONLY=backup|steps npm run bench
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { $ } from 'zx';
import { startThrowawayCluster } from '../dist/cluster.js';
import { findTool } from '../dist/pgtools.js';

$.verbose = false;
const scale = Number(process.env.BENCH_SCALE ?? 50);
const stepCount = Number(process.env.BENCH_STEPS ?? 300);
const only = process.env.BENCH_ONLY;
const cli = new URL('../dist/cli.js', import.meta.url).pathname;
const root = new URL('..', import.meta.url).pathname;

const cluster = process.env.LIFEBOAT_BENCH_DATABASE_URL
  ? { url: process.env.LIFEBOAT_BENCH_DATABASE_URL, stop: async () => {} }
  : await startThrowawayCluster();
const work = await mkdtemp(path.join(os.tmpdir(), 'lifeboat-bench-'));
const dbUrl = (name) => {
  const u = new URL(cluster.url);
  u.pathname = `/${name}`;
  return u.toString();
};
const pgEnv = (name) => {
  const u = new URL(dbUrl(name));
  return {
    ...process.env,
    PGHOST: u.hostname,
    PGPORT: u.port,
    PGUSER: decodeURIComponent(u.username),
    PGPASSWORD: decodeURIComponent(u.password),
    PGDATABASE: name,
  };
};
const psql = (db, sql) => $({ env: pgEnv(db) })`psql -v ON_ERROR_STOP=1 -qAt -c ${sql}`;
const seconds = (ms) => `${(ms / 1000).toFixed(1)}s`;
const timed = async (fn) => {
  const t = Date.now();
  await fn();
  return Date.now() - t;
};

/** Run the CLI, sampling its peak resident memory (VmHWM) while it runs. */
function runCli(args, cwd) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, [cli, ...args], {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CI: 'true' },
    });
    let peakKb = 0;
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const sample = setInterval(async () => {
      try {
        const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
        peakKb = Math.max(peakKb, Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0));
      } catch {}
    }, 50);
    child.on('close', (code) => {
      clearInterval(sample);
      if (code !== 0 && code !== 5)
        reject(new Error(`lifeboat ${args.join(' ')} exited ${code}\n${out}\n${err}`));
      else resolve({ ms: Date.now() - started, peakMb: peakKb / 1024, code, out });
    });
  });
}

try {
  const server = await psql('postgres', 'show server_version');
  console.log(
    `PostgreSQL ${server.stdout.trim()}, ${os.cpus().length} cores, node ${process.version}`,
  );

  if (!only || only === 'backup') {
    console.log(`\n== verified backup vs pg_dump + pg_restore (pgbench scale ${scale}) ==`);
    await psql('postgres', 'create database bench');
    const load = await timed(async () => {
      await $({ env: pgEnv('bench') })`pgbench -i -q -s ${scale} bench`;
      await psql(
        'bench',
        `create table mixed as select g as id, md5(g::text) as t, g * 1.5 as n, now() - g * interval '1 minute' as at,
           jsonb_build_object('k', g, 'tags', array['a', 'b']) as j, decode(md5(g::text), 'hex') as b, array[g, g + 1] as arr
         from generate_series(1, ${scale * 20000}) g`,
      );
      await psql('bench', 'vacuum analyze');
    });
    const size = (
      await psql('bench', `select pg_size_pretty(pg_database_size('bench'))`)
    ).stdout.trim();
    console.log(`database: ${size} (loaded in ${seconds(load)})`);
    const major = (Number((await psql('postgres', 'show server_version_num')).stdout) / 10000) | 0;
    const pgDump = (await findTool('pg_dump', major)).path;
    const pgRestore = (await findTool('pg_restore', major)).path;

    const plainDir = path.join(work, 'plain');
    const dumpMs = await timed(
      () =>
        $({ env: pgEnv('bench') })`${pgDump} --format=directory --jobs=2 --file=${plainDir} bench`,
    );
    await psql('postgres', 'create database bench_plain_restore template template0');
    const restoreMs = await timed(
      () =>
        $({
          env: pgEnv('bench_plain_restore'),
        })`${pgRestore} --jobs=2 --exit-on-error --no-owner --no-privileges --dbname=bench_plain_restore ${plainDir}`,
    );
    await psql('postgres', 'drop database bench_plain_restore');
    const plain = dumpMs + restoreMs;
    console.log(`pg_dump -Fd -j2:   ${seconds(dumpMs)}`);
    console.log(`pg_restore -j2:    ${seconds(restoreMs)}`);

    const ws = path.join(work, 'ws');
    await mkdir(ws);
    const lb = await runCli(
      ['backup', '--database-url', dbUrl('bench'), '--jobs', '2', '--json'],
      ws,
    );
    const doc = JSON.parse(lb.out);
    console.log(
      `lifeboat backup (dump + fingerprints + checksums + restore + compare): ${seconds(lb.ms)}`,
    );
    console.log(
      `  of which restore ${seconds(doc.verification.restoreMs)}, verification total ${seconds(doc.verification.durationMs)}`,
    );
    console.log(
      `ratio lifeboat / (pg_dump + pg_restore): ${(lb.ms / plain).toFixed(2)}x   (target ≤ 1.15x)`,
    );
    console.log(`lifeboat peak RSS: ${lb.peakMb.toFixed(0)} MB   (target < 150 MB, flat in size)`);
  }

  if (!only || only === 'steps') {
    console.log(`\n== ${stepCount} trivial steps: lifeboat run vs knex migrate:latest ==`);
    for (const db of ['steps_lb', 'steps_knex']) {
      await psql('postgres', `create database ${db}`);
      await psql(db, 'create table seed (id int)');
    }
    const ws = path.join(work, 'steps');
    const migrations = path.join(ws, 'migrations');
    await mkdir(migrations, { recursive: true });
    const steps = [];
    for (let i = 1; i <= stepCount; i++) {
      const n = String(i).padStart(4, '0');
      steps.push(
        `  - id: step-${n}\n    sql:\n      up: CREATE TABLE t_${n} (id int)\n      down: DROP TABLE t_${n}`,
      );
      await writeFile(
        path.join(migrations, `${n}_t.cjs`),
        `exports.up = (knex) => knex.raw('CREATE TABLE t_${n} (id int)');\nexports.down = (knex) => knex.raw('DROP TABLE t_${n}');\n`,
      );
    }
    await writeFile(
      path.join(ws, 'steps.yaml'),
      `name: bench-steps\nsteps:\n${steps.join('\n')}\n`,
    );
    await writeFile(
      path.join(ws, 'knexfile.cjs'),
      `module.exports = { client: 'pg', connection: ${JSON.stringify(dbUrl('steps_knex'))}, migrations: { directory: './migrations', loadExtensions: ['.cjs'] } };\n`,
    );
    // The guard is satisfied by an existing verified backup, as the issue asks.
    await runCli(['backup', '--database-url', dbUrl('steps_lb')], ws);
    const lb = await runCli(
      ['run', 'steps.yaml', '--backup', 'existing', '--database-url', dbUrl('steps_lb')],
      ws,
    );
    const knexMs = await timed(
      () =>
        $({
          cwd: ws,
          env: { ...process.env, KNEX_PATH: path.join(root, 'node_modules/knex') },
        })`node ${path.join(root, 'node_modules/knex/bin/cli.js')} migrate:latest --knexfile knexfile.cjs`,
    );
    console.log(
      `lifeboat run (guard + fingerprint + ${stepCount} steps): ${seconds(lb.ms)}  (${(lb.ms / stepCount).toFixed(1)} ms/step)`,
    );
    console.log(
      `knex migrate:latest:                 ${seconds(knexMs)}  (${(knexMs / stepCount).toFixed(1)} ms/step)`,
    );
    console.log(
      `ratio lifeboat / knex: ${(lb.ms / knexMs).toFixed(2)}x   (target ≤ 1.5x); lifeboat peak RSS ${lb.peakMb.toFixed(0)} MB`,
    );
  }
} finally {
  await rm(work, { recursive: true, force: true });
  await cluster.stop();
}
