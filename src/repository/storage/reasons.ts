import { errorMessage } from '../../errors.js';
import { describeDestination, type Destination } from './destination.js';

/** One sentence for what an S3-compatible store answered; the SDK's own text never holds secrets. */
export function s3Reason(err: unknown): string {
  const e = err as { name?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const name = e.name ?? '';
  if (['SignatureDoesNotMatch', 'InvalidAccessKeyId', 'InvalidClientTokenId'].includes(name))
    return `the store refused the credentials (${name}); check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the AWS profile`;
  if (name === 'AccessDenied' || e.$metadata?.httpStatusCode === 403)
    return `access denied by the store (${name || '403'})`;
  if (name === 'NoSuchBucket') return 'the bucket does not exist';
  if (name === 'CredentialsProviderError')
    return 'no AWS credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)';
  const code = e.code ?? (err as { cause?: { code?: string } }).cause?.code;
  if (name === 'TimeoutError' || code === 'ETIMEDOUT')
    return "the store stopped answering (timed out; see the destination's timeout)";
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'ECONNRESET' || code === 'EPIPE')
    return `the store is not reachable (${code})`;
  return errorMessage(err);
}

/** Why a destination could not take a copy, in one sentence a person can act on. */
export function storageReason(dest: Destination, err: unknown): string {
  const where = describeDestination(dest);
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM') return `${where} is not writable (permission denied)`;
  if (code === 'EROFS') return `${where} is on a read-only file system`;
  if (code === 'ENOSPC') return `${where} ran out of space (no space left on device)`;
  return `${where}: ${dest.kind === 's3' ? s3Reason(err) : errorMessage(err)}`;
}
