// The parts of a settled file at or above the multipart threshold: a fixed plan. Each part is read
// into a Buffer with a positioned read (the SDK frames a stream body aws-chunked, which breaks
// servers), hashed, and sent with Content-MD5, at most maxConcurrentParts at once. Memory: each
// part's buffer is leased from the process's pool (MAX_BUFFER_BYTES). A part larger than the whole
// pool is read and sent in pieces instead, its digests computed beforehand (part-pieces.ts).
import type { FileHandle } from 'node:fs/promises';
import { runBounded } from '../bounded-pool.js';
import { md5Of, runningChecksum, type Md5 } from '../checksums.js';
import { sha256OfFile } from '../content-hash.js';
import { FileChangedError, abortErrorFrom } from '../errors.js';
import { assertUnchanged, openVersion, readExactly } from '../file-version.js';
import type { StreamedPart } from '../multipart-api.js';
import type { MultipartUpload } from '../multipart-upload.js';
import { hashPart, piecesLeaseBytes } from '../part-pieces.js';
import { partLength, partNumbers, partOffset, partSizeFor, planParts, type PartPlan } from '../part-plan.js';
import type { TransferContext } from '../s3-request.js';
import type { FileTransfer, ResumeState, UploadProgressListener, UploadResult } from '../types.js';
import { startPlanned } from './planned-start.js';

export async function uploadPlanned(
  context: TransferContext,
  transfer: FileTransfer,
  resume: ResumeState | undefined,
  progress: UploadProgressListener,
): Promise<UploadResult> {
  const plan = planParts(transfer.size, partSizeFor(transfer.size, context.settings.partSizeBytes));
  const handle = await openVersion(transfer);
  const { size, mtimeMs, ino, ctimeMs } = transfer;
  const version = { size, mtimeMs, ino, ctimeMs };
  try {
    const start = await startPlanned(context, transfer, resume, plan, progress);
    if (start.kind === 'completed') {
      // Completed before a crash: only the record is missing, and the content's hash.
      const sha256 = await sha256OfFile(handle, size);
      await assertUnchanged(transfer);
      if (sha256 === undefined)
        throw new FileChangedError(transfer.filePath, version, undefined, 'while reading');
      progress.bytesUploaded(size);
      const { partsReused } = start;
      return {
        ...start.completed,
        ...version,
        sha256,
        method: 'multipart',
        bytesSent: 0,
        bytesCopied: 0,
        partsReused,
      };
    }
    const { upload } = start;
    await new PlannedParts(context, transfer, handle, plan, upload, start.unconfirmed, progress).send();
    const sha256 = upload.content.digestSoFar();
    // The parts were cut from this version only if it is still there once the last byte is read.
    await assertUnchanged(transfer);
    const completed = await upload.complete(plan.partCount);
    return { ...completed, ...version, sha256, method: 'multipart', ...upload.tally };
  } finally {
    await handle.close();
  }
}

/**
 * Reads every part, feeds the content hash in order, and sends every part the upload does not hold
 * yet. On a failure the parts in flight settle before the error is rethrown; the upload itself is
 * left for a later resume.
 */
class PlannedParts {
  constructor(
    private readonly context: TransferContext,
    private readonly transfer: FileTransfer,
    private readonly handle: FileHandle,
    private readonly plan: PartPlan,
    private readonly upload: MultipartUpload,
    private readonly unconfirmed: Map<number, string>,
    private readonly progress: UploadProgressListener,
  ) {}

  async send(): Promise<void> {
    const { buffers, settings } = this.context;
    this.progress.bytesUploaded(this.upload.confirmedBytes);
    await runBounded(partNumbers(this.plan), settings.maxConcurrentParts, async (partNumber) => {
      const { signal } = this.transfer;
      if (signal.aborted) throw abortErrorFrom(signal);
      const size = partLength(this.plan, partNumber);
      const inPieces = size > buffers.capacityBytes;
      // Asked for before any await, so that this file's parts get their buffers in part order and
      // the part the hash waits for is never stuck behind a later one.
      const lease = buffers.lease(inPieces ? piecesLeaseBytes(buffers) : size, signal);
      lease.catch((error: unknown) => this.upload.content.abandon(error));
      const { buffer, release } = await lease;
      try {
        if (inPieces) await this.sendInPieces(partNumber, size, buffer);
        else await this.sendWhole(partNumber, size, buffer);
      } finally {
        release();
      }
    });
  }

  private async sendWhole(partNumber: number, size: number, body: Buffer): Promise<void> {
    const { content } = this.upload;
    try {
      await this.assertStillThere(partNumber);
      await readExactly(this.handle, body, partOffset(this.plan, partNumber), this.transfer);
    } catch (error) {
      content.abandon(error);
      throw error;
    }
    await content.update(partNumber, body);
    if (this.upload.has(partNumber)) return; // kept: read only to hash the content
    const md5 = md5Of(body);
    await this.store(partNumber, size, md5, () => this.upload.send(partNumber, body, md5));
  }

  private async sendInPieces(partNumber: number, size: number, pieces: Buffer): Promise<void> {
    const { content } = this.upload;
    let part: StreamedPart;
    try {
      await this.assertStillThere(partNumber);
      const range = { offset: partOffset(this.plan, partNumber), size };
      const partChecksum = this.upload.has(partNumber)
        ? undefined
        : runningChecksum(this.context.settings.checksumAlgorithm, await this.checksumsWhenSupported());
      part = await content.updateFrom(partNumber, (hash) =>
        hashPart(this.handle, this.transfer, range, pieces, hash, partChecksum),
      );
    } catch (error) {
      content.abandon(error);
      throw error;
    }
    if (this.upload.has(partNumber)) return; // kept: read only to hash the content
    await this.store(partNumber, size, part.md5, () => this.upload.sendInPieces(partNumber, part));
  }

  /**
   * A file deleted or changed meanwhile can still be read through the open handle: look at the
   * path before each part, so that no more parts of it are sent.
   */
  private async assertStillThere(partNumber: number): Promise<void> {
    if (!this.upload.has(partNumber)) await assertUnchanged(this.transfer, 'while reading');
  }

  /** Sends the part unless S3 already holds these bytes (an unconfirmed part, then kept). */
  private async store(partNumber: number, size: number, md5: Md5, send: () => Promise<void>): Promise<void> {
    if (this.unconfirmed.get(partNumber) === md5.hex) {
      await this.upload.keep({ partNumber, etag: md5.hex, size }, 'unsaved');
    } else {
      await send();
    }
    this.progress.bytesUploaded(this.upload.confirmedBytes);
  }

  /** Whether the client adds a checksum to every request that supports one (S3_CHECKSUM_MODE). */
  private async checksumsWhenSupported(): Promise<boolean> {
    return (await this.context.client.config.requestChecksumCalculation()) === 'WHEN_SUPPORTED';
  }
}
