import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';

const cwd = '/work/project';

function problems(raw: unknown, overrides = {}): string[] {
  try {
    buildConfig(raw, '/work/project/lifeboat.config.json', overrides, cwd, {});
  } catch (err) {
    if (err instanceof ConfigError) return err.details;
    throw err;
  }
  return [];
}

describe('buildConfig', () => {
  it('defaults to one local destination under the current directory', () => {
    const config = buildConfig({}, undefined, {}, cwd, {});
    expect(config.destinations).toEqual([
      { name: 'local', path: path.join(cwd, '.lifeboat/backups') },
    ]);
    expect(config.copies).toBe(1);
    expect(config.maxAgeMs).toBe(24 * 3600_000);
  });

  it('resolves destinations relative to the config file and reads durations as people write them', () => {
    const config = buildConfig(
      {
        destinations: [{ path: 'b1' }, { name: 'nas', path: '/mnt/nas' }],
        policy: { maxAge: '90m', copies: 2 },
      },
      '/etc/lb/lifeboat.config.json',
      {},
      cwd,
      {},
    );
    expect(config.destinations).toEqual([
      { name: 'local', path: '/etc/lb/b1' },
      { name: 'nas', path: '/mnt/nas' },
    ]);
    expect(config.maxAgeMs).toBe(90 * 60_000);
  });

  it('reports every problem at once, with where it is', () => {
    const found = problems({
      policy: { maxAge: 'soon', copies: 0 },
      jobs: 'many',
      destinatons: [],
    });
    expect(found).toHaveLength(4);
    expect(found.join('\n')).toMatch(/policy\.maxAge: "soon" is not a duration/);
    expect(found.join('\n')).toMatch(/policy\.copies/);
    expect(found.join('\n')).toMatch(/jobs/);
    expect(found.join('\n')).toMatch(/destinatons/);
  });

  it('refuses more copies than destinations, and a bad --max-age flag', () => {
    expect(problems({}, { copies: 2, maxAge: 'later' })).toEqual([
      '--max-age: "later" is not a duration (write 90s, 15m, 1h, 7d)',
      'copies is 2 but only 1 destination(s) are configured; add destinations or lower copies',
    ]);
  });

  it('takes the signing key from the environment only', () => {
    const config = buildConfig({}, undefined, {}, cwd, { LIFEBOAT_SIGNING_KEY: 'k3y-secret' });
    expect(config.signingKey).toBe('k3y-secret');
  });
});
