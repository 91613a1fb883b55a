// Files at or above the multipart threshold that have settled. Each part is read into a Buffer with
// a positioned read (never a stream: chunked framing breaks servers), hashed, sent with Content-MD5
// and checked. Memory: each part's buffer is leased from the process's pool (MAX_BUFFER_BYTES), at
// most maxConcurrentParts of them per file.
import type { FileHandle } from 'node:fs/promises';
import { partSizeFor } from '../config.js';
import { FileChangedError, abortErrorFrom } from './errors.js';
import { runBounded } from './bounded-pool.js';
import { md5Of, multipartEtag } from './checksums.js';
import { OrderedHash, sha256OfFile } from './content-hash.js';
import { assertUnchanged, openVersion, readExactly } from './file-version.js';
import { completeMultipartUpload, uploadPart, type PartReceipt, type UploadTarget } from './multipart-api.js';
import { startMultipart, type MultipartStart } from './multipart-resume.js';
import { partLength, partNumbers, partOffset, planParts, type PartPlan } from './part-plan.js';
import type { TransferContext } from './s3-request.js';
import type { ResumeState, UploadJob, UploadProgressListener, UploadResult } from './types.js';

interface PartsOutcome {
  /** What S3 answered for every part, by part number. */
  receipts: Map<number, PartReceipt>;
  sha256: string;
  bytesSent: number;
  partsReused: number;
}

/**
 * Reads every part, hashes the content in order, and sends every part S3 does not hold yet, with at
 * most maxConcurrentParts in flight. A part counts as done only once `progress.partUploaded` has
 * returned (it is persisted). On a failure the parts in flight settle before the error is
 * rethrown; the upload itself is left for a later resume.
 */
async function sendParts(
  context: TransferContext,
  job: UploadJob,
  handle: FileHandle,
  plan: PartPlan,
  start: MultipartStart,
  progress: UploadProgressListener,
): Promise<PartsOutcome> {
  const target: UploadTarget = { bucket: job.bucket, key: job.key, uploadId: start.uploadId };
  const receipts = new Map<number, PartReceipt>(start.trusted.map((part) => [part.partNumber, part]));
  const outcome = { receipts, bytesSent: 0, partsReused: start.trusted.length };
  let confirmedBytes = start.trusted.reduce((sum, part) => sum + part.size, 0);
  progress.bytesUploaded(confirmedBytes);

  const content = new OrderedHash();
  await runBounded(partNumbers(plan), context.settings.maxConcurrentParts, async (partNumber) => {
    if (job.signal.aborted) throw abortErrorFrom(job.signal);
    const size = partLength(plan, partNumber);
    // Asked for before any await, so that this file's parts get their buffers in part order and
    // the part the hash waits for is never stuck behind a later one.
    const lease = context.buffers.lease(size, job.signal);
    lease.catch((error: unknown) => content.abandon(error));
    const { buffer: body, release } = await lease;
    try {
      await sendPart(partNumber, size, body);
    } finally {
      release();
    }
  });

  async function sendPart(partNumber: number, size: number, body: Buffer): Promise<void> {
    try {
      // A file deleted or changed meanwhile can still be read through the open handle: look at
      // the path before each part, so that no more parts of it are sent.
      if (!receipts.has(partNumber)) await assertUnchanged(job, 'while reading');
      await readExactly(handle, body, partOffset(plan, partNumber), job);
    } catch (error) {
      content.abandon(error);
      throw error;
    }
    await content.update(partNumber, body);
    if (receipts.has(partNumber)) return; // trusted: read only to hash the content
    const md5 = md5Of(body);
    let receipt: PartReceipt;
    if (start.unconfirmed.get(partNumber) === md5.hex) {
      receipt = { etag: md5.hex };
      outcome.partsReused++;
    } else {
      receipt = await uploadPart(context, target, partNumber, body, md5, job.signal);
      outcome.bytesSent += size;
    }
    await progress.partUploaded({ partNumber, etag: receipt.etag, size });
    receipts.set(partNumber, receipt);
    confirmedBytes += size;
    progress.bytesUploaded(confirmedBytes);
  }
  return { ...outcome, sha256: content.hash.digest('hex') };
}

export async function uploadMultipart(
  context: TransferContext,
  job: UploadJob,
  resume: ResumeState | undefined,
  progress: UploadProgressListener,
): Promise<UploadResult> {
  const plan = planParts(job.size, partSizeFor(job.size, context.settings.partSizeBytes));
  const handle = await openVersion(job);
  const version = { size: job.size, mtimeMs: job.mtimeMs, ino: job.ino, ctimeMs: job.ctimeMs };
  try {
    const start = await startMultipart(context, job, resume, plan, progress);
    if (start.completed) {
      // Completed before a crash: only the record is missing, and the content's hash.
      const sha256 = await sha256OfFile(handle, job.size);
      await assertUnchanged(job);
      if (sha256 === undefined) throw new FileChangedError(job.filePath, version, undefined, 'while reading');
      progress.bytesUploaded(job.size);
      return {
        ...start.completed,
        ...version,
        sha256,
        method: 'multipart',
        bytesSent: 0,
        bytesCopied: 0,
        partsReused: start.trusted.length,
      };
    }
    const { receipts, sha256, bytesSent, partsReused } = await sendParts(
      context,
      job,
      handle,
      plan,
      start,
      progress,
    );
    // The parts were cut from this version only if it is still there once the last byte is read.
    await assertUnchanged(job);
    const parts = [...partNumbers(plan)].map((partNumber) => {
      const receipt = receipts.get(partNumber);
      if (receipt === undefined) {
        throw new Error(`part ${partNumber} of ${plan.partCount} is missing before Complete`);
      }
      return receipt;
    });
    const target: UploadTarget = { bucket: job.bucket, key: job.key, uploadId: start.uploadId };
    const expectedEtag = multipartEtag(parts.map((part) => part.etag));
    const completed = await completeMultipartUpload(context, target, parts, expectedEtag, job.signal);
    return { ...completed, ...version, sha256, method: 'multipart', bytesSent, bytesCopied: 0, partsReused };
  } finally {
    await handle.close();
  }
}
