import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { smallDatabase } from './support/backups.js';
import { runCli, workspace } from './support/cli.js';
import type { TestDatabase } from './support/db.js';

describe('reports and evidence', () => {
  let db: TestDatabase;
  let ws: Awaited<ReturnType<typeof workspace>>;
  let summary: string;
  const reports = async (): Promise<string[]> =>
    (
      await readdir(path.join(ws.dir, '.lifeboat/backups/reports')).catch(() => [] as string[])
    ).sort();
  beforeAll(async () => {
    db = await smallDatabase('reports');
    ws = await workspace();
    summary = path.join(ws.dir, 'step-summary.md');
    await writeFile(summary, '');
  });
  afterAll(async () => {
    await db.drop();
    await ws.cleanup();
  });
  const env = () => ({ GITHUB_STEP_SUMMARY: summary });

  it('backup writes JSON and Markdown with the checksums, the restore and every fingerprint compared', async () => {
    const r = await runCli(['backup', '--database-url', db.url], { cwd: ws.dir, env: env() });
    expect(r.code, r.stderr).toBe(0);
    const names = await reports();
    expect(names.filter((n) => /-backup\.(json|md)$/.test(n))).toHaveLength(2);
    const md = await readFile(
      path.join(
        ws.dir,
        '.lifeboat/backups/reports',
        names.find((n) => n.endsWith('-backup.md'))!,
      ),
      'utf8',
    );
    expect(md).toMatch(/## lifeboat backup: passed \(exit 0\)/);
    expect(md).toMatch(
      /\*\*Verification\*\* passed .* restored from the copy in local into `lifeboat_verify_\S+` in /,
    );
    expect(md).toMatch(/\| public\.items \| 500 \| `[0-9a-f]{32}` \|/);
    expect(md).toMatch(/\| dump\/toc\.dat \| \d+ \| `[0-9a-f]{64}` \|/);
    expect(await readFile(summary, 'utf8')).toContain('## lifeboat backup: passed');
    expect(md).not.toMatch(/postgres:\/\/[^ ]*:[^*@ ]+@/);
  });

  it('gate --junit writes one test case per check, passing and failing', async () => {
    const junit = path.join(ws.dir, 'gate.xml');
    const pass = await runCli(['gate', '--junit', junit, '--database-url', db.url], {
      cwd: ws.dir,
      env: env(),
    });
    expect(pass.code).toBe(0);
    const passed = await readFile(junit, 'utf8');
    expect(passed).toMatch(/<testsuites name="lifeboat gate" tests="4" failures="0"/);
    expect(passed).toMatch(
      /<testcase classname="lifeboat.gate" name="its latest verification \(restore and compare\) passed"\/>/,
    );
    await new Promise((r) => setTimeout(r, 1100));
    const fail = await runCli(
      ['gate', '--junit', junit, '--max-age', '1s', '--database-url', db.url],
      {
        cwd: ws.dir,
        env: env(),
      },
    );
    expect(fail.code).toBe(3);
    const failed = await readFile(junit, 'utf8');
    expect(failed).toMatch(/failures="1"/);
    expect(failed).toMatch(
      /<failure message="backup \S+ is [\d.]+s old; the maximum age is 1\.0s">/,
    );
    const gateReports = (await reports()).filter((n) => n.endsWith('-gate.md'));
    expect(gateReports).toHaveLength(2);
    const refused = await readFile(
      path.join(ws.dir, '.lifeboat/backups/reports', gateReports[1]!),
      'utf8',
    );
    expect(refused).toMatch(/## lifeboat gate: FAILED \(exit 3\)/);
  });

  it('a failed run reports every step with its outcome and the rollback proof', async () => {
    await writeFile(
      path.join(ws.dir, 'fails.yaml'),
      `name: fails
steps:
  - id: add-note
    sql: { up: "ALTER TABLE items ADD COLUMN note text", down: "ALTER TABLE items DROP COLUMN note" }
  - id: boom
    sql: { up: "SELECT 1/0" }
`,
    );
    const r = await runCli(['run', 'fails.yaml', '--database-url', db.url], {
      cwd: ws.dir,
      env: env(),
    });
    expect(r.code).toBe(5);
    const md = await readFile(
      path.join(
        ws.dir,
        '.lifeboat/backups/reports',
        (await reports()).find((n) => n.endsWith('-run.md'))!,
      ),
      'utf8',
    );
    expect(md).toMatch(/## lifeboat run: FAILED \(exit 5\)/);
    expect(md).toMatch(/\| add-note \| undone \| \d/);
    expect(md).toMatch(/\| boom \| failed \| .* \| division by zero \|/);
    expect(md).toMatch(
      /Rollback proof: the fingerprints after rollback equal those taken before the first step/,
    );
  });
});
