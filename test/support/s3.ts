import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { startS3Server, type S3Server } from './s3-server.js';

/** A throwaway S3 store with one bucket, and a client for the test to look inside it. */
export async function storeWithBucket(bucket: string): Promise<{ s3: S3Server; client: S3Client }> {
  const s3 = await startS3Server();
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  return { s3, client };
}
