import { LocalRepo } from '../src/repository/storage/local-repo.js';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildHistory, type BackupHistory, type History } from '../src/history.js';
import type { CatalogEntry } from '../src/repository/catalog.js';
import type { Manifest, VerificationRecord } from '../src/repository/manifest.js';
import { backupDirs, largestDataFile, smallDatabase } from './support/backups.js';
import { runCli, runJson, workspace } from './support/cli.js';
import type { TestDatabase } from './support/db.js';

const runbook = `name: widgets
steps:
  - id: create-widgets
    sql:
      up: CREATE TABLE widgets (id int primary key)
      down: DROP TABLE widgets
  - id: fill-widgets
    sql:
      up: INSERT INTO widgets SELECT generate_series(1, 10)
      down: DELETE FROM widgets
`;

describe('lifeboat history', () => {
  let db: TestDatabase;
  let other: TestDatabase;
  let ws: Awaited<ReturnType<typeof workspace>>;
  let first: string;
  let second: string;
  beforeAll(async () => {
    db = await smallDatabase('history');
    other = await smallDatabase('history_other');
    ws = await workspace({ destinations: [{ path: 'backups' }], policy: { maxAge: '1h' } });
    await writeFile(path.join(ws.dir, 'widgets.yaml'), runbook);
    const cli = async (...args: string[]): Promise<void> => {
      const r = await runCli(args, { cwd: ws.dir });
      expect(r.code, `${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(0);
    };
    // This target: a verified backup, verified again; a run that succeeds, then is rolled back.
    await cli('backup', '--database-url', db.url);
    first = path.basename((await backupDirs(path.join(ws.dir, 'backups')))[0]!);
    await cli('verify', first, '--database-url', db.url);
    await cli('run', 'widgets.yaml', '--backup', 'existing', '--database-url', db.url);
    await cli('rollback', '--yes', '--database-url', db.url);
    // A newer backup whose verification fails, and a backup of another database.
    await cli('backup', '--no-verify', '--database-url', db.url);
    second = (await backupDirs(path.join(ws.dir, 'backups')))
      .map((d) => path.basename(d))
      .find((id) => id !== first)!;
    const damaged = await largestDataFile(path.join(ws.dir, 'backups', second));
    const bytes = await readFile(damaged);
    bytes[20] = bytes[20]! ^ 0xff;
    await writeFile(damaged, bytes);
    expect((await runCli(['verify', second, '--database-url', db.url], { cwd: ws.dir })).code).toBe(
      4,
    );
    await cli('backup', '--no-verify', '--database-url', other.url);
  });
  afterAll(async () => {
    await db.drop();
    await other.drop();
    await ws.cleanup();
  });

  it('--json: this target’s backups with their verifications, its runs, the newest verified backup', async () => {
    const r = await runJson(['history', '--database-url', db.url], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(0);
    const h = r.doc.history as History;
    expect(h.matchedBy).toBe('identity');
    expect(h.identity?.database).toBe(db.name);
    expect(h.otherBackups).toBe(1);
    expect(h.backups.map((b) => [b.id, b.result])).toEqual([
      [first, 'verified'],
      [second, 'verification-failed'],
    ]);
    const [a, b] = h.backups as [BackupHistory, BackupHistory];
    expect(a.bytes).toBeGreaterThan(0);
    expect(a.dumpMs).toBeGreaterThan(0);
    expect(a.copies).toEqual(['local']);
    expect(a.verifications).toHaveLength(2);
    expect(a.verifications.every((v) => v.ok && v.restoreMs > 0)).toBe(true);
    expect(b.verifications).toHaveLength(1);
    expect(b.verifications[0]!.ok).toBe(false);
    expect(b.verifications[0]!.error).toMatch(/SHA-256 differs/);

    expect(h.journalError).toBeNull();
    expect(h.runs).toHaveLength(1);
    expect(h.runs![0]).toMatchObject({
      runbook: 'widgets',
      status: 'rolled-back',
      backupId: first,
      // Applied by the run, then undone by `lifeboat rollback`: what each step is now.
      applied: 0,
      undone: 2,
      failed: 0,
    });
    expect(h.runs![0]!.durationMs).toBeGreaterThanOrEqual(0);

    expect(h.newestVerified).toMatchObject({ id: first, withinPolicy: true });
    expect(h.newestVerified!.ageMs).toBeGreaterThanOrEqual(0);
    expect(h.newestVerified!.ageMs).toBeLessThan(3600_000);
    expect(h.maxAgeMs).toBe(3600_000);
  });

  it('shows it in a compact terminal view', async () => {
    const r = await runCli(['history', '--database-url', db.url], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(0);
    const out = r.stdout;
    expect(out).toContain(`History of `);
    expect(out).toMatch(/^Backups \(2\)$/m);
    expect(out).toMatch(/taken \(UTC\) +size +dump +restore +id +result/);
    // Two restores for the first backup; none for the second, whose copy was damaged.
    expect(out).toMatch(
      new RegExp(
        `^  \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d +\\S+ \\S+ +\\S+ +\\S+, \\S+ +${first} +verified$`,
        'm',
      ),
    );
    expect(out).toMatch(
      new RegExp(` - +${second} +verify FAILED: no intact copy: .*\\.dat\\.gz`, 'm'),
    );
    expect(out).toMatch(/verify FAILED: .{50,}…$/m); // a long reason is cut, the table stays compact
    expect(out).toContain('(1 backup(s) of other databases or servers not shown)');
    expect(out).toMatch(/^Runs \(1\)$/m);
    expect(out).toMatch(/rolled-back +0 applied, 2 undone +widgets +run-/);
    expect(out).toMatch(
      new RegExp(
        `^Newest verified backup: \\S+ old \\(${first}, verified .*\\); within the policy's 1h`,
        'm',
      ),
    );
  });

  it('--limit keeps the newest', async () => {
    const r = await runJson(['history', '--limit', '1', '--database-url', db.url], { cwd: ws.dir });
    const h = r.doc.history as History;
    expect(h.backups.map((b) => b.id)).toEqual([second]);
    expect(h.newestVerified?.id).toBe(first);
    const text = await runCli(['history', '--limit', '1', '--database-url', db.url], {
      cwd: ws.dir,
    });
    expect(text.stdout).toMatch(/^Backups \(2, the newest 1 shown\)$/m);
    const bad = await runCli(['history', '--limit', '-1', '--database-url', db.url], {
      cwd: ws.dir,
    });
    expect(bad.code).toBe(2);
  });

  it('with the target unreachable: the repository part, and the journal said to be unreadable (exit 0)', async () => {
    const url = new URL(db.url);
    url.port = '1';
    url.hostname = '127.0.0.1';
    const r = await runJson(['history', '--database-url', url.toString()], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(0);
    const h = r.doc.history as History;
    expect(h.matchedBy).toBe('database-name');
    expect(h.identity).toBeNull();
    expect(h.runs).toBeNull();
    expect(h.journalError).toMatch(
      /^the journal could not be read: Cannot connect to .*connection refused/,
    );
    expect(h.backups.map((b) => b.id)).toEqual([first, second]);
    expect(h.newestVerified?.id).toBe(first);

    const text = await runCli(['history', '--database-url', url.toString()], { cwd: ws.dir });
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('backups are matched by database name only');
    expect(text.stdout).toMatch(/^Runs: the journal could not be read: Cannot connect/m);
    expect(text.stdout).not.toMatch(/password|secret/i);
  });

  it('counts a run’s steps as the run’s own report does', async () => {
    const mixed = await smallDatabase('history_mixed');
    try {
      await writeFile(
        path.join(ws.dir, 'mixed.yaml'),
        `name: mixed
steps:
  - id: add-a
    sql: { up: "ALTER TABLE items ADD COLUMN a int", down: "ALTER TABLE items DROP COLUMN a" }
  - id: has-items
    check: { query: "SELECT count(*) > 0 FROM items" }
  - id: add-b
    sql: { up: "ALTER TABLE items ADD COLUMN b int", down: "ALTER TABLE items DROP COLUMN b" }
  - id: boom
    sql: { up: "SELECT 1/0" }
`,
      );
      const run = await runJson(['run', 'mixed.yaml', '--database-url', mixed.url], {
        cwd: ws.dir,
      });
      expect(run.code, run.stderr).toBe(5);
      const report = (run.doc.result as { steps: { id: string; outcome: string }[] }).steps;
      expect(report.map((s) => `${s.id}:${s.outcome}`)).toEqual([
        'add-a:undone',
        'has-items:applied',
        'add-b:undone',
        'boom:failed',
      ]);
      const r = await runJson(['history', '--database-url', mixed.url], { cwd: ws.dir });
      const [h] = (r.doc.history as History).runs!;
      expect(h!.steps.map((s) => `${s.id}:${s.outcome}`)).toEqual(
        report.map((s) => `${s.id}:${s.outcome}`),
      );
      expect(h).toMatchObject({ applied: 1, undone: 2, failed: 1 });
      expect(h!.steps.every((s) => s.durationMs !== null && s.durationMs >= 0)).toBe(true);
    } finally {
      await mixed.drop();
    }
  });

  it('has help with its purpose, examples and exit codes', async () => {
    const r = await runCli(['history', '--help'], { cwd: ws.dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/backups, verifications and runs over time/);
    expect(r.stdout).toContain('Examples:');
    expect(r.stdout).toMatch(/Exit codes:\n\s+0 .*\n\s+2 /);
  });
});

describe('buildHistory (pure)', () => {
  const identity = {
    systemIdentifier: '7000',
    database: 'shop',
    databaseOid: 1,
    serverVersion: '16.4',
    serverMajor: 16,
    encoding: 'UTF8',
  };
  function entry(id: string, createdAt: string, target = identity, ok?: boolean): CatalogEntry {
    const manifest = {
      id,
      createdAt,
      target: { ...target, described: 'x' },
      dump: { format: 'directory', jobs: 2, durationMs: 1000, bytes: 2048 },
    } as unknown as Manifest;
    const verifications =
      ok === undefined
        ? []
        : [
            {
              backupId: id,
              at: createdAt,
              ok,
              restoreMs: 500,
              durationMs: 900,
              restoredFrom: 'local',
              differences: [],
            } as unknown as VerificationRecord,
          ];
    return {
      id,
      manifest,
      claimed: manifest,
      manifestProblems: [],
      copies: [
        {
          destination: 'local',
          id,
          location: `/b/${id}`,
          remote: false,
          repo: new LocalRepo('local', '/b'),
        },
      ],
      verifications,
      rehearsals: [],
      drills: [],
    };
  }
  const base = {
    target: 'app@db:5432/shop',
    database: 'shop',
    journal: undefined,
    identityError: null,
    journalError: 'the journal could not be read: no',
    now: new Date('2026-01-02T12:00:00Z'),
    maxAgeMs: 6 * 3600_000,
  };

  it('filters by server identity and database; the newest verified one decides the age', () => {
    const h = buildHistory({
      ...base,
      identity,
      entries: [
        entry('b1', '2026-01-02T02:00:00Z', identity, true),
        entry('b2', '2026-01-02T08:00:00Z', identity, false),
        entry('b3', '2026-01-02T09:00:00Z', { ...identity, systemIdentifier: '9999' }, true),
        entry('b4', '2026-01-02T10:00:00Z', identity),
      ],
    });
    expect(h.backups.map((b) => `${b.id}:${b.result}`)).toEqual([
      'b1:verified',
      'b2:verification-failed',
      'b4:not-verified',
    ]);
    expect(h.otherBackups).toBe(1);
    expect(h.newestVerified).toMatchObject({ id: 'b1', ageMs: 10 * 3600_000, withinPolicy: false });
    expect(h.runs).toBeNull();
  });

  it('without an identity, matches by database name (another server’s backup of "shop" too)', () => {
    const h = buildHistory({
      ...base,
      identity: undefined,
      entries: [
        entry('b3', '2026-01-02T09:00:00Z', { ...identity, systemIdentifier: '9999' }, true),
        entry('b5', '2026-01-02T09:30:00Z', { ...identity, database: 'other' }, true),
      ],
    });
    expect(h.matchedBy).toBe('database-name');
    expect(h.backups.map((b) => b.id)).toEqual(['b3']);
    expect(h.newestVerified).toMatchObject({ id: 'b3', withinPolicy: true });
  });
});
