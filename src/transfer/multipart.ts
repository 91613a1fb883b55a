// Files at or above the multipart threshold. Each part is read into a Buffer with a positioned read
// (never a stream: chunked framing breaks servers), hashed, sent with Content-MD5 and checked.
// Memory: one buffer per worker, so at most maxConcurrentParts × partSize of file data.
import type { FileHandle } from 'node:fs/promises';
import { partSizeFor } from '../config.js';
import { abortErrorFrom } from './errors.js';
import { runBounded } from './bounded-pool.js';
import { md5Of, multipartEtag } from './checksums.js';
import { assertUnchanged, openVersion, readExactly } from './file-version.js';
import { completeMultipartUpload, uploadPart, type UploadTarget } from './multipart-api.js';
import { startMultipart, type MultipartStart } from './multipart-resume.js';
import { partLength, partNumbers, partOffset, planParts, type PartPlan } from './part-plan.js';
import type { TransferContext } from './s3-request.js';
import type { ResumeState, UploadJob, UploadProgressListener, UploadResult } from './types.js';

interface PartsOutcome {
  /** ETag of every part, by part number. */
  etags: Map<number, string>;
  bytesSent: number;
  partsReused: number;
}

/**
 * Sends every part S3 does not hold yet, with at most maxConcurrentParts in flight. A part counts
 * as done only once `progress.partUploaded` has returned (it is persisted). On a failure the parts
 * in flight settle before the error is rethrown; the upload itself is left for a later resume.
 */
async function sendMissingParts(
  context: TransferContext,
  job: UploadJob,
  handle: FileHandle,
  plan: PartPlan,
  start: MultipartStart,
  progress: UploadProgressListener,
): Promise<PartsOutcome> {
  const target: UploadTarget = { bucket: job.bucket, key: job.key, uploadId: start.uploadId };
  const etags = new Map(start.trusted.map((part) => [part.partNumber, part.etag]));
  const outcome: PartsOutcome = { etags, bytesSent: 0, partsReused: start.trusted.length };
  let confirmedBytes = start.trusted.reduce((sum, part) => sum + part.size, 0);
  progress.bytesUploaded(confirmedBytes);

  const missing = [...partNumbers(plan)].filter((partNumber) => !etags.has(partNumber));
  const buffers: Buffer[] = [];
  const bufferSize = Math.min(plan.partSize, plan.fileSize);
  await runBounded(missing, context.settings.maxConcurrentParts, async (partNumber, worker) => {
    if (job.signal.aborted) throw abortErrorFrom(job.signal);
    const size = partLength(plan, partNumber);
    const body = (buffers[worker] ??= Buffer.allocUnsafe(bufferSize)).subarray(0, size);
    await readExactly(handle, body, partOffset(plan, partNumber), job);
    const md5 = md5Of(body);
    let etag: string;
    if (start.unconfirmed.get(partNumber) === md5.hex) {
      etag = md5.hex;
      outcome.partsReused++;
    } else {
      etag = await uploadPart(context, target, partNumber, body, md5, job.signal);
      outcome.bytesSent += size;
    }
    await progress.partUploaded({ partNumber, etag, size });
    etags.set(partNumber, etag);
    confirmedBytes += size;
    progress.bytesUploaded(confirmedBytes);
  });
  return outcome;
}

export async function uploadMultipart(
  context: TransferContext,
  job: UploadJob,
  resume: ResumeState | undefined,
  progress: UploadProgressListener,
): Promise<UploadResult> {
  const plan = planParts(job.size, partSizeFor(job.size, context.settings.partSizeBytes));
  const handle = await openVersion(job);
  try {
    const start = await startMultipart(context, job, resume, plan, progress);
    if (start.completed) {
      progress.bytesUploaded(job.size);
      return { ...start.completed, method: 'multipart', bytesSent: 0, partsReused: start.trusted.length };
    }
    const { etags, bytesSent, partsReused } = await sendMissingParts(
      context,
      job,
      handle,
      plan,
      start,
      progress,
    );
    // The parts were cut from this version only if it is still there once the last byte is read.
    await assertUnchanged(job);
    const partEtags = [...partNumbers(plan)].map((partNumber) => {
      const etag = etags.get(partNumber);
      if (etag === undefined) {
        throw new Error(`part ${partNumber} of ${plan.partCount} is missing before Complete`);
      }
      return etag;
    });
    const target: UploadTarget = { bucket: job.bucket, key: job.key, uploadId: start.uploadId };
    const completed = await completeMultipartUpload(
      context,
      target,
      partEtags,
      multipartEtag(partEtags),
      job.signal,
    );
    return { ...completed, method: 'multipart', bytesSent, partsReused };
  } finally {
    await handle.close();
  }
}
