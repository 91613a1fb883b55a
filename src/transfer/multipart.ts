// Files at or above the multipart threshold that have settled. Each part is read into a Buffer with
// a positioned read (the SDK frames a stream body aws-chunked, which breaks servers), hashed, sent
// with Content-MD5 and checked. Memory: each part's buffer is leased from the process's pool
// (MAX_BUFFER_BYTES), at most maxConcurrentParts of them per file. A part larger than the whole
// pool is read and sent in pieces instead, its digests computed beforehand (part-pieces.ts).
import type { FileHandle } from 'node:fs/promises';
import { FileChangedError, abortErrorFrom } from './errors.js';
import { runBounded } from './bounded-pool.js';
import { md5Of, multipartEtag, runningChecksum, type Md5 } from './checksums.js';
import { OrderedHash, sha256OfFile } from './content-hash.js';
import { assertUnchanged, openVersion, readExactly } from './file-version.js';
import {
  completeMultipartUpload,
  uploadPart,
  uploadPartStreamed,
  type PartReceipt,
  type StreamedPart,
  type UploadTarget,
} from './multipart-api.js';
import { startMultipart, type MultipartStart } from './multipart-resume.js';
import { hashPart, piecesLeaseBytes } from './part-pieces.js';
import { partLength, partNumbers, partOffset, partSizeFor, planParts, type PartPlan } from './part-plan.js';
import type { TransferContext } from './s3-request.js';
import type { ResumeState, FileTransfer, UploadProgressListener, UploadResult } from './types.js';

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
  transfer: FileTransfer,
  handle: FileHandle,
  plan: PartPlan,
  start: MultipartStart,
  progress: UploadProgressListener,
): Promise<PartsOutcome> {
  const target: UploadTarget = { bucket: transfer.bucket, key: transfer.key, s3UploadId: start.s3UploadId };
  const receipts = new Map<number, PartReceipt>(start.trusted.map((part) => [part.partNumber, part]));
  const outcome = { receipts, bytesSent: 0, partsReused: start.trusted.length };
  let confirmedBytes = start.trusted.reduce((sum, part) => sum + part.size, 0);
  progress.bytesUploaded(confirmedBytes);

  const content = new OrderedHash();
  await runBounded(partNumbers(plan), context.settings.maxConcurrentParts, async (partNumber) => {
    if (transfer.signal.aborted) throw abortErrorFrom(transfer.signal);
    const size = partLength(plan, partNumber);
    const inPieces = size > context.buffers.capacityBytes;
    // Asked for before any await, so that this file's parts get their buffers in part order and
    // the part the hash waits for is never stuck behind a later one.
    const lease = context.buffers.lease(inPieces ? piecesLeaseBytes(context.buffers) : size, transfer.signal);
    lease.catch((error: unknown) => content.abandon(error));
    const { buffer, release } = await lease;
    try {
      await (inPieces ? sendPartInPieces : sendPart)(partNumber, size, buffer);
    } finally {
      release();
    }
  });

  async function sendPart(partNumber: number, size: number, body: Buffer): Promise<void> {
    try {
      await assertStillThere(partNumber);
      await readExactly(handle, body, partOffset(plan, partNumber), transfer);
    } catch (error) {
      content.abandon(error);
      throw error;
    }
    await content.update(partNumber, body);
    if (receipts.has(partNumber)) return; // trusted: read only to hash the content
    await record(partNumber, size, md5Of(body), (md5) =>
      uploadPart(context, target, partNumber, body, md5, transfer.signal),
    );
  }

  async function sendPartInPieces(partNumber: number, size: number, pieces: Buffer): Promise<void> {
    let part: StreamedPart;
    try {
      await assertStillThere(partNumber);
      const range = { offset: partOffset(plan, partNumber), size };
      const { checksumAlgorithm } = context.settings;
      const partChecksum = receipts.has(partNumber)
        ? undefined
        : runningChecksum(checksumAlgorithm, await checksumsWhenSupported(context));
      part = await content.updateFrom(partNumber, (hash) =>
        hashPart(handle, transfer, range, pieces, hash, partChecksum),
      );
    } catch (error) {
      content.abandon(error);
      throw error;
    }
    if (receipts.has(partNumber)) return; // trusted: read only to hash the content
    await record(partNumber, size, part.md5, () =>
      uploadPartStreamed(context, target, partNumber, part, transfer.signal),
    );
  }

  /**
   * A file deleted or changed meanwhile can still be read through the open handle: look at the
   * path before each part, so that no more parts of it are sent.
   */
  async function assertStillThere(partNumber: number): Promise<void> {
    if (!receipts.has(partNumber)) await assertUnchanged(transfer, 'while reading');
  }

  /** Sends the part unless S3 already holds these bytes, and persists its receipt. */
  async function record(
    partNumber: number,
    size: number,
    md5: Md5,
    send: (md5: Md5) => Promise<PartReceipt>,
  ): Promise<void> {
    let receipt: PartReceipt;
    if (start.unconfirmed.get(partNumber) === md5.hex) {
      receipt = { etag: md5.hex };
      outcome.partsReused++;
    } else {
      receipt = await send(md5);
      outcome.bytesSent += size;
    }
    await progress.partUploaded({ partNumber, etag: receipt.etag, size });
    receipts.set(partNumber, receipt);
    confirmedBytes += size;
    progress.bytesUploaded(confirmedBytes);
  }
  return { ...outcome, sha256: content.hash.digest('hex') };
}

/** Whether the client adds a checksum to every request that supports one (S3_CHECKSUM_MODE). */
async function checksumsWhenSupported(context: TransferContext): Promise<boolean> {
  return (await context.client.config.requestChecksumCalculation()) === 'WHEN_SUPPORTED';
}

export async function uploadMultipart(
  context: TransferContext,
  transfer: FileTransfer,
  resume: ResumeState | undefined,
  progress: UploadProgressListener,
): Promise<UploadResult> {
  const plan = planParts(transfer.size, partSizeFor(transfer.size, context.settings.partSizeBytes));
  const handle = await openVersion(transfer);
  const version = {
    size: transfer.size,
    mtimeMs: transfer.mtimeMs,
    ino: transfer.ino,
    ctimeMs: transfer.ctimeMs,
  };
  try {
    const start = await startMultipart(context, transfer, resume, plan, progress);
    if (start.completed) {
      // Completed before a crash: only the record is missing, and the content's hash.
      const sha256 = await sha256OfFile(handle, transfer.size);
      await assertUnchanged(transfer);
      if (sha256 === undefined)
        throw new FileChangedError(transfer.filePath, version, undefined, 'while reading');
      progress.bytesUploaded(transfer.size);
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
      transfer,
      handle,
      plan,
      start,
      progress,
    );
    // The parts were cut from this version only if it is still there once the last byte is read.
    await assertUnchanged(transfer);
    const parts = [...partNumbers(plan)].map((partNumber) => {
      const receipt = receipts.get(partNumber);
      if (receipt === undefined) {
        throw new Error(`part ${partNumber} of ${plan.partCount} is missing before Complete`);
      }
      return receipt;
    });
    const target: UploadTarget = { bucket: transfer.bucket, key: transfer.key, s3UploadId: start.s3UploadId };
    const expectedEtag = multipartEtag(parts.map((part) => part.etag));
    const completed = await completeMultipartUpload(context, target, parts, expectedEtag, transfer.signal);
    return { ...completed, ...version, sha256, method: 'multipart', bytesSent, bytesCopied: 0, partsReused };
  } finally {
    await handle.close();
  }
}
