import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import {
  access,
  appendFile,
  chown,
  mkdtemp,
  readFile,
  realpath,
  rm,
  writeFile,
} from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { ToolError, errorMessage } from './errors.js';
import { findTools } from './pg-programs/find.js';
import { registerSecret } from './secrets.js';

/**
 * A private PostgreSQL server in a temporary directory, for the test suite and
 * `lifeboat demo`. It listens on 127.0.0.1 only, and `stop()` removes every
 * trace of it.
 */
export interface Cluster {
  url: string;
  host: string;
  port: number;
  user: string;
  password: string;
  dataDir: string;
  stop(): Promise<void>;
}

const execFileAsync = promisify(execFile);
const USER = 'lifeboat';
const PORT_ATTEMPTS = 3;

/** The OS account the server runs as, when it cannot be the current one. */
interface RunAs {
  uid: number;
  gid: number;
}

interface Tools {
  initdb: string;
  pgCtl: string;
}

/**
 * Starts a new cluster with the newest installed initdb/pg_ctl, or those in
 * `binDir` when given (another major's server). `baseDir` is where the
 * temporary directory is created (default: the OS temp dir).
 */
export async function startThrowawayCluster(
  opts: { baseDir?: string; binDir?: string; log?: (line: string) => void } = {},
): Promise<Cluster> {
  const log = opts.log ?? (() => {});
  const tools = await findServerTools(opts.binDir);
  const runAs = await serverAccount();
  const password = randomBytes(18).toString('hex');
  registerSecret(password);

  const dir = await mkdtemp(path.join(opts.baseDir ?? os.tmpdir(), 'lifeboat-pg-'));
  const dataDir = path.join(dir, 'data');
  const logFile = path.join(dir, 'server.log');
  const pwFile = path.join(dir, 'pwfile');
  const cleanUp = async (): Promise<void> => {
    // A server that came up despite an error must not outlive its directory.
    await pgCtl(tools, runAs, dir, ['stop', '-D', dataDir, '-m', 'immediate', '-w']).catch(
      () => {},
    );
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await writeFile(pwFile, `${password}\n`, { mode: 0o600 });
    if (runAs) {
      await chown(dir, runAs.uid, runAs.gid);
      await chown(pwFile, runAs.uid, runAs.gid);
    }
    log(`initdb (${tools.initdb}) in ${dataDir}`);
    await initCluster(tools, runAs, dir, dataDir, pwFile);
    await rm(pwFile);
    await appendFile(
      path.join(dataDir, 'postgresql.conf'),
      [
        '',
        '# lifeboat throwaway cluster',
        "listen_addresses = '127.0.0.1'",
        `unix_socket_directories = ${confString(dir)}`,
        'max_connections = 100',
        // fsync and synchronous_commit stay on: with either off, a SIGKILLed backend or server can
        // lose commits already acknowledged, and crash tests (and the demo) must see real durability.
        '',
      ].join('\n'),
    );
    const port = await startServer(tools, runAs, dir, dataDir, logFile, log);
    const url = `postgres://${USER}:${password}@127.0.0.1:${port}/postgres`;
    let stopping: Promise<void> | undefined;
    const stop = async (): Promise<void> => {
      await pgCtl(tools, runAs, dir, ['stop', '-D', dataDir, '-m', 'fast', '-w']).catch(
        async (err: unknown) => {
          // "Not running" is fine; a server still holding its pid file is not: keep its directory.
          if (await exists(path.join(dataDir, 'postmaster.pid'))) {
            stopping = undefined; // let the caller try again
            throw new Error(`pg_ctl stop failed: ${errorMessage(err)}`, { cause: err });
          }
        },
      );
      await rm(dir, { recursive: true, force: true });
    };
    return {
      url,
      host: '127.0.0.1',
      port,
      user: USER,
      password,
      dataDir,
      stop: () => (stopping ??= stop()),
    };
  } catch (err) {
    const tail = await logTail(logFile);
    await cleanUp();
    throw new Error(
      `Could not start a throwaway PostgreSQL cluster: ${errorMessage(err)}${tail ? `\nserver log:\n${tail}` : ''}`,
      { cause: err },
    );
  }
}

/** True when `url` accepts a connection and a query within a few seconds. */
export async function isReachable(url: string, timeoutMs = 3000): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  client.on('error', () => {}); // a dropped connection must not crash the caller
  try {
    await client.connect();
  } catch {
    return false;
  }
  try {
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/** initdb and pg_ctl of the newest major (or `binDir`'s), from one bin dir so they match each other and postgres. */
async function findServerTools(pinnedDir?: string): Promise<Tools> {
  const [newest] = await findTools('initdb', pinnedDir);
  if (!newest) {
    throw new ToolError(
      pinnedDir
        ? `initdb was not found in ${pinnedDir}.`
        : 'initdb was not found on PATH, through pg_config, or in /usr/lib/postgresql/*/bin; install the PostgreSQL server (Debian: apt-get install postgresql).',
    );
  }
  // Resolve symlinks (e.g. /usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb) to find its siblings.
  const binDir = path.dirname(await realpath(newest.path));
  const pgCtlPath = path.join(binDir, 'pg_ctl');
  for (const file of [pgCtlPath, path.join(binDir, 'postgres')]) {
    if (!(await exists(file, constants.X_OK))) {
      throw new ToolError(`${file} is missing; initdb was found in ${binDir} but not its server.`);
    }
  }
  return { initdb: path.join(binDir, 'initdb'), pgCtl: pgCtlPath };
}

/** PostgreSQL refuses to run as root, so as root the server runs as `postgres`, else `nobody`. */
async function serverAccount(): Promise<RunAs | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  for (const name of ['postgres', 'nobody']) {
    try {
      const uid = Number((await execFileAsync('id', ['-u', name])).stdout.trim());
      const gid = Number((await execFileAsync('id', ['-g', name])).stdout.trim());
      return { uid, gid };
    } catch {
      // No such user; try the next.
    }
  }
  throw new ToolError(
    'Running as root, and neither a postgres nor a nobody user exists to run PostgreSQL as.',
  );
}

async function initCluster(
  tools: Tools,
  runAs: RunAs | undefined,
  cwd: string,
  dataDir: string,
  pwFile: string,
): Promise<void> {
  const args = [
    '-D',
    dataDir,
    '--auth-local=trust',
    '--auth-host=scram-sha-256',
    '-U',
    USER,
    `--pwfile=${pwFile}`,
    '-E',
    'UTF8',
  ];
  try {
    await runTool(tools.initdb, [...args, '--locale=C.UTF-8'], runAs, cwd);
  } catch (err) {
    // Older or minimal systems have no C.UTF-8 locale; initdb removed what it created.
    if (!/locale/i.test(errorMessage(err))) throw err;
    await rm(dataDir, { recursive: true, force: true });
    await runTool(tools.initdb, [...args, '--locale=C'], runAs, cwd);
  }
}

/** Starts the server on a free port; retries when another process took the port first. */
async function startServer(
  tools: Tools,
  runAs: RunAs | undefined,
  dir: string,
  dataDir: string,
  logFile: string,
  log: (line: string) => void,
): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    log(`starting PostgreSQL on 127.0.0.1:${port}`);
    const args = ['start', '-D', dataDir, '-l', logFile, '-w', '-t', '60', '-o', `-p ${port}`];
    try {
      await pgCtl(tools, runAs, dir, args);
      return port;
    } catch (err) {
      const portTaken = /could not bind|address already in use/i.test(await logTail(logFile));
      if (!portTaken || attempt >= PORT_ATTEMPTS) throw err;
    }
  }
}

function pgCtl(tools: Tools, runAs: RunAs | undefined, cwd: string, args: string[]) {
  return runTool(tools.pgCtl, args, runAs, cwd);
}

async function runTool(
  file: string,
  args: string[],
  runAs: RunAs | undefined,
  cwd: string,
): Promise<void> {
  // PG* variables from the caller's environment must not steer the private server.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PG')));
  try {
    await execFileAsync(file, args, { cwd, env, timeout: 120_000, ...runAs });
  } catch (err) {
    const stderr = (err as { stderr?: unknown }).stderr;
    const detail = typeof stderr === 'string' && stderr.trim() ? stderr.trim() : errorMessage(err);
    const what = [path.basename(file), ...args.slice(0, 1).filter((a) => !a.startsWith('-'))];
    throw new Error(`${what.join(' ')} failed: ${detail}`, { cause: err });
  }
}

/** A port the OS just handed out; it may be taken again before the server binds it (hence the retry). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address
          ? resolve(address.port)
          : reject(new Error('no port')),
      );
    });
  });
}

/** A postgresql.conf string literal. */
function confString(value: string): string {
  return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
}

async function logTail(file: string, lines = 20): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

async function exists(file: string, mode = constants.F_OK): Promise<boolean> {
  try {
    await access(file, mode);
    return true;
  } catch {
    return false;
  }
}
