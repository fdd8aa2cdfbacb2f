import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, runJson, workspace } from './support/cli.js';

const broken = `# lifeboat config with a problem on every other line
destinatons:
  - { name: a, path: x }
destinations:
  - { name: a, path: x }
  - { name: a, path: y }
policy:
  maxAge: 24
  copies: 3
jobs: many
`;

describe('lifeboat config check', () => {
  it('lists every problem at once, each with file:line:column, offline', async () => {
    const ws = await workspace();
    try {
      await writeFile(path.join(ws.dir, 'lifeboat.config.yaml'), broken);
      // No database is named and none is contacted.
      const r = await runCli(['config', 'check'], { cwd: ws.dir });
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toEqual([
        'error: The configuration lifeboat.config.yaml has 5 problems.',
        '  - lifeboat.config.yaml:2:1: destinatons: unknown key "destinatons"; did you mean "destinations"?',
        '  - lifeboat.config.yaml:6:13: destinations[1].name: the name "a" is already used by destinations[0]; give each destination its own name',
        '  - lifeboat.config.yaml:8:11: policy.maxAge: write a duration with its unit, like 90s, 15m, 1h or 7d (got 24)',
        '  - lifeboat.config.yaml:9:11: policy.copies: 3 copies are required but only 2 destination(s) are configured; add destinations or lower copies',
        '  - lifeboat.config.yaml:10:7: jobs: should be a number (got "many")',
      ]);

      // doctor shows the same problems, one line each, beside its other checks.
      const doctor = await runCli(['doctor', '--database-url', 'postgres://nobody@127.0.0.1:1/x'], {
        cwd: ws.dir,
      });
      expect(doctor.code).toBe(2);
      const configLines = doctor.stdout.split('\n').filter((l) => /config: /.test(l));
      expect(configLines).toHaveLength(5);
      expect(configLines[0]).toMatch(/^FAIL {2}config: lifeboat\.config\.yaml:2:1: destinatons/);
    } finally {
      await ws.cleanup();
    }
  });

  it('says what a valid config means, in text and JSON', async () => {
    const ws = await workspace({
      destinations: [
        { name: 'near', path: 'b' },
        { name: 'far', path: '/srv/lifeboat', keep: 3 },
      ],
      policy: { maxAge: '6h', copies: 2 },
    });
    try {
      const r = await runCli(['config', 'check'], { cwd: ws.dir });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/lifeboat\.config\.json is valid:/);
      expect(r.stdout).toMatch(/destination far: \/srv\/lifeboat, keeps 3/);
      expect(r.stdout).toMatch(/at most 6h00m old, intact in 2 destination\(s\)/);
      const json = await runJson(['config', 'check'], { cwd: ws.dir });
      expect(json.doc).toMatchObject({
        ok: true,
        config: { policy: { maxAgeMs: 6 * 3600_000, copies: 2, requireOffsite: false } },
      });
    } finally {
      await ws.cleanup();
    }
  });
});
