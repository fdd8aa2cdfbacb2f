import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupDirs, largestDataFile, smallDatabase } from './support/backups.js';
import { runCli, workspace } from './support/cli.js';
import type { TestDatabase } from './support/db.js';

describe('progress on stderr, results on stdout', () => {
  let db: TestDatabase;
  let ws: Awaited<ReturnType<typeof workspace>>;
  beforeAll(async () => {
    db = await smallDatabase('streams', 200);
    ws = await workspace({
      destinations: [
        { name: 'near', path: 'near' },
        { name: 'far', path: 'far' },
      ],
    });
  });
  afterAll(async () => {
    await db.drop();
    await ws.cleanup();
  });

  it('in plain mode: the task list goes to stderr in ASCII, stdout holds only the result', async () => {
    const r = await runCli(['backup', '--database-url', db.url], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Backup \S+ of /);
    expect(r.stdout).not.toMatch(/\[\d\d:\d\d:\d\d\]|Dump .* at snapshot|Checksum the dump/);
    expect(r.stderr).toMatch(/^ok \[\d\d:\d\d:\d\d\] Dump .* at snapshot/m);
    expect(r.stderr).toMatch(/^ok \[\d\d:\d\d:\d\d\] Compare fingerprints/m);
    // Each task: a line when it starts, one when it ends with how long it took.
    expect(r.stderr).toMatch(/^\.\. \[\d\d:\d\d:\d\d\] Checksum the dump$/m);
    expect(r.stderr).toMatch(/^ok \[\d\d:\d\d:\d\d\] Checksum the dump \[\d+\.\ds\]$/m);
    // eslint-disable-next-line no-control-regex
    expect(r.stderr).toMatch(/^[\x00-\x7f]*$/);
  });

  it('a copy whose checksums show damage is marked failed, never done', async () => {
    const [far] = await backupDirs(path.join(ws.dir, 'far'));
    const file = await largestDataFile(far!);
    const bytes = await readFile(file);
    bytes[20] = bytes[20]! ^ 0xff;
    await writeFile(file, bytes);
    const r = await runCli(['verify', '--database-url', db.url], { cwd: ws.dir });
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/^ok \[\S+\] Check checksums of the copy in near/m);
    expect(r.stderr).toMatch(
      /^FAIL \[\S+\] Check checksums of the copy in far .*SHA-256 differs from the manifest/m,
    );
    expect(r.stderr).not.toMatch(/^ok \[\S+\] Check checksums of the copy in far/m);
  });
});
