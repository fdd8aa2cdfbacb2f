import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { smallDatabase } from './support/backups.js';
import { runCli, workspace } from './support/cli.js';

describe('in GitHub Actions', () => {
  it('groups each phase, leaves the backup id and verdict in the step outputs, annotates problems', async () => {
    const db = await smallDatabase('github', 30);
    const ws = await workspace();
    try {
      const outputs = path.join(ws.dir, 'github-output');
      await writeFile(outputs, '');
      const env = { GITHUB_ACTIONS: 'true', GITHUB_OUTPUT: outputs };
      const backup = await runCli(['backup', '--database-url', db.url], { cwd: ws.dir, env });
      expect(backup.code, backup.stderr).toBe(0);
      expect(backup.stderr).toMatch(/^::group::Dump .* at snapshot .*\n[\s\S]*?^::endgroup::$/m);
      const id = /^Backup (\S+) of/.exec(backup.stdout)![1]!;
      expect(await readFile(outputs, 'utf8')).toBe(
        `exit-code=0\nbackup-id=${id}\nverdict=verified\n`,
      );

      await writeFile(outputs, '');
      const gate = await runCli(['gate', '--database-url', db.url], { cwd: ws.dir, env });
      expect(gate.code).toBe(0);
      expect(await readFile(outputs, 'utf8')).toBe(
        `exit-code=0\nbackup-id=${id}\nverdict=passed\n`,
      );
      await writeFile(outputs, '');
      const refused = await runCli(['gate', '--max-age', '1ms', '--database-url', db.url], {
        cwd: ws.dir,
        env,
      });
      expect(refused.code).toBe(3);
      expect(await readFile(outputs, 'utf8')).toBe('exit-code=3\nverdict=refused\n');

      await writeFile(
        path.join(ws.dir, 'rb.yaml'),
        'name: broken\nsteps:\n  - id: one\n    sql: { up: "SELECT 1", dwon: "SELECT 2" }\n',
      );
      const plan = await runCli(['plan', 'rb.yaml', '--offline'], { cwd: ws.dir, env });
      expect(plan.code).toBe(2);
      expect(plan.stderr).toMatch(/^::error file=rb\.yaml,line=4,col=\d+::unknown key "dwon"/m);

      await writeFile(path.join(ws.dir, 'lifeboat.config.yaml'), 'policy:\n  maxAge: 24\n');
      const config = await runCli(['config', 'check'], { cwd: ws.dir, env });
      expect(config.code).toBe(2);
      expect(config.stderr).toMatch(
        /^::error file=lifeboat\.config\.yaml,line=2,col=11::policy\.maxAge: write a duration with its unit/m,
      );

      // Elsewhere: none of it.
      const plain = await runCli(['config', 'check'], {
        cwd: ws.dir,
        env: { GITHUB_OUTPUT: outputs },
      });
      expect(plain.stderr).not.toMatch(/::error|::group/);
    } finally {
      await db.drop();
      await ws.cleanup();
    }
  });
});
