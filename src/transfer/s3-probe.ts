// Is S3 there at all? One cheap request, no retries: HeadBucket of a bucket the service writes to.
// Any answer that is not a server error or throttling (200, but also 403 or 404) means S3 answers.
import { HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { describeS3Error, isS3Unreachable } from './errors.js';

/** How long one probe may take: a probe that hangs is an S3 that does not answer. */
export const PROBE_TIMEOUT_MS = 10_000;

export type S3ProbeResult = { reachable: true } | { reachable: false; error: string };

export type S3Probe = (bucket: string) => Promise<S3ProbeResult>;

export function createS3Probe(s3: S3Client, timeoutMs: number = PROBE_TIMEOUT_MS): S3Probe {
  return async (bucket) => {
    try {
      await s3.send(new HeadBucketCommand({ Bucket: bucket }), {
        abortSignal: AbortSignal.timeout(timeoutMs),
      });
      return { reachable: true };
    } catch (error) {
      if (!isS3Unreachable(error) && !isProbeTimeout(error)) return { reachable: true };
      return { reachable: false, error: describeS3Error(error, { bucket }) };
    }
  };
}

function isProbeTimeout(error: unknown): boolean {
  return error instanceof Error && (error.name === 'AbortError' || error.name === 'TimeoutError');
}
