import { spawn } from 'node:child_process';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { smallDatabase } from './support/backups.js';
import { CLI, runCli, workspace } from './support/cli.js';
import type { TestDatabase } from './support/db.js';

/**
 * The CI examples in examples/ci are executed: every `npx lifeboat …` line of
 * their steps runs as written, with bash, in a project made by `lifeboat
 * init`, against a real database. `npx lifeboat` is the built CLI; the
 * secrets are the test database's URL and a signing key.
 */
const EXAMPLES = fileURLToPath(new URL('../examples/ci/', import.meta.url));

interface CiCommand {
  job: string;
  line: string;
  env: Record<string, string>;
}

interface Example {
  jobs: Map<string, CiCommand[]>;
  needs: Map<string, string[]>;
}

type Secrets = Record<string, string>;

function asRecord(value: unknown): Record<string, unknown> {
  return value && typeof value === 'object' ? (value as Record<string, unknown>) : {};
}

function stringEnv(value: unknown, secrets: Secrets): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(asRecord(value))) {
    const text = String(v);
    const secret = /^\$\{\{\s*secrets\.([A-Z0-9_]+)\s*\}\}$/.exec(text)?.[1];
    if (secret !== undefined) {
      if (!(secret in secrets)) throw new Error(`the example uses an unknown secret ${secret}`);
      out[k] = secrets[secret]!;
    } else if (text.includes('${{')) {
      throw new Error(`the test does not know how to evaluate ${k}: ${text}`);
    } else out[k] = text;
  }
  return out;
}

/** The lifeboat command lines of a shell script (continuation lines joined). */
function lifeboatLines(script: string): string[] {
  return script
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^npx lifeboat\b/.test(l));
}

function githubExample(text: string, secrets: Secrets): Example {
  const doc = asRecord(parseYaml(text));
  const jobs = new Map<string, CiCommand[]>();
  const needs = new Map<string, string[]>();
  for (const [name, rawJob] of Object.entries(asRecord(doc.jobs))) {
    const job = asRecord(rawJob);
    needs.set(name, [job.needs ?? []].flat().map(String));
    const commands: CiCommand[] = [];
    for (const rawStep of (job.steps ?? []) as unknown[]) {
      const step = asRecord(rawStep);
      if (typeof step.run !== 'string') continue;
      const env = {
        ...stringEnv(doc.env, secrets),
        ...stringEnv(job.env, secrets),
        ...stringEnv(step.env, secrets),
      };
      for (const line of lifeboatLines(step.run)) commands.push({ job: name, line, env });
    }
    jobs.set(name, commands);
  }
  return { jobs, needs };
}

const GITLAB_KEYWORDS = new Set([
  'stages',
  'variables',
  'default',
  'include',
  'workflow',
  'image',
  'services',
  'cache',
  'before_script',
  'after_script',
]);

/** GitLab puts CI/CD variables (the secrets) in every job's environment. */
function gitlabExample(text: string, secrets: Secrets): Example {
  const doc = asRecord(parseYaml(text));
  const jobs = new Map<string, CiCommand[]>();
  const needs = new Map<string, string[]>();
  for (const [name, rawJob] of Object.entries(doc)) {
    if (GITLAB_KEYWORDS.has(name) || name.startsWith('.')) continue;
    const job = asRecord(rawJob);
    needs.set(name, [job.needs ?? []].flat().map(String));
    const env = {
      ...secrets,
      ...stringEnv(doc.variables, secrets),
      ...stringEnv(job.variables, secrets),
    };
    const script = [job.script ?? []].flat().map(String).join('\n');
    jobs.set(
      name,
      lifeboatLines(script).map((line) => ({ job: name, line, env })),
    );
  }
  return { jobs, needs };
}

interface Ran {
  line: string;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** One CI line, as the CI's shell runs it; `npx lifeboat` is the built CLI and nothing else. */
function runLine(cmd: CiCommand, cwd: string): Promise<Ran> {
  const env: NodeJS.ProcessEnv = { ...process.env, CI: 'true', NO_COLOR: '1' };
  for (const k of ['DATABASE_URL', 'PGHOST', 'PGPORT', 'PGUSER', 'PGPASSWORD', 'PGDATABASE'])
    delete env[k];
  Object.assign(env, cmd.env, { LIFEBOAT_CLI: CLI });
  const script = [
    'set -euo pipefail',
    'npx() { if [ "$1" = lifeboat ]; then shift; node "$LIFEBOAT_CLI" "$@"; else echo "not in this test: npx $*" >&2; return 127; fi; }',
    cmd.line,
  ].join('\n');
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ line: cmd.line, code, stdout, stderr }));
  });
}

async function runJob(ex: Example, job: string, cwd: string): Promise<Ran[]> {
  const commands = ex.jobs.get(job);
  if (!commands || commands.length === 0) throw new Error(`job ${job} has no lifeboat command`);
  const results: Ran[] = [];
  for (const cmd of commands) results.push(await runLine(cmd, cwd));
  return results;
}

function codes(results: Ran[]): Record<string, number | null> {
  return Object.fromEntries(results.map((r) => [r.line, r.code]));
}

function explain(results: Ran[]): string {
  return results.map((r) => `$ ${r.line} → ${r.code}\n${r.stdout}\n${r.stderr}`).join('\n');
}

/** A project as a new user has it: `lifeboat init`, then a real step in the runbook. */
async function initProject(dir: string): Promise<void> {
  const init = await runCli(['init'], { cwd: dir });
  expect(init.code, init.stderr).toBe(0);
  await appendFile(
    path.join(dir, 'runbooks/upgrade.yaml'),
    `
  - id: add-notes
    sql:
      up: CREATE TABLE notes (id int primary key, body text)
      down: DROP TABLE notes
`,
  );
}

const SIGNING_KEY = 'ci-example-signing-key';

describe.each([
  {
    file: 'github-actions.yml',
    parse: githubExample,
    backup: 'backup',
    gate: 'gate',
    deploy: 'deploy',
    rehearsed: true,
  },
  {
    file: 'gitlab-ci.yml',
    parse: gitlabExample,
    backup: 'lifeboat-backup',
    gate: 'lifeboat-gate',
    deploy: 'deploy',
    rehearsed: false,
  },
])('examples/ci/$file, executed', ({ file, parse, backup, gate, deploy, rehearsed }) => {
  let db: TestDatabase;
  let ws: Awaited<ReturnType<typeof workspace>>;
  let text: string;
  let example: Example;
  beforeAll(async () => {
    db = await smallDatabase('ci_example');
    ws = await workspace();
    await initProject(ws.dir);
    text = await readFile(path.join(EXAMPLES, file), 'utf8');
    example = parse(text, { DATABASE_URL: db.url, LIFEBOAT_SIGNING_KEY: SIGNING_KEY });
  });
  afterAll(async () => {
    await db.drop();
    await ws.cleanup();
  });
  const notesExists = async (): Promise<boolean> =>
    (
      (await db.query(`select to_regclass('public.notes') is not null as ok`)).rows[0] as {
        ok: boolean;
      }
    ).ok;

  it('gates the deploy: the deploy job needs the gate job, which runs lifeboat gate', () => {
    expect(example.needs.get(deploy)).toContain(gate);
    const gateLines = example.jobs.get(gate)!.map((c) => c.line);
    const gateLine = gateLines.find((l) => l.startsWith('npx lifeboat gate'));
    expect(gateLine).toBeDefined();
    expect(gateLine).toMatch(rehearsed ? /--rehearsed/ : /--max-age 6h/);
    // The target comes from the CI's secrets, never from the file itself.
    expect(text).not.toMatch(/DATABASE_URL:\s*['"]?postgres/);
    expect(example.jobs.get(gate)![0]!.env.DATABASE_URL).toBe(db.url);
    // The exit-code table is there, one row per code.
    for (const code of [0, 1, 2, 3, 4, 5, 6, 7])
      expect(text).toMatch(new RegExp(`\\| ${code} +\\|`));
  });

  it('before any backup: the gate exits 3 and the guarded run exits 3 without changing anything', async () => {
    const gated = await runJob(example, gate, ws.dir);
    const gateRun = gated.find((r) => r.line.startsWith('npx lifeboat gate'))!;
    expect(gateRun.code, explain(gated)).toBe(3);
    expect(gateRun.stderr).toMatch(/no backup of this target/);
    for (const r of gated.filter((r) => r !== gateRun)) expect(r.code, explain([r])).toBe(0);

    const deployed = await runJob(example, deploy, ws.dir);
    expect(Object.values(codes(deployed)), explain(deployed)).toEqual([3]);
    expect(await notesExists()).toBe(false);
  });

  it('the backup job takes a verified backup (and rehearses the runbook): every line exits 0', async () => {
    const results = await runJob(example, backup, ws.dir);
    expect(Object.values(codes(results)), explain(results)).toEqual(results.map(() => 0));
    expect(results.map((r) => r.line)).toContain('npx lifeboat backup');
  });

  it('with that backup the gate passes: every line exits 0', async () => {
    const gated = await runJob(example, gate, ws.dir);
    expect(Object.values(codes(gated)), explain(gated)).toEqual(gated.map(() => 0));
    expect(gated.at(-1)!.stdout).toContain('Gate passed');
  });

  it('a runbook change the gate must catch is refused (exit 3)', async () => {
    const file = path.join(ws.dir, 'runbooks/upgrade.yaml');
    const before = await readFile(file, 'utf8');
    // --rehearsed: any change needs a new rehearsal. Otherwise: a step without a down.
    await appendFile(
      file,
      `
  - id: add-notes-author
    sql:
      up: ALTER TABLE notes ADD COLUMN author text
${rehearsed ? '      down: ALTER TABLE notes DROP COLUMN author\n' : ''}`,
    );
    const refused = await runJob(example, gate, ws.dir);
    const gateRun = refused.find((r) => r.line.startsWith('npx lifeboat gate'))!;
    expect(gateRun.code, explain(refused)).toBe(3);
    expect(gateRun.stderr).toMatch(
      rehearsed ? /no rehearsal of this runbook/ : /add-notes-author.*(cannot be undone|no down)/,
    );
    if (rehearsed) {
      // The nightly job rehearses the new runbook; then the gate passes again.
      const again = await runJob(example, backup, ws.dir);
      expect(Object.values(codes(again)), explain(again)).toEqual(again.map(() => 0));
      const passed = await runJob(example, gate, ws.dir);
      expect(Object.values(codes(passed)), explain(passed)).toEqual(passed.map(() => 0));
    } else {
      await writeFile(file, before); // the developer adds the down instead
    }
  });

  it('the deploy job runs the guarded upgrade behind the gated backup: exit 0', async () => {
    const gated = await runJob(example, gate, ws.dir);
    expect(Object.values(codes(gated)), explain(gated)).toEqual(gated.map(() => 0));
    const deployed = await runJob(example, deploy, ws.dir);
    expect(Object.values(codes(deployed)), explain(deployed)).toEqual([0]);
    expect(deployed[0]!.stdout).toMatch(/add-notes\s+✔ applied/);
    expect(await notesExists()).toBe(true);
  });
});

describe('examples/ci/README.md', () => {
  it('names both examples and the test that runs them', async () => {
    const readme = await readFile(path.join(EXAMPLES, 'README.md'), 'utf8');
    expect(readme).toContain('github-actions.yml');
    expect(readme).toContain('gitlab-ci.yml');
    expect(readme).toContain('test/ci-examples.test.ts');
  });
});
