import { describe, expect, it } from 'vitest';
import { runCli, workspace } from './support/cli.js';

const commands = [
  'doctor',
  'config',
  'backup',
  'verify',
  'backups',
  'gate',
  'plan',
  'run',
  'status',
  'rollback',
  'rehearse',
  'restore',
  'unfreeze',
  'init',
  'history',
  'demo',
  'drill',
  'move',
];

describe('help that teaches', () => {
  it('every command says what it is for, shows examples and lists its exit codes', async () => {
    const ws = await workspace();
    try {
      const top = await runCli(['--help'], { cwd: ws.dir });
      for (const command of commands) {
        expect(top.stdout).toMatch(new RegExp(`lifeboat ${command}\\b`));
        const r = await runCli([command, '--help'], { cwd: ws.dir });
        expect(r.code, command).toBe(0);
        expect(r.stdout, command).toMatch(/^Examples:\n {2}lifeboat /m);
        expect(r.stdout, command).toMatch(/^Exit codes:\n {2}0 {2}success/m);
      }
      const completion = await runCli(['completion'], { cwd: ws.dir });
      expect(completion.stdout).toMatch(/lifeboat/);
    } finally {
      await ws.cleanup();
    }
  });
});
