import { spawn } from 'node:child_process';
import { redact } from '../secrets.js';
import { libpqEnv, type Target } from '../target.js';

export interface ToolResult {
  ok: boolean;
  exitCode: number | null;
  signal: string | null;
  /** The last lines the tool wrote to stderr, passwords removed. */
  errorLines: string[];
  durationMs: number;
}

/**
 * Run a PostgreSQL program against `target`. Connection details, the password
 * included, travel through the libpq environment, never through argv where
 * `ps` would show them.
 */
export async function runPgTool(
  file: string,
  args: string[],
  target: Target,
  onStderrLine?: (line: string) => void,
  signal?: AbortSignal,
): Promise<ToolResult> {
  // Interrupted before it started: it never starts.
  signal?.throwIfAborted();
  const started = Date.now();
  const env: NodeJS.ProcessEnv = { ...process.env, ...libpqEnv(target) };
  // With a password given, a ~/.pgpass entry must not silently win over it; without one, the
  // PGPASSWORD lifeboat was started with belongs to the target, not to whatever server this is.
  if (target.password !== undefined) env.PGPASSFILE = '/dev/null';
  else delete env.PGPASSWORD;
  // Spawned directly, without a shell between: the tool gets lifeboat's signals
  // as they are, and no shell library is loaded for it (zx weighs 13 MB of memory).
  const child = spawn(file, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  // An interrupt stops the tool (pg_dump and pg_restore pass it on to their
  // parallel workers); the caller removes what it wrote.
  const stop = (): void => void child.kill('SIGTERM');
  signal?.addEventListener('abort', stop, { once: true });
  const tail: string[] = [];
  let partial = '';
  child.stderr.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) handle(line);
  });
  function handle(line: string): void {
    if (!line.trim()) return;
    const clean = redact(line);
    onStderrLine?.(clean);
    tail.push(clean);
    if (tail.length > 20) tail.shift();
  }
  const out = await new Promise<{ exitCode: number | null; signal: string | null }>((resolve) => {
    child.on('error', (err) => {
      handle(`could not start ${file}: ${err.message}`);
      resolve({ exitCode: null, signal: null });
    });
    child.on('close', (exitCode, exitSignal) => resolve({ exitCode, signal: exitSignal }));
  }).finally(() => signal?.removeEventListener('abort', stop));
  if (partial) handle(partial);
  return {
    ok: out.exitCode === 0,
    exitCode: out.exitCode,
    signal: out.signal,
    errorLines: tail.filter((l) => /error|fatal|could not|failed|no space/i.test(l)),
    durationMs: Date.now() - started,
  };
}

export function isNoSpace(result: ToolResult): boolean {
  return result.errorLines.some((l) =>
    /No space left on device|ENOSPC|Disk quota exceeded/i.test(l),
  );
}
