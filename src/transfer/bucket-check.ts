// Before an upload is created: can the service use its bucket? One ListObjectsV2 of at most one key
// under the upload's prefix, with the service's credentials, tried once, within a few seconds.
// A GET rather than HeadBucket: the answer to a HEAD has no body, so S3's error code could not tell
// a missing bucket or a rejected key (NoSuchBucket, InvalidAccessKeyId, SignatureDoesNotMatch,
// ExpiredToken) from a policy that only denies listing (AccessDenied), which uploaders often have.
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { describeS3Error, S3RequestError } from './errors.js';
import { requestS3, type TransferContext } from './s3-request.js';

/** How long the check may take before the upload is created unchecked. */
export const BUCKET_CHECK_TIMEOUT_MS = 5_000;

/** Why S3 refused the check: each would fail every file of the upload. */
export type BucketProblem = 'bucket_not_found' | 's3_credentials_rejected' | 's3_credentials_missing';

export type BucketCheck =
  | { result: 'usable' }
  | { result: 'refused'; problem: BucketProblem; message: string }
  /** The check could not tell (listing denied, no answer in time, an error of S3's): a warning. */
  | { result: 'unchecked'; message: string };

const REJECTED_CREDENTIALS = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'TokenRefreshRequired',
  'InvalidToken',
]);

export async function checkBucket(
  context: TransferContext,
  bucket: string,
  prefix: string,
  timeoutMs: number = BUCKET_CHECK_TIMEOUT_MS,
): Promise<BucketCheck> {
  const target = prefix === '' ? { bucket } : { bucket, key: prefix };
  // Once: a retry would only spend the time a person waits for the answer.
  const once = { ...context, settings: { ...context.settings, retryMaxAttempts: 1 } };
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    await requestS3(once, 'ListObjectsV2', target, signal, (abortSignal) =>
      context.client.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix === '' ? undefined : prefix, MaxKeys: 1 }),
        { abortSignal },
      ),
    );
    return { result: 'usable' };
  } catch (error) {
    if (signal.aborted) {
      return { result: 'unchecked', message: `S3 did not answer within ${timeoutMs / 1000} s` };
    }
    const code = error instanceof S3RequestError ? error.code : undefined;
    const message = describeS3Error(error, { bucket });
    if (code === 'NoSuchBucket') return { result: 'refused', problem: 'bucket_not_found', message };
    if (code !== undefined && REJECTED_CREDENTIALS.has(code)) {
      return { result: 'refused', problem: 's3_credentials_rejected', message };
    }
    if (code === 'CredentialsProviderError') {
      return { result: 'refused', problem: 's3_credentials_missing', message };
    }
    return { result: 'unchecked', message };
  }
}
