import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, stat, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

/** The built CLI, run as a user runs it. */
export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd: string;
  env?: Record<string, string | undefined>;
}

/** A working directory of its own, with a config naming its destinations. */
export async function workspace(
  config?: Record<string, unknown>,
): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lifeboat-test-'));
  if (config)
    await writeFile(path.join(dir, 'lifeboat.config.json'), JSON.stringify(config, null, 2));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, CI: 'true', NO_COLOR: '1' };
  // The target comes from each test, never from the developer's shell.
  for (const k of ['DATABASE_URL', 'PGHOST', 'PGPORT', 'PGUSER', 'PGPASSWORD', 'PGDATABASE'])
    delete env[k];
  // Nor GitHub Actions' workflow commands and outputs, when the suite itself runs there.
  for (const k of ['GITHUB_ACTIONS', 'GITHUB_OUTPUT', 'GITHUB_STEP_SUMMARY']) delete env[k];
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

export function startCli(
  args: string[],
  opts: CliOptions,
): { child: ChildProcess; done: Promise<CliResult> } {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: opts.cwd,
    env: childEnv(opts.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<CliResult>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

export function runCli(args: string[], opts: CliOptions): Promise<CliResult> {
  return startCli(args, opts).done;
}

/** Run with --json and parse the one document on stdout. */
export async function runJson(
  args: string[],
  opts: CliOptions,
): Promise<CliResult & { doc: Record<string, unknown> }> {
  const result = await runCli([...args, '--json'], opts);
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(result.stdout) as Record<string, unknown>;
  } catch {
    throw new Error(
      `stdout is not one JSON document:\n${result.stdout}\nstderr:\n${result.stderr}`,
    );
  }
  return { ...result, doc };
}

/**
 * Start the CLI so that it stops at a named pause point (src/faults.ts); the
 * test then acts (kill -9, write rows) and may let it go on.
 */
export async function startPaused(
  args: string[],
  point: string,
  opts: CliOptions,
): Promise<{
  child: ChildProcess;
  done: Promise<CliResult>;
  reached(): Promise<void>;
  resume(): Promise<void>;
  kill9(): Promise<CliResult>;
}> {
  const pauseDir = await mkdtemp(path.join(os.tmpdir(), 'lifeboat-pause-'));
  const marker = path.join(pauseDir, `${encodeURIComponent(point)}.paused`);
  const run = startCli(args, {
    ...opts,
    env: { ...opts.env, LIFEBOAT_PAUSE_AT: point, LIFEBOAT_PAUSE_DIR: pauseDir },
  });
  let finished = false;
  void run.done.then(async () => {
    finished = true;
    await rm(pauseDir, { recursive: true, force: true });
  });
  return {
    ...run,
    async reached() {
      for (let i = 0; i < 2400; i++) {
        if (
          await stat(marker).then(
            () => true,
            () => false,
          )
        )
          return;
        if (finished) {
          const r = await run.done;
          throw new Error(`exited (${r.code}) before reaching ${point}:\n${r.stdout}\n${r.stderr}`);
        }
        await sleep(25);
      }
      throw new Error(`never reached pause point ${point}`);
    },
    async resume() {
      await unlink(marker);
    },
    async kill9() {
      run.child.kill('SIGKILL');
      const r = await run.done;
      await rm(pauseDir, { recursive: true, force: true });
      return r;
    },
  };
}
