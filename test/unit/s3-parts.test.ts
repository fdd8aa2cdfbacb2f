import { describe, expect, it } from 'vitest';
import { parseS3Url } from '../../src/repository/storage/destination.js';
import { PART_SIZE, partSizeFor } from '../../src/repository/storage/s3-repo.js';

const MiB = 1 << 20;
const GiB = 1 << 30;

describe('partSizeFor', () => {
  it("uses 5 MiB parts, S3's smallest, for everything up to about 44 GiB", () => {
    expect(partSizeFor(undefined)).toBe(PART_SIZE);
    expect(partSizeFor(0)).toBe(5 * MiB);
    expect(partSizeFor(43 * GiB)).toBe(5 * MiB);
    expect(partSizeFor(45 * GiB)).toBe(6 * MiB);
  });

  it('grows the parts so that no file needs more than S3 allows (10,000)', () => {
    for (const size of [44 * GiB, 71 * GiB, 500 * GiB, 1024 * GiB, 5 * 1024 * GiB]) {
      const part = partSizeFor(size);
      expect(part % MiB).toBe(0);
      expect(Math.ceil(size / part)).toBeLessThanOrEqual(9_000);
    }
    expect(partSizeFor(1024 * GiB)).toBe(117 * MiB);
  });
});

describe('parseS3Url', () => {
  it('reads the bucket and a prefix ending in one slash', () => {
    expect(parseS3Url('s3://bucket')).toEqual({ bucket: 'bucket', prefix: '' });
    expect(parseS3Url('s3://bucket/')).toEqual({ bucket: 'bucket', prefix: '' });
    expect(parseS3Url('s3://bucket/a/b/')).toEqual({ bucket: 'bucket', prefix: 'a/b/' });
    expect(parseS3Url('s3://bucket//a//')).toEqual({ bucket: 'bucket', prefix: 'a/' });
    expect(parseS3Url('https://bucket/a')).toBeUndefined();
    expect(parseS3Url('s3://')).toBeUndefined();
  });
});
