// Every S3 call of the transfer goes through here: retried by the allow-list with backoff, aborted
// with the transfer, and on final failure turned into an S3RequestError that says what and where.
import type { S3Client } from '@aws-sdk/client-s3';
import type { TransferSettings } from '../config.js';
import type { Logger } from '../logger.js';
import { BufferPool } from './buffer-pool.js';
import {
  ETagMismatchError,
  FileChangedError,
  S3RequestError,
  describeS3Error,
  isAbortError,
  type S3Target,
} from './errors.js';
import { withRetry } from './retry.js';
import { observerOf, type S3RequestObserver } from './s3-observer.js';

export interface TransferContext {
  client: S3Client;
  settings: TransferSettings;
  logger: Logger;
  /** What this S3 server was found to do differently, learned once per process. */
  quirks: { copyIfMatchRefused: boolean };
  /** Every buffer of file data comes from here (MAX_BUFFER_BYTES). */
  buffers: BufferPool;
  /** Told of each retry, when the client's requests are observed (see s3-observer.ts). */
  observer: S3RequestObserver | undefined;
}

export function createTransferContext(
  client: S3Client,
  settings: TransferSettings,
  logger: Logger,
  buffers: BufferPool = new BufferPool(settings.maxBufferBytes),
): TransferContext {
  const observer = observerOf(client);
  return { client, settings, logger, quirks: { copyIfMatchRefused: false }, buffers, observer };
}

/**
 * Runs `attempt` (one S3 call, plus any check of its answer that should be retried with it) with
 * retries. Abort errors, ETag mismatches and a file found changed while a part streamed from it
 * are rethrown as they are; other errors are wrapped.
 */
export async function requestS3<T>(
  context: TransferContext,
  operation: string,
  target: S3Target,
  signal: AbortSignal,
  attempt: (abortSignal: AbortSignal) => Promise<T>,
): Promise<T> {
  const { settings, logger } = context;
  let attempts = 0;
  try {
    return await withRetry(
      () => {
        attempts++;
        return attempt(signal);
      },
      { maxAttempts: settings.retryMaxAttempts, baseDelayMs: settings.retryBaseDelayMs },
      signal,
      ({ attempt: failed, delayMs, error }) => {
        // 'UploadPart 3' is told as 'UploadPart': one series per operation, not per part.
        context.observer?.requestRetried(operation.split(' ', 1)[0]!);
        logger.warn(
          { operation, ...target, attempt: failed, delayMs, error: describeS3Error(error, target) },
          `${operation} failed; retrying`,
        );
      },
    );
  } catch (error) {
    if (isAbortError(error) || error instanceof ETagMismatchError || error instanceof FileChangedError)
      throw error;
    throw new S3RequestError(operation, target, attempts, error);
  }
}

/** The S3 error code of a failed call (wrapped or not) is `code`. */
function hasS3Code(error: unknown, code: string): boolean {
  if (error instanceof S3RequestError) return error.code === code;
  return error instanceof Error && error.name === code;
}

/** S3 answered that the multipart upload does not exist (completed, aborted, or expired). */
export function isNoSuchUpload(error: unknown): boolean {
  return hasS3Code(error, 'NoSuchUpload');
}

/** S3 answered that the bucket does not exist. */
export function isNoSuchBucket(error: unknown): boolean {
  return hasS3Code(error, 'NoSuchBucket');
}
