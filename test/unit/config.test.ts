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
      { name: 'local', kind: 'local', path: path.join(cwd, '.lifeboat/backups') },
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
      { name: 'local', kind: 'local', path: '/etc/lb/b1' },
      { name: 'nas', kind: 'local', path: '/mnt/nas' },
    ]);
    expect(config.maxAgeMs).toBe(90 * 60_000);
  });

  it('reads an s3:// destination with its endpoint, encryption and retention', () => {
    const recipient = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';
    const config = buildConfig(
      {
        destinations: [
          { path: 'b1' },
          {
            name: 'offsite',
            url: 's3://bucket/some/prefix/',
            endpoint: 'http://127.0.0.1:9000',
            region: 'eu-west-1',
            forcePathStyle: true,
            encrypt: { recipients: [recipient], recipientsFile: 'keys.txt' },
            keep: 30,
          },
        ],
        policy: { copies: 2, requireOffsite: true },
      },
      '/etc/lb/lifeboat.config.json',
      {},
      cwd,
      {},
    );
    expect(config.destinations[1]).toEqual({
      name: 'offsite',
      kind: 's3',
      s3: {
        bucket: 'bucket',
        prefix: 'some/prefix/',
        endpoint: 'http://127.0.0.1:9000',
        region: 'eu-west-1',
        forcePathStyle: true,
      },
      encrypt: { recipients: [recipient], recipientsFile: '/etc/lb/keys.txt' },
      keep: 30,
    });
    expect(config.requireOffsite).toBe(true);
  });

  it('names every problem of a bad s3:// destination', () => {
    const found = problems({
      destinations: [
        { url: 'http://bucket/x' },
        { url: 's3://b', path: '/also/a/path' },
        { path: '/d', endpoint: 'http://127.0.0.1:9000' },
        { url: 's3://b', encrypt: { recipients: ['not-a-key'] } },
        { url: 's3://b', encrypt: {} },
      ],
    });
    expect(found.join('\n')).toMatch(/destinations\.0\.url: write s3:\/\/bucket/);
    expect(found.join('\n')).toMatch(/destinations\.1.*either path .* or url/);
    expect(found.join('\n')).toMatch(/destinations\.2.*belong to an s3:\/\/ destination/);
    expect(found.join('\n')).toMatch(/not an age recipient/);
    expect(found.join('\n')).toMatch(/give recipients or recipientsFile/);
  });

  it('refuses requireOffsite without an s3:// destination', () => {
    expect(problems({ policy: { requireOffsite: true } }).join('\n')).toMatch(
      /requireOffsite is set but no s3:\/\/ destination/,
    );
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
