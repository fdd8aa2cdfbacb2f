#!/usr/bin/env zx
// lifeboat's benchmarks: each figure is a ratio against the raw tools measured
// in the same run, on the same machine. Never part of the test suite.
//
//   npm run bench                      scale 50 (~937 MB) and 300 steps
//   BENCH_SCALE=5 npm run bench        a quicker pass
//   BENCH_SCALE=20,50,150 BENCH_ONLY=backup npm run bench
//                                      how each phase grows with the data
//   BENCH_ROUNDS=5                     rounds of the backup section (default 3)
//   BENCH_STEPS_ROUNDS=7               rounds of the steps section (default 5), each at
//                                      BENCH_STEPS and a tenth of it
//   BENCH_ONLY=backup|offsite|move|steps|knex npm run bench
//
// The backup section alternates which side goes first in each round and
// reports medians: on a shared machine a single run says little.
//
// A failing section prints why and the bench exits 1; the other sections still run.
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { $ } from 'zx';
import { startThrowawayCluster } from '../dist/cluster.js';
import { findTool } from '../dist/pg-programs/find.js';
import { startNpmServerBuild } from '../dist/pg-programs/npm-server-build.js';

$.verbose = false;
const scales = String(process.env.BENCH_SCALE ?? 50)
  .split(',')
  .map((s) => Number(s.trim()));
if (scales.some((s) => !(s > 0))) {
  console.error(`BENCH_SCALE must be one or more positive numbers, comma-separated`);
  process.exit(2);
}
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const stepCount = Number(process.env.BENCH_STEPS ?? 300);
const only = process.env.BENCH_ONLY;
if (!['backup', 'offsite', 'move', 'steps', 'knex', undefined].includes(only)) {
  console.error(`BENCH_ONLY must be backup, offsite, move, steps or knex (not "${only}")`);
  process.exit(2);
}
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
const megabytes = (bytes) => `${(bytes / 2 ** 20).toFixed(0)} MB`;
const timed = async (fn) => {
  const t = Date.now();
  await fn();
  return Date.now() - t;
};
const loadNote = () => {
  const [one, five] = os.loadavg();
  return `load average ${one.toFixed(2)} (1 min), ${five.toFixed(2)} (5 min) on ${os.cpus().length} cores`;
};

/** Run the CLI, sampling its peak resident memory (VmHWM) while it runs. */
function runCli(args, cwd, env = {}) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, [cli, ...args], {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CI: 'true', ...env },
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

/** knex migrate:latest with the knexfile.cjs in `ws`, timed. */
const knexMigrateLatest = (ws) =>
  timed(
    () =>
      $({
        cwd: ws,
        env: { ...process.env, KNEX_PATH: path.join(root, 'node_modules/knex') },
      })`node ${path.join(root, 'node_modules/knex/bin/cli.js')} migrate:latest --knexfile knexfile.cjs`,
  );

/**
 * What a durable checkpoint per step costs at the least, in a database of its own: for each
 * step one round trip holding the step, a checkpoint row and the commit, and nothing else.
 */
async function commitsAlone(db, count) {
  const client = new pg.Client({ connectionString: dbUrl(db) });
  await client.connect();
  try {
    await client.query('create table checkpoints (step int primary key, at timestamptz not null)');
    const started = Date.now();
    for (let i = 1; i <= count; i++) {
      await client.query(
        `begin; create table t_${i} (id int); insert into checkpoints values (${i}, clock_timestamp()); commit`,
      );
    }
    return Date.now() - started;
  } finally {
    await client.end();
  }
}

/** Both, the first going first in odd rounds: neither always runs on a warmer machine. */
async function alternately(round, first, second) {
  if (round % 2 === 1) {
    const a = await first();
    return [a, await second()];
  }
  const b = await second();
  return [await first(), b];
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The pgbench database (plus a table of mixed types) of each scale, built once for every section that needs it. */
const benchDbs = new Map();
function benchDatabase(scale) {
  if (!benchDbs.has(scale)) benchDbs.set(scale, buildBenchDatabase(scale));
  return benchDbs.get(scale);
}
async function buildBenchDatabase(scale) {
  {
    const name = `bench_s${scale}`;
    await psql('postgres', `create database ${name}`);
    const load = await timed(async () => {
      await $({ env: pgEnv(name) })`pgbench -i -q -s ${scale} ${name}`;
      await psql(
        name,
        `create table mixed as select g as id, md5(g::text) as t, g * 1.5 as n, now() - g * interval '1 minute' as at,
           jsonb_build_object('k', g, 'tags', array['a', 'b']) as j, decode(md5(g::text), 'hex') as b, array[g, g + 1] as arr
         from generate_series(1, ${scale * 20000}) g`,
      );
      await psql(name, 'vacuum analyze');
    });
    const size = (
      await psql(name, `select pg_size_pretty(pg_database_size(current_database()))`)
    ).stdout.trim();
    const major = (Number((await psql('postgres', 'show server_version_num')).stdout) / 10000) | 0;
    return {
      name,
      described: `${size} (loaded in ${seconds(load)})`,
      pgDump: (await findTool('pg_dump', major)).path,
      pgRestore: (await findTool('pg_restore', major)).path,
    };
  }
}

/** One section: a failure is printed plainly and fails the bench, not the sections after it. */
let failed = false;
async function section(name, fn) {
  if (only && only !== name) return;
  try {
    await fn();
  } catch (err) {
    failed = true;
    console.error(`\nbench ${name} FAILED: ${err?.stack ?? err}`);
  }
}

/** Every file below dir, relative to it, sorted. */
async function filesUnder(dir) {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath ?? e.path, e.name)))
    .sort();
}

async function bytesUnder(dir) {
  let total = 0;
  for (const f of await filesUnder(dir)) total += (await stat(path.join(dir, f))).size;
  return total;
}

/** age -r recipient of one file, as a stream; `done` settles when age has exited. */
function ageEncrypted(file, recipient) {
  const child = spawn('age', ['-r', recipient, file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const done = new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`age -r … ${file} exited ${code}: ${err}`)),
    );
  });
  return { body: child.stdout, done, kill: () => child.kill() };
}

try {
  const server = await psql('postgres', 'show server_version');
  console.log(
    `PostgreSQL ${server.stdout.trim()}, ${os.cpus().length} cores, node ${process.version}`,
  );

  await section('backup', async () => {
    const growth = [];
    for (const scale of scales) growth.push(await backupVersusTools(scale));
    if (growth.length > 1) {
      console.log(`\n== how each phase grows (medians, seconds; per GB of database) ==`);
      const cols = Object.keys(growth[0].phases);
      console.log(['scale', 'GB', ...cols].join('\t'));
      for (const g of growth)
        console.log(
          [g.scale, g.gb.toFixed(2), ...cols.map((c) => (g.phases[c] / 1000).toFixed(1))].join(
            '\t',
          ),
        );
      for (const g of growth)
        console.log(
          [
            `${g.scale} per GB`,
            '',
            ...cols.map((c) => (g.phases[c] / 1000 / g.gb).toFixed(1)),
          ].join('\t'),
        );
    }
  });

  /** One scale: `rounds` rounds, each side first in turn; medians of every phase and of the ratio. */
  async function backupVersusTools(scale) {
    console.log(`\n== verified backup vs pg_dump + pg_restore (pgbench scale ${scale}) ==`);
    const { name, described, pgDump, pgRestore } = await benchDatabase(scale);
    const gb =
      Number((await psql(name, 'select pg_database_size(current_database())')).stdout) / 2 ** 30;
    console.log(`database: ${described}; ${rounds} rounds, alternating which goes first`);
    console.log(`before: ${loadNote()}`);

    const plainRun = async (round) => {
      const plainDir = path.join(work, `plain-${scale}-${round}`);
      const restored = `bench_plain_restore_${scale}_${round}`;
      const dumpMs = await timed(
        () =>
          $({
            env: pgEnv(name),
          })`${pgDump} --format=directory --jobs=2 --file=${plainDir} ${name}`,
      );
      await psql('postgres', `create database ${restored} template template0`);
      const restoreMs = await timed(
        () =>
          $({
            env: pgEnv(restored),
          })`${pgRestore} --jobs=2 --exit-on-error --no-owner --no-privileges --dbname=${restored} ${plainDir}`,
      );
      await psql('postgres', `drop database ${restored}`);
      await rm(plainDir, { recursive: true, force: true });
      return { dumpMs, restoreMs, ms: dumpMs + restoreMs };
    };
    const lifeboatRun = async (round) => {
      const ws = path.join(work, `ws-${scale}-${round}`);
      await mkdir(ws);
      const lb = await runCli(
        ['backup', '--database-url', dbUrl(name), '--jobs', '2', '--json'],
        ws,
      );
      await rm(ws, { recursive: true, force: true });
      const doc = JSON.parse(lb.out);
      const b = doc.backup.phases ?? {};
      const v = doc.verification;
      return {
        ms: lb.ms,
        peakMb: lb.peakMb,
        phases: {
          dump: b.dumpMs ?? doc.backup.dumpMs,
          sourceFp: b.fingerprintMs ?? NaN,
          dumpAndFp: b.snapshotMs ?? NaN,
          checksums: b.checksumMs ?? NaN,
          restore: v.restoreMs,
          copyFp: v.fingerprintMs ?? NaN,
          // Checking manifests, the scratch database and role, comparing, recording.
          verifyRest: v.durationMs - v.restoreMs - (v.fingerprintMs ?? 0),
          whole: lb.ms,
        },
      };
    };

    const results = [];
    for (let round = 1; round <= rounds; round++) {
      let plain;
      let lb;
      if (round % 2 === 1) {
        plain = await plainRun(round);
        lb = await lifeboatRun(round);
      } else {
        lb = await lifeboatRun(round);
        plain = await plainRun(round);
      }
      results.push({ plain, lb, ratio: lb.ms / plain.ms });
      console.log(
        `round ${round} (${round % 2 === 1 ? 'tools first' : 'lifeboat first'}): pg_dump ${seconds(plain.dumpMs)} + pg_restore ${seconds(plain.restoreMs)} = ${seconds(plain.ms)}; lifeboat ${seconds(lb.ms)} (${Object.entries(
          lb.phases,
        )
          .filter(([k]) => k !== 'whole')
          .map(([k, v]) => `${k} ${seconds(v)}`)
          .join(', ')}); ratio ${(lb.ms / plain.ms).toFixed(2)}x`,
      );
    }
    const phases = Object.fromEntries(
      Object.keys(results[0].lb.phases).map((k) => [k, median(results.map((r) => r.lb.phases[k]))]),
    );
    console.log(
      `median pg_dump -Fd -j2 ${seconds(median(results.map((r) => r.plain.dumpMs)))}, pg_restore -j2 ${seconds(median(results.map((r) => r.plain.restoreMs)))}`,
    );
    console.log(
      `median lifeboat backup phases: ${Object.entries(phases)
        .map(([k, v]) => `${k} ${seconds(v)}`)
        .join(', ')}`,
    );
    console.log(
      `ratio lifeboat / (pg_dump + pg_restore): median ${median(results.map((r) => r.ratio)).toFixed(2)}x of ${results
        .map((r) => r.ratio.toFixed(2))
        .join(', ')}   (target ≤ 1.15x)`,
    );
    console.log(
      `lifeboat peak RSS: ${Math.max(...results.map((r) => r.lb.peakMb)).toFixed(0)} MB at most   (target < 150 MB, flat in size)`,
    );
    console.log(`after: ${loadNote()}`);
    return { scale, gb, phases };
  }

  await section('offsite', async () => {
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    const { S3Client, CreateBucketCommand } = await import('@aws-sdk/client-s3');
    const { Upload } = await import('@aws-sdk/lib-storage');
    // The test store lives with the tests (it does not ship): loaded from source through tsx.
    const { tsImport } = await import('tsx/esm/api');
    const { startS3Server } = await tsImport('../test/support/s3-server.ts', import.meta.url);
    const s3 = await startS3Server();
    const client = new S3Client({
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      // As lifeboat does: S3-compatible stores do not all know the newer CRC checksum headers.
      requestChecksumCalculation: 'WHEN_REQUIRED',
    });
    try {
      const bucket = 'lifeboat-bench';
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
      console.log(
        `S3 store: OpenStack Swift + s3api on loopback (${s3.endpoint}); no network latency, so the ratios measure lifeboat's overhead, not bandwidth`,
      );
      const keyFile = path.join(work, 'age-key.txt');
      await $`age-keygen -o ${keyFile}`.quiet();
      const recipient = (await $`age-keygen -y ${keyFile}`).stdout.trim();
      const awsEnv = {
        AWS_ACCESS_KEY_ID: s3.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      };

      /** pg_dump -Fd into a fresh directory, then every file up, one after the other. */
      let benchName;
      let pgDump;
      const raw = async (name, encrypt) => {
        const dir = path.join(work, name);
        let dumpMs = 0;
        const ms = await timed(async () => {
          dumpMs = await timed(
            () =>
              $({
                env: pgEnv(benchName),
              })`${pgDump} --format=directory --jobs=2 --file=${dir} ${benchName}`,
          );
          for (const rel of await filesUnder(dir)) {
            const file = path.join(dir, rel);
            const age = encrypt ? ageEncrypted(file, recipient) : undefined;
            const upload = new Upload({
              client,
              params: {
                Bucket: bucket,
                Key: `${name}/${rel}${encrypt ? '.age' : ''}`,
                Body: age ? age.body : createReadStream(file),
              },
            });
            await Promise.all([upload.done(), age?.done]).catch((err) => {
              age?.kill();
              throw err;
            });
          }
        });
        const bytes = await bytesUnder(dir);
        await rm(dir, { recursive: true, force: true });
        return { ms, dumpMs, bytes };
      };

      /** lifeboat backup --no-verify to a local directory and to the store. */
      const lifeboat = async (name, encrypt) => {
        const ws = path.join(work, `${name}-${benchName}`);
        await mkdir(ws);
        await writeFile(
          path.join(ws, 'lifeboat.config.json'),
          JSON.stringify({
            destinations: [
              { name: 'local', path: 'backups' },
              {
                name: 'offsite',
                url: `s3://${bucket}/${name}`,
                endpoint: s3.endpoint,
                region: s3.region,
                forcePathStyle: true,
                ...(encrypt ? { encrypt: { recipients: [recipient] } } : {}),
              },
            ],
            policy: { copies: 2 },
          }),
        );
        const lb = await runCli(
          ['backup', '--no-verify', '--database-url', dbUrl(benchName), '--jobs', '2', '--json'],
          ws,
          awsEnv,
        );
        const doc = JSON.parse(lb.out).backup;
        const failedCopies = doc.copies.filter((c) => !c.ok);
        if (failedCopies.length > 0)
          throw new Error(`lifeboat copies failed: ${JSON.stringify(failedCopies)}`);
        await rm(path.join(ws, 'backups'), { recursive: true, force: true });
        return { ...lb, bytes: doc.bytes };
      };

      const report = (what, rawRun, lb, rawWhat) => {
        console.log(
          `${rawWhat}: ${seconds(rawRun.ms)}  (dump ${seconds(rawRun.dumpMs)}, then uploads ${seconds(rawRun.ms - rawRun.dumpMs)})`,
        );
        console.log(`lifeboat backup --no-verify, ${what}: ${seconds(lb.ms)}`);
        console.log(
          `ratio lifeboat / (${rawWhat.trim()}): ${(lb.ms / rawRun.ms).toFixed(2)}x; lifeboat peak RSS ${lb.peakMb.toFixed(0)} MB; dump ${megabytes(lb.bytes)} (raw ${megabytes(rawRun.bytes)})`,
        );
      };
      for (const scale of scales) {
        console.log(
          `\n== offsite copy: lifeboat backup --no-verify vs pg_dump + S3 upload (pgbench scale ${scale}) ==`,
        );
        const db = await benchDatabase(scale);
        benchName = db.name;
        pgDump = db.pgDump;
        console.log(`database: ${db.described}`);
        console.log(
          'lifeboat: dump + fingerprints + checksums + local copy + S3 copy (--no-verify: no restore proof); raw: the dump and the uploads only',
        );
        console.log(`before: ${loadNote()}`);
        const rawPlain = await raw('raw', false);
        const lbPlain = await lifeboat('lifeboat', false);
        report('plain copy', rawPlain, lbPlain, 'pg_dump -Fd -j2 + S3 Upload per file');
        const rawAge = await raw('raw-age', true);
        const lbAge = await lifeboat('lifeboat-age', true);
        report(
          'copy encrypted to one age recipient',
          rawAge,
          lbAge,
          'pg_dump -Fd -j2 + age -r | S3 Upload per file',
        );
        console.log(`after: ${loadNote()}`);
      }
    } finally {
      client.destroy();
      await s3.stop();
    }
  });

  await section('move', async () => {
    // The suite's server (the machine's PostgreSQL) to a PostgreSQL 17 from the npm build.
    const scale = scales[0];
    console.log(
      `\n== lifeboat move vs pg_dump -Fd -j2 + pg_restore -j2 onto PostgreSQL 17 (pgbench scale ${scale}) ==`,
    );
    const { name, described, pgDump, pgRestore } = await benchDatabase(scale);
    const newer = await startNpmServerBuild('pg17');
    try {
      const destUrl = (db) => {
        const u = new URL(newer.url);
        u.pathname = `/${db}`;
        return u.toString();
      };
      const destPsql = (sql) => $`psql -X -v ON_ERROR_STOP=1 -qAt ${destUrl('postgres')} -c ${sql}`;
      console.log(`database: ${described}; ${rounds} rounds, alternating which goes first`);
      console.log(`before: ${loadNote()}`);
      const ws = path.join(work, 'move');
      await mkdir(ws);
      // The guard's verified backup exists before a move, as before a run: taken outside the timing.
      await runCli(['backup', '--database-url', dbUrl(name), '--jobs', '2'], ws);
      const plainRun = async (round) => {
        const dir = path.join(work, `move-plain-${round}`);
        const db = `plain_${round}`;
        const dumpMs = await timed(
          () =>
            $({ env: pgEnv(name) })`${pgDump} --format=directory --jobs=2 --file=${dir} ${name}`,
        );
        await destPsql(`create database ${db} template template0`);
        const restoreMs = await timed(
          () => $`${pgRestore} --jobs=2 --exit-on-error --dbname=${destUrl(db)} ${dir}`,
        );
        await rm(dir, { recursive: true, force: true });
        await destPsql(`drop database ${db}`);
        return { ms: dumpMs + restoreMs, dumpMs, restoreMs };
      };
      const moveRun = async (round) => {
        const as = `moved_${round}`;
        const lb = await runCli(
          [
            'move',
            '--to',
            newer.url,
            '--as',
            as,
            '--jobs',
            '2',
            '--yes',
            '--json',
            '--database-url',
            dbUrl(name),
          ],
          ws,
        );
        const move = JSON.parse(lb.out).move;
        // Back to the source, outside the timing: the next round moves it again.
        await runCli(['rollback', '--yes', '--force', '--database-url', dbUrl(name)], ws);
        await destPsql(`drop database ${as}`);
        return {
          ms: lb.ms,
          peakMb: lb.peakMb,
          phases: {
            ...Object.fromEntries(move.phases.map((p) => [p.phase, p.ms])),
            ...Object.fromEntries(
              Object.entries(move.copyTimes ?? {}).map(([k, v]) => [
                `copy.${k.replace(/Ms$/, '')}`,
                v,
              ]),
            ),
          },
          checks: move.checks,
        };
      };
      const results = [];
      for (let round = 1; round <= rounds; round++) {
        const first = round % 2 === 1;
        const plain = first ? await plainRun(round) : undefined;
        const lb = await moveRun(round);
        const tools = plain ?? (await plainRun(round));
        results.push({ plain: tools, lb, ratio: lb.ms / tools.ms });
        console.log(
          `round ${round} (${first ? 'tools first' : 'lifeboat first'}): pg_dump ${seconds(tools.dumpMs)} + pg_restore ${seconds(tools.restoreMs)} = ${seconds(tools.ms)}; lifeboat move ${seconds(lb.ms)} (${Object.entries(
            lb.phases,
          )
            .map(([k, v]) => `${k} ${seconds(v)}`)
            .join(
              ', ',
            )}; ${lb.checks.indexesChecked} indexes checked); ratio ${(lb.ms / tools.ms).toFixed(2)}x`,
        );
      }
      const phases = Object.keys(results[0].lb.phases);
      console.log(
        `median lifeboat move phases: ${phases.map((k) => `${k} ${seconds(median(results.map((r) => r.lb.phases[k])))}`).join(', ')}`,
      );
      console.log(
        `ratio lifeboat move / (pg_dump + pg_restore): median ${median(results.map((r) => r.ratio)).toFixed(2)}x of ${results.map((r) => r.ratio.toFixed(2)).join(', ')}   (target ≤ 1.3x, proof and checks included); peak RSS ${Math.max(...results.map((r) => r.lb.peakMb)).toFixed(0)} MB`,
      );

      // Recovery time objective: the drill restores the newest verified backup onto the 17 server.
      const drill = JSON.parse(
        (
          await runCli(
            [
              'drill',
              '--from',
              'local',
              '--to',
              newer.url,
              '--json',
              '--database-url',
              dbUrl(name),
            ],
            ws,
          )
        ).out,
      ).drill;
      console.log(
        `drill onto PostgreSQL 17 (RTO): ${seconds(drill.durationMs)}; ${drill.phases
          .map((p) => `${p.name.split(' ').slice(0, 2).join(' ')} ${seconds(p.ms)}`)
          .join(', ')}`,
      );
      console.log(`after: ${loadNote()}`);
    } finally {
      await newer.stop();
    }
  });

  await section('steps', async () => {
    // The whole command at two sizes, so that what each tool pays per step and once per
    // command (start, lock, guard, fingerprint) can be told apart.
    const small = Math.max(1, Math.round(stepCount / 10));
    console.log(
      `\n== ${stepCount} (and ${small}) trivial steps: lifeboat run vs knex migrate:latest ==`,
    );
    const workspaces = new Map();
    for (const count of [stepCount, small]) {
      const ws = path.join(work, `steps-${count}`);
      await mkdir(path.join(ws, 'migrations'), { recursive: true });
      const steps = [];
      for (let i = 1; i <= count; i++) {
        const n = String(i).padStart(4, '0');
        steps.push(
          `  - id: step-${n}\n    sql:\n      up: CREATE TABLE t_${n} (id int)\n      down: DROP TABLE t_${n}`,
        );
        await writeFile(
          path.join(ws, 'migrations', `${n}_t.cjs`),
          `exports.up = (knex) => knex.raw('CREATE TABLE t_${n} (id int)');\nexports.down = (knex) => knex.raw('DROP TABLE t_${n}');\n`,
        );
      }
      await writeFile(
        path.join(ws, 'steps.yaml'),
        `name: bench-steps\nsteps:\n${steps.join('\n')}\n`,
      );
      workspaces.set(count, ws);
    }
    /** One size, one round: each tool on a fresh database of its own, alternating which goes first. */
    const measure = async (count, round) => {
      const ws = workspaces.get(count);
      const [lbDb, knexDb] = [`steps_lb_${count}_${round}`, `steps_knex_${count}_${round}`];
      for (const db of [lbDb, knexDb]) {
        await psql('postgres', `create database ${db}`);
        await psql(db, 'create table seed (id int)');
      }
      await writeFile(
        path.join(ws, 'knexfile.cjs'),
        `module.exports = { client: 'pg', connection: ${JSON.stringify(dbUrl(knexDb))}, migrations: { directory: './migrations', loadExtensions: ['.cjs'] } };\n`,
      );
      // The guard is satisfied by an existing verified backup, taken outside the timing.
      await runCli(['backup', '--database-url', dbUrl(lbDb)], ws);
      const lbRun = () =>
        runCli(['run', 'steps.yaml', '--backup', 'existing', '--database-url', dbUrl(lbDb)], ws);
      const [knexMs, lb] = await alternately(round, () => knexMigrateLatest(ws), lbRun);
      const commitsDb = `steps_commits_${count}_${round}`;
      await psql('postgres', `create database ${commitsDb}`);
      return { lb, knexMs, ratio: lb.ms / knexMs, commitsMs: await commitsAlone(commitsDb, count) };
    };
    const rounds = Number(process.env.BENCH_STEPS_ROUNDS ?? 5);
    const full = [];
    const few = [];
    for (let round = 1; round <= rounds; round++) {
      const r = await measure(stepCount, round);
      full.push(r);
      few.push(await measure(small, round));
      console.log(
        `round ${round}: lifeboat run ${seconds(r.lb.ms)} (${(r.lb.ms / stepCount).toFixed(2)} ms/step), knex migrate:latest ${seconds(r.knexMs)} (${(r.knexMs / stepCount).toFixed(2)} ms/step); ratio ${r.ratio.toFixed(2)}x; the ${stepCount} commits alone ${seconds(r.commitsMs)}`,
      );
    }
    const split = (many, one) => {
      const perStep = (median(many) - median(one)) / (stepCount - small);
      return { perStep, once: median(many) - stepCount * perStep };
    };
    const lb = split(
      full.map((r) => r.lb.ms),
      few.map((r) => r.lb.ms),
    );
    const kx = split(
      full.map((r) => r.knexMs),
      few.map((r) => r.knexMs),
    );
    const commit = median(full.map((r) => r.commitsMs)) / stepCount;
    console.log(
      `from ${stepCount} and ${small} steps (medians): lifeboat ${lb.perStep.toFixed(2)} ms a step + ${(lb.once / 1000).toFixed(2)} s once; knex ${kx.perStep.toFixed(2)} ms a migration + ${(kx.once / 1000).toFixed(2)} s once`,
    );
    // knex runs a batch of transactional migrations in one transaction; each lifeboat step commits
    // with its checkpoint. What that costs here, measured alone: a round trip and a commit a step.
    console.log(
      `a step's durable commit alone (one round trip: the step, its checkpoint row, commit): ${commit.toFixed(2)} ms; lifeboat above it ${(lb.perStep - commit).toFixed(2)} ms a step; knex commits its batch once`,
    );
    console.log(
      `ratio lifeboat run / knex migrate:latest, ${stepCount} steps (guard, fingerprint and process start included): median ${median(full.map((r) => r.ratio)).toFixed(2)}x of ${full.map((r) => r.ratio.toFixed(2)).join(', ')}   (target ≤ 1.5x); lifeboat peak RSS ${Math.max(...full.map((r) => r.lb.peakMb)).toFixed(0)} MB; ${loadNote()}`,
    );
  });
  await section('knex', async () => {
    // A real suite: Backstage's catalog migrations (npm, pinned, integrity-checked by the test harness).
    const { tsImport } = await import('tsx/esm/api');
    const suites = await tsImport('../test/support/npm-suites.ts', import.meta.url);
    const source = await suites.suiteMigrations(suites.CATALOG_NEW);
    const ws = path.join(work, 'knex');
    await mkdir(ws, { recursive: true });
    await $`cp -r ${source} ${path.join(ws, 'migrations')}`;
    const count = (await readdir(path.join(ws, 'migrations'))).filter((n) =>
      n.endsWith('.js'),
    ).length;
    await writeFile(
      path.join(ws, 'knex.yaml'),
      'name: bench-knex\nsteps:\n  - id: catalog\n    knex: { directory: migrations, loadExtensions: [.js] }\n',
    );
    console.log(
      `\n== ${count} real knex migrations (${suites.CATALOG_NEW.name}@${suites.CATALOG_NEW.version}): lifeboat run vs knex migrate:latest ==`,
    );
    const rounds = Number(process.env.BENCH_KNEX_ROUNDS ?? 3);
    const ratios = [];
    for (let round = 1; round <= rounds; round++) {
      const [lbDb, knexDb] = [`knex_lb_${round}`, `knex_kx_${round}`];
      for (const db of [lbDb, knexDb]) await psql('postgres', `create database ${db}`);
      await writeFile(
        path.join(ws, 'knexfile.cjs'),
        `module.exports = { client: 'pg', connection: ${JSON.stringify(dbUrl(knexDb))}, migrations: { directory: './migrations', loadExtensions: ['.js'] } };\n`,
      );
      // The guard is satisfied by an existing verified backup, taken outside the timing.
      await runCli(['backup', '--database-url', dbUrl(lbDb)], ws);
      const knexRun = () => knexMigrateLatest(ws);
      const lbRun = () =>
        runCli(
          ['run', 'knex.yaml', '--backup', 'existing', '--json', '--database-url', dbUrl(lbDb)],
          ws,
        );
      const [knexMs, lb] = await alternately(round, knexRun, lbRun);
      const steps = JSON.parse(lb.out).run.steps;
      const stepsMs = steps.reduce((sum, s) => sum + (s.durationMs ?? 0), 0);
      ratios.push({ whole: lb.ms / knexMs, lb: lb.ms, knex: knexMs, steps: stepsMs });
      console.log(
        `round ${round}: lifeboat run ${seconds(lb.ms)} (its ${steps.length} steps ${seconds(stepsMs)}, ${(stepsMs / count).toFixed(1)} ms/migration); knex migrate:latest ${seconds(knexMs)} (${(knexMs / count).toFixed(1)} ms/migration); ratio ${(lb.ms / knexMs).toFixed(2)}x`,
      );
    }
    const lbMs = median(ratios.map((r) => r.lb));
    const knexMs = median(ratios.map((r) => r.knex));
    const stepsMs = median(ratios.map((r) => r.steps));
    console.log(
      `median of ${rounds}: lifeboat ${(lbMs / count).toFixed(1)} ms/migration (whole command: guard, fingerprint, steps; steps alone ${(stepsMs / count).toFixed(1)}), knex ${(knexMs / count).toFixed(1)} ms/migration`,
    );
    console.log(
      `ratio lifeboat / knex per migration: ${median(ratios.map((r) => r.whole)).toFixed(2)}x whole command, ${(stepsMs / knexMs).toFixed(2)}x steps alone   (target ≤ 1.5x); ${loadNote()}`,
    );
  });
} catch (err) {
  failed = true;
  console.error(`\nbench FAILED: ${err?.stack ?? err}`);
} finally {
  await rm(work, { recursive: true, force: true });
  await cluster.stop();
}
if (failed) process.exitCode = 1;
