import { ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:fs';
import { access, chown, mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

/**
 * A throwaway S3-compatible store on loopback, for the tests and the
 * benchmark (as src/cluster.ts is for PostgreSQL): a single-node
 * OpenStack Swift (Debian's swift packages) with the s3api and tempauth
 * middlewares, so SigV4 signatures are checked and multipart uploads produce
 * real `<md5>-<parts>` ETags. LIFEBOAT_TEST_S3_ENDPOINT (with
 * LIFEBOAT_TEST_S3_ACCESS_KEY_ID, LIFEBOAT_TEST_S3_SECRET_ACCESS_KEY and
 * LIFEBOAT_TEST_S3_REGION) names another server to use instead.
 */
export interface S3Server {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Kills everything and removes the temporary directory. */
  stop(): Promise<void>;
  /** Kills the proxy with SIGKILL, so the store goes away as in a crash (mid-upload, say). */
  stopProxy(): Promise<void>;
  /** Brings the proxy back on the same port and waits until it answers. */
  startProxy(): Promise<void>;
}

const execFileAsync = promisify(execFile);
const REGION = 'us-east-1'; // s3api's default `location`; SigV4 scopes must name it
const ACCESS_KEY_ID = 'test:tester'; // tempauth's account:user
const SECRET_ACCESS_KEY = 'testing';
const BACKENDS = ['account', 'container', 'object'] as const;
type Backend = (typeof BACKENDS)[number];
const DAEMON_USER = 'nobody'; // as root; otherwise the daemons run as we do
const START_ATTEMPTS = 3;
const READY_TIMEOUT_MS = 30_000;
const APT_HINT =
  'install them with apt-get install swift swift-proxy swift-account swift-container swift-object python3-swift';

/**
 * Runs a swift server script with the swift.conf in the directory given first
 * instead of /etc/swift/swift.conf, which Swift reads from a fixed path: the
 * store must not depend on the host's hash prefix or storage policies.
 * set_swift_dir re-reads the hash settings that importing utils read from
 * /etc; storage policies are read when first imported, which comes later.
 */
const LAUNCHER = `
import runpy, sys
from swift.common import utils
utils.set_swift_dir(sys.argv[1])
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name='__main__')
`;

interface Swift {
  python: string;
  bin: (name: string) => string;
}

/** The OS account the daemons run as; undefined when not root (they run as we do). */
interface RunAs {
  uid: number;
  gid: number;
}

interface Layout {
  dir: string;
  user: string;
  runAs: RunAs | undefined;
  ports: Record<Backend | 'proxy' | 'memcache', number>;
}

export async function startS3Server(): Promise<S3Server> {
  const external = externalServer();
  if (external) return external;
  const swift = await findSwift();
  for (let attempt = 1; ; attempt++) {
    try {
      return await startSwift(swift);
    } catch (err) {
      // Free ports are picked before the daemons bind them; another process may win the race.
      if (!/could not bind|address already in use/i.test(String(err)) || attempt >= START_ATTEMPTS)
        throw err;
    }
  }
}

function externalServer(): S3Server | undefined {
  const env = process.env;
  const endpoint = env.LIFEBOAT_TEST_S3_ENDPOINT;
  if (!endpoint) return undefined;
  const accessKeyId = env.LIFEBOAT_TEST_S3_ACCESS_KEY_ID;
  const secretAccessKey = env.LIFEBOAT_TEST_S3_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) {
    throw new Error(
      'LIFEBOAT_TEST_S3_ENDPOINT is set, so LIFEBOAT_TEST_S3_ACCESS_KEY_ID and LIFEBOAT_TEST_S3_SECRET_ACCESS_KEY must be too.',
    );
  }
  const notOurs = () =>
    Promise.reject(
      new Error(
        'stopProxy/startProxy need the harness-started Swift; unset LIFEBOAT_TEST_S3_ENDPOINT.',
      ),
    );
  return {
    endpoint,
    region: env.LIFEBOAT_TEST_S3_REGION || REGION,
    accessKeyId,
    secretAccessKey,
    stop: () => Promise.resolve(),
    stopProxy: notOurs,
    startProxy: notOurs,
  };
}

/** The swift server scripts and the Python they were packaged for (not whatever python3 is first on PATH). */
async function findSwift(): Promise<Swift> {
  const names = [...BACKENDS, 'proxy'].map((s) => `swift-${s}-server`);
  const found = await Promise.all(names.map(onPath));
  const missing = names.filter((_, i) => !found[i]);
  if (missing.length > 0) {
    throw new Error(
      `The S3 test store needs OpenStack Swift: ${missing.join(', ')} not found; ${APT_HINT}.`,
    );
  }
  const bins = Object.fromEntries(names.map((n, i) => [n, found[i] as string]));
  const shebang = /^#!\s*(\S+)(?:\s+(\S+))?/.exec(
    await readFile(bins['swift-proxy-server']!, 'utf8'),
  );
  const python = shebang?.[1]?.endsWith('/env') ? shebang[2] : shebang?.[1];
  return { python: python ?? 'python3', bin: (name) => bins[name]! };
}

async function onPath(name: string): Promise<string | undefined> {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/bin']) {
    const file = path.join(dir || '.', name);
    try {
      await access(file, constants.X_OK);
      return file;
    } catch {
      // Not here; try the next directory.
    }
  }
  return undefined;
}

async function startSwift(swift: Swift): Promise<S3Server> {
  const runAs = await daemonAccount();
  const dir = await makeStoreDir(swift, runAs);
  const daemons = new Set<Daemon>();
  const killAll = async () => {
    await Promise.all([...daemons].map((d) => d.kill()));
    daemons.clear();
  };
  // A test worker that dies without stop() must not leave daemons behind.
  const onExit = () => daemons.forEach((d) => d.child.kill('SIGKILL'));
  process.on('exit', onExit);
  const cleanUp = async () => {
    process.off('exit', onExit);
    await killAll();
    await rm(dir, { recursive: true, force: true });
  };

  try {
    const layout: Layout = {
      dir,
      user: runAs ? DAEMON_USER : os.userInfo().username,
      runAs,
      ports: await freePorts(['account', 'container', 'object', 'proxy', 'memcache']),
    };
    await writeConfigs(layout);
    await buildRings(swift, layout);
    // The backends and the proxy start side by side: each checks only its own /healthcheck here.
    const started = await Promise.all(
      (['proxy', ...BACKENDS] as const).map(async (s) => {
        const daemon = await startDaemon(swift, layout, s);
        daemons.add(daemon); // at once, so a failing sibling's clean-up kills it too
        return daemon;
      }),
    );
    await Promise.all(started.map((d) => d.ready()));
    let proxy = started[0]!;
    const endpoint = `http://127.0.0.1:${layout.ports.proxy}`;
    await waitForS3(endpoint, proxy);

    let stopping: Promise<void> | undefined;
    return {
      endpoint,
      region: REGION,
      accessKeyId: ACCESS_KEY_ID,
      secretAccessKey: SECRET_ACCESS_KEY,
      stop: () => (stopping ??= cleanUp()),
      stopProxy: async () => {
        await proxy.kill();
        daemons.delete(proxy);
      },
      startProxy: async () => {
        if (daemons.has(proxy)) throw new Error('The S3 test proxy is already running.');
        proxy = await startDaemon(swift, layout, 'proxy');
        daemons.add(proxy);
        await proxy.ready();
      },
    };
  } catch (err) {
    await cleanUp();
    throw err;
  }
}

/** A test store has no business running as root (cf. src/cluster.ts for PostgreSQL). */
async function daemonAccount(): Promise<RunAs | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const id = async (flag: string) =>
    Number((await execFileAsync('id', [flag, DAEMON_USER])).stdout);
  return { uid: await id('-u'), gid: await id('-g') };
}

/**
 * A temporary directory whose filesystem takes user xattrs, where the object
 * server keeps object metadata. ext4 /tmp does; a tmpfs before Linux 6.6 does
 * not, so look further if needed.
 */
async function makeStoreDir(swift: Swift, runAs: RunAs | undefined): Promise<string> {
  const failures: string[] = [];
  for (const base of new Set([os.tmpdir(), '/var/tmp', '/dev/shm'])) {
    let dir: string | undefined;
    try {
      dir = await mkdtemp(path.join(base, 'lifeboat-s3-'));
      await mkdir(path.join(dir, 'devices', 'd1'), { recursive: true });
      await mkdir(path.join(dir, 'log'));
      if (runAs) await chownTree(dir, runAs);
      await run(swift.python, ['-c', XATTR_CHECK, path.join(dir, 'devices', 'd1')], runAs, dir);
      return dir;
    } catch (err) {
      failures.push(`${base}: ${String(err)}`);
      if (dir) await rm(dir, { recursive: true, force: true });
    }
  }
  throw new Error(
    `No temporary directory supports user xattrs, which Swift needs:\n${failures.join('\n')}`,
  );
}

const XATTR_CHECK = `
import os, sys
os.setxattr(sys.argv[1], 'user.lifeboat.check', b'1')
`;

async function chownTree(dir: string, runAs: RunAs): Promise<void> {
  for (const p of [
    dir,
    path.join(dir, 'devices'),
    path.join(dir, 'devices', 'd1'),
    path.join(dir, 'log'),
  ]) {
    await chown(p, runAs.uid, runAs.gid);
  }
}

/** Distinct ports the OS just handed out (held open together so none repeats). */
async function freePorts<K extends string>(keys: K[]): Promise<Record<K, number>> {
  const servers = await Promise.all(
    keys.map(
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const server = net.createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return Object.fromEntries(keys.map((k, i) => [k, ports[i]])) as Record<K, number>;
}

async function writeConfigs(layout: Layout): Promise<void> {
  const files: [string, string][] = [
    ['swift.conf', SWIFT_CONF],
    ...BACKENDS.map((s): [string, string] => [`${s}-server.conf`, backendConf(layout, s)]),
    ['proxy-server.conf', proxyConf(layout)],
  ];
  for (const [name, text] of files) {
    const file = path.join(layout.dir, name);
    await writeFile(file, text);
    if (layout.runAs) await chown(file, layout.runAs.uid, layout.runAs.gid);
  }
}

const SWIFT_CONF = `[swift-hash]
swift_hash_path_prefix = lifeboat
swift_hash_path_suffix = test

[storage-policy:0]
name = Policy-0
default = yes
`;

/** Settings every daemon shares: loopback, one process (so SIGKILL kills the whole server), logs on stderr. */
function commonConf(layout: Layout, port: number): string {
  return `[DEFAULT]
bind_ip = 127.0.0.1
bind_port = ${port}
workers = 0
user = ${layout.user}
swift_dir = ${layout.dir}
devices = ${path.join(layout.dir, 'devices')}
mount_check = false
# A socket that does not exist: the host's syslog stays clean (logs go to stderr, see --verbose).
log_address = ${path.join(layout.dir, 'no-syslog')}
# Fail fast on a port someone else took (Swift's default is to keep trying for 30 s).
bind_timeout = 5
`;
}

function backendConf(layout: Layout, server: Backend): string {
  return `${commonConf(layout, layout.ports[server])}
[pipeline:main]
pipeline = healthcheck ${server}-server

[app:${server}-server]
use = egg:swift#${server}

[filter:healthcheck]
use = egg:swift#healthcheck
`;
}

function proxyConf(layout: Layout): string {
  return `${commonConf(layout, layout.ports.proxy)}
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo versioned_writes proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:s3api]
use = egg:swift#s3api
location = ${REGION}
# No storage_domain: buckets are addressed path-style only.
allow_multipart_uploads = true

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = ${SECRET_ACCESS_KEY} .admin

# tempauth insists on a memcache client, not on a memcached: a port nobody listens on costs one
# refused connect before the client error-limits it, and keeps us off a shared 11211.
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:${layout.ports.memcache}

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:copy]
use = egg:swift#copy

[filter:slo]
use = egg:swift#slo

[filter:dlo]
use = egg:swift#dlo

# The proxy would insert it anyway (and say so in the log).
[filter:versioned_writes]
use = egg:swift#versioned_writes
`;
}

/**
 * One device and one replica per ring, built with swift-ring-builder's own
 * RingBuilder in one Python process: nine swift-ring-builder runs (create,
 * add, rebalance for each ring) would cost about two seconds of start-up.
 */
async function buildRings(swift: Swift, layout: Layout): Promise<void> {
  const rings = BACKENDS.map((s) => `${s}:${layout.ports[s]}`);
  await run(swift.python, ['-c', RING_BUILDER, layout.dir, ...rings], layout.runAs, layout.dir);
}

const RING_BUILDER = `
import sys
from swift.common.ring import RingBuilder
swift_dir = sys.argv[1]
for ring in sys.argv[2:]:
    name, port = ring.split(':')
    builder = RingBuilder(4, 1, 0)  # 2**4 partitions, 1 replica, rebalance any time
    builder.add_dev({'region': 1, 'zone': 1, 'ip': '127.0.0.1', 'port': int(port),
                     'device': 'd1', 'weight': 1})
    builder.rebalance()
    builder.save(f'{swift_dir}/{name}.builder')
    builder.get_ring().save(f'{swift_dir}/{name}.ring.gz')
`;

async function run(file: string, args: string[], runAs: RunAs | undefined, cwd: string) {
  try {
    await execFileAsync(file, args, { cwd, timeout: 60_000, ...runAs });
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string; stderr?: string };
    const detail = `${stdout ?? ''}${stderr ?? ''}`.trim() || String(err);
    throw new Error(`${path.basename(file)} ${args.slice(0, 2).join(' ')} failed: ${detail}`, {
      cause: err,
    });
  }
}

interface Daemon {
  child: ChildProcess;
  logFile: string;
  exited: Promise<void>;
  /** Resolves once /healthcheck answers; rejects with the log's tail if the daemon dies or hangs. */
  ready(): Promise<void>;
  kill(): Promise<void>;
}

async function startDaemon(
  swift: Swift,
  layout: Layout,
  server: Backend | 'proxy',
): Promise<Daemon> {
  const name = `${server}-server`;
  const logFile = path.join(layout.dir, 'log', `${name}.log`);
  const log = await open(logFile, 'a');
  const child = spawn(
    swift.python,
    [
      '-c',
      LAUNCHER,
      layout.dir,
      swift.bin(`swift-${name}`),
      path.join(layout.dir, `${name}.conf`),
      '--verbose', // log to stderr, i.e. our log file
    ],
    { cwd: layout.dir, stdio: ['ignore', log.fd, log.fd], ...layout.runAs },
  );
  await log.close(); // the child has its own copy
  // 'error' (e.g. no such interpreter) may come instead of 'exit'; unhandled, it would crash the worker.
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  const url = `http://127.0.0.1:${layout.ports[server]}/healthcheck`;
  return {
    child,
    logFile,
    exited,
    ready: async () => {
      try {
        await waitUntil(() => healthy(url), exited, READY_TIMEOUT_MS);
      } catch (err) {
        const log = await tail(logFile);
        throw new Error(`Swift ${name} did not start: ${String(err)}\n${logFile}:\n${log}`, {
          cause: err,
        });
      }
    },
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

async function healthy(url: string): Promise<boolean> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(2000) })).ok;
  } catch {
    return false;
  }
}

/** The proxy answering is not enough: the S3 credentials must work through to the account server. */
async function waitForS3(endpoint: string, proxy: Daemon): Promise<void> {
  const client = new S3Client({
    endpoint,
    region: REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY },
    maxAttempts: 1,
  });
  let lastError: unknown;
  const listBuckets = async () => {
    try {
      await client.send(new ListBucketsCommand({}));
      return true;
    } catch (err) {
      lastError = err;
      return false;
    }
  };
  try {
    await waitUntil(listBuckets, proxy.exited, READY_TIMEOUT_MS);
  } catch (err) {
    const log = await tail(proxy.logFile);
    throw new Error(
      `S3 ListBuckets through the Swift proxy failed (${String(err)}): ${String(lastError)}\n${proxy.logFile}:\n${log}`,
      { cause: err },
    );
  } finally {
    client.destroy();
  }
}

/** Polls `check` until it is true; fails early when `gone` resolves (the daemon exited). */
async function waitUntil(check: () => Promise<boolean>, gone: Promise<void>, timeoutMs: number) {
  let exited = false;
  void gone.then(() => (exited = true));
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (exited) throw new Error('the process exited');
    if (Date.now() > deadline) throw new Error(`no answer within ${timeoutMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function tail(file: string, lines = 30): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
