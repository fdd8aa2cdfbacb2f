import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config.js';
import { parseConfigText } from '../../src/config-source.js';
import { ConfigError } from '../../src/errors.js';

const cwd = '/work/project';

function located(raw: unknown, file: string, locate: Parameters<typeof buildConfig>[5]): string[] {
  try {
    buildConfig(raw, path.join(cwd, file), {}, cwd, {}, locate);
  } catch (err) {
    if (err instanceof ConfigError) return err.details;
    throw err;
  }
  return [];
}

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
    expect(found.join('\n')).toMatch(/destinations\[0\]\.url: write s3:\/\/bucket/);
    expect(found.join('\n')).toMatch(/destinations\[1\]: give either path .* or url/);
    expect(found.join('\n')).toMatch(/destinations\[2\]: .*belong to an s3:\/\/ destination/);
    expect(found.join('\n')).toMatch(/not an age recipient/);
    expect(found.join('\n')).toMatch(/give recipients or recipientsFile/);
  });

  it('refuses requireOffsite without an s3:// destination', () => {
    expect(problems({ policy: { requireOffsite: true } }).join('\n')).toMatch(
      /policy\.requireOffsite: an off-site copy is required but no destination has an s3:\/\/ url/,
    );
  });

  it('reports every problem at once, with where it is', () => {
    const found = problems({
      policy: { maxAge: 'soon', copies: 0 },
      jobs: 'many',
      destinatons: [],
    });
    expect(found).toHaveLength(4);
    expect(found.join('\n')).toMatch(
      /policy\.maxAge: write a duration with its unit.*\(got "soon"\)/,
    );
    expect(found.join('\n')).toMatch(/policy\.copies/);
    expect(found.join('\n')).toMatch(/jobs/);
    expect(found.join('\n')).toMatch(/destinatons/);
  });

  it('refuses more copies than destinations, and a bad --max-age flag', () => {
    expect(problems({}, { copies: 2, maxAge: 'later' })).toEqual([
      '--copies: 2 copies are required but only 1 destination(s) are configured; add destinations or lower copies',
      '--max-age: write a duration with its unit, like 90s, 15m, 1h or 7d (got "later")',
    ]);
  });

  it('refuses a duration without its unit, and zero', () => {
    // `maxAge: 24` was read as 24 ms: a gate that nothing could pass, or worse, a guess.
    expect(problems({ policy: { maxAge: 24 } })).toEqual([
      'lifeboat.config.json: policy.maxAge: write a duration with its unit, like 90s, 15m, 1h or 7d (got 24)',
    ]);
    expect(problems({ policy: { maxAge: '0s' } })).toEqual([
      'lifeboat.config.json: policy.maxAge: a duration must be longer than zero',
    ]);
    expect(problems({}, { maxAge: '0s' })).toEqual([
      '--max-age: a duration must be longer than zero',
    ]);
  });

  it('suggests the key meant, and shows the rules across keys beside type errors', () => {
    const found = problems({
      destinatons: [],
      destinations: [
        { name: 'nas', path: '/a' },
        { name: 'nas', path: '/b' },
      ],
      policy: { copies: 3, maxAge: 'soon' },
      jobs: 'many',
    });
    expect(found).toEqual([
      'lifeboat.config.json: policy.maxAge: write a duration with its unit, like 90s, 15m, 1h or 7d (got "soon")',
      'lifeboat.config.json: jobs: should be a number (got "many")',
      'lifeboat.config.json: destinatons: unknown key "destinatons"; did you mean "destinations"?',
      'lifeboat.config.json: destinations[1].name: the name "nas" is already used by destinations[0]; give each destination its own name',
      'lifeboat.config.json: policy.copies: 3 copies are required but only 2 destination(s) are configured; add destinations or lower copies',
    ]);
  });

  it('names the line and column of each problem in a YAML or JSON file, in file order', () => {
    const yaml = [
      'destinations:',
      '  - { name: a, path: x }',
      '  - { name: a, path: y }',
      'policy:',
      '  maxAge: 24',
      'jobz: 2',
      '',
    ].join('\n');
    const source = parseConfigText('lifeboat.config.yaml', yaml);
    expect(located(source.raw, 'lifeboat.config.yaml', source.locate)).toEqual([
      'lifeboat.config.yaml:3:13: destinations[1].name: the name "a" is already used by destinations[0]; give each destination its own name',
      'lifeboat.config.yaml:5:11: policy.maxAge: write a duration with its unit, like 90s, 15m, 1h or 7d (got 24)',
      'lifeboat.config.yaml:6:1: jobz: unknown key "jobz"; did you mean "jobs"?',
    ]);
    const json = '{\n  "policy": { "copies": 0 }\n}\n';
    const fromJson = parseConfigText('lifeboat.config.json', json);
    expect(located(fromJson.raw, 'lifeboat.config.json', fromJson.locate)).toEqual([
      'lifeboat.config.json:2:25: policy.copies: should be at least 1 (got 0)',
    ]);
    expect(() => parseConfigText('lifeboat.config.json', '{ "jobs": 2, "jobs": 3 }')).toThrow(
      ConfigError,
    );
  });

  it('takes the signing key from the environment only', () => {
    const config = buildConfig({}, undefined, {}, cwd, { LIFEBOAT_SIGNING_KEY: 'k3y-secret' });
    expect(config.signingKey).toBe('k3y-secret');
  });
});
