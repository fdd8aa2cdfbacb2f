import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListBucketsCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3Server, type S3Server } from './support/s3-server.js';

const MiB = 1024 * 1024;
const bucket = `lifeboat-${randomBytes(4).toString('hex')}`;
let server: S3Server;
let s3: S3Client;

function client(secretAccessKey = server.secretAccessKey): S3Client {
  return new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey },
    maxAttempts: 1, // a failure should show, not be retried away
  });
}

const md5 = (data: Buffer) => createHash('md5').update(data).digest();

beforeAll(async () => {
  server = await startS3Server();
  s3 = client();
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
});

afterAll(async () => {
  s3?.destroy();
  await server?.stop();
});

describe('the S3 test store', () => {
  it('stores and returns an object', async () => {
    const body = Buffer.from('hello, lifeboat\n');
    const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'small', Body: body }));
    expect(put.ETag).toBe(`"${md5(body).toString('hex')}"`);
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'small' }));
    expect(await got.Body?.transformToString()).toBe(body.toString());
  });

  it('completes a multipart upload with a real multipart ETag', async () => {
    const partSize = 5 * MiB; // S3's (and s3api's) minimum for all but the last part
    const data = randomBytes(12 * MiB);
    const upload = new Upload({
      client: s3,
      params: { Bucket: bucket, Key: 'big', Body: data },
      partSize,
      queueSize: 2,
    });
    const { ETag } = await upload.done();

    // S3's multipart ETag: md5 of the parts' md5s, then "-" and the part count.
    const parts = [0, 1, 2].map((i) => md5(data.subarray(i * partSize, (i + 1) * partSize)));
    expect(ETag).toBe(`"${md5(Buffer.concat(parts)).toString('hex')}-3"`);
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'big' }));
    const bytes = Buffer.from((await got.Body?.transformToByteArray()) ?? []);
    expect(bytes.equals(data)).toBe(true);
  });

  it('rejects a wrong secret key', async () => {
    const intruder = client('not-the-secret');
    try {
      await expect(intruder.send(new ListBucketsCommand({}))).rejects.toMatchObject({
        name: 'SignatureDoesNotMatch',
        $metadata: { httpStatusCode: 403 },
      });
    } finally {
      intruder.destroy();
    }
  });

  it('lists an unfinished multipart upload and aborts it', async () => {
    const { UploadId } = await s3.send(
      new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'abandoned' }),
    );
    await s3.send(
      new UploadPartCommand({
        Bucket: bucket,
        Key: 'abandoned',
        UploadId,
        PartNumber: 1,
        Body: randomBytes(5 * MiB),
      }),
    );
    const openUploads = async () =>
      (await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? [];
    expect(await openUploads()).toContainEqual(
      expect.objectContaining({ Key: 'abandoned', UploadId }),
    );

    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'abandoned', UploadId }));
    expect(await openUploads()).toEqual([]);
  });

  it('goes away with stopProxy and comes back with startProxy', async () => {
    await server.stopProxy();
    // A new client opens a new connection; a kept-alive one may be reset instead of refused.
    await expect(client().send(new ListBucketsCommand({}))).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });
    await server.startProxy();
    const { Buckets } = await s3.send(new ListBucketsCommand({}));
    expect(Buckets?.map((b) => b.Name)).toContain(bucket);
  });
});
