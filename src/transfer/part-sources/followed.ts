// The parts of a file that is still written: parts of a fixed size are read in file order as soon as
// the file holds them, and sent up to maxConcurrentParts at once; once the file has settled, the
// rest goes as the last part. What guarantees the result is the last step: when the file changed
// at all while it was read, it is read once more and its SHA-256 must equal that of the bytes sent.
// A file that is not only appended to (growing-file.ts) aborts the upload, and starts over.
import type { Stats } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { runBounded } from '../bounded-pool.js';
import { md5Of, type Md5 } from '../checksums.js';
import { sha256OfFile } from '../content-hash.js';
import { FileRewrittenError, ObjectTooLargeError, abortErrorFrom } from '../errors.js';
import type { MultipartUpload } from '../multipart-upload.js';
import { MAX_PARTS } from '../part-plan.js';
import type { TransferContext } from '../s3-request.js';
import type { FileTransfer, UploadProgressListener, UploadResult } from '../types.js';
import type { GrowingFile } from './growing-file.js';

/** How often a file that is still being written is looked at. */
export const GROWTH_POLL_MS = 250;

/** Where following a file begins. */
export interface FollowedStart {
  upload: MultipartUpload;
  partSize: number;
  /** Bytes of the file the upload's parts hold already (copied, or kept at resume). */
  offset: number;
  /** 'append' when the upload starts with the old object's bytes, copied. */
  method: 'streamed' | 'append';
}

/** A full part read from the file, in a leased buffer, waiting to be sent. */
interface ReadPart {
  partNumber: number;
  body: Buffer;
  md5: Md5;
  release: () => void;
}

/**
 * Sends the file's parts as it grows until it settles, then the rest, a last check, and Complete.
 * When the file turns out not to be an append (or grows past 5 TiB), the parts in flight settle,
 * the upload is aborted and forgotten, and the error is thrown.
 */
export async function followFile(
  context: TransferContext,
  transfer: FileTransfer,
  file: GrowingFile,
  start: FollowedStart,
  progress: UploadProgressListener,
): Promise<UploadResult> {
  try {
    return await new Follower(context, transfer, file, start, progress).follow();
  } catch (error) {
    if (error instanceof FileRewrittenError || error instanceof ObjectTooLargeError) {
      const reason = error instanceof FileRewrittenError ? error.how : error.name;
      context.logger.info({ ...start.upload.target, reason }, error.message);
      await start.upload.abort();
    }
    throw error;
  }
}

class Follower {
  private readonly upload: MultipartUpload;
  private readonly partSize: number;
  /** Bytes of the file covered by the parts started so far (copied or read). */
  private offset: number;
  /** The number of the next part to start. */
  private nextPart: number;

  constructor(
    private readonly context: TransferContext,
    private readonly transfer: FileTransfer,
    private readonly file: GrowingFile,
    private readonly start: FollowedStart,
    private readonly progress: UploadProgressListener,
  ) {
    this.upload = start.upload;
    this.partSize = start.partSize;
    this.offset = start.offset;
    this.nextPart = start.upload.partCount + 1;
  }

  async follow(): Promise<UploadResult> {
    for (;;) {
      await this.sendFullParts();
      // Every full part is stored: the file must still be settled, with no full part left.
      const stats = await this.look();
      if (!this.file.settled(stats) || this.canStartPart(stats.size)) continue;
      const result = await this.finish(stats);
      if (result !== 'moved') return result;
    }
  }

  /** Sends full parts as the file holds them, until it has settled with no full part left. */
  private async sendFullParts(): Promise<void> {
    // A part that fails stops the reading, which may be waiting for the file to grow.
    const failed = new AbortController();
    await runBounded(
      this.fullParts(failed.signal),
      this.context.settings.maxConcurrentParts,
      async (part) => {
        try {
          await this.upload.send(part.partNumber, part.body, part.md5);
        } catch (error) {
          failed.abort(error);
          throw error;
        } finally {
          part.release();
        }
      },
    );
  }

  /** Full parts in file order, each read and hashed once; ends once the file has settled. */
  private async *fullParts(failed: AbortSignal): AsyncGenerator<ReadPart> {
    const signal = AbortSignal.any([this.transfer.signal, failed]);
    try {
      for (;;) {
        if (signal.aborted) throw abortErrorFrom(signal);
        const stats = await this.look();
        if (this.canStartPart(stats.size)) yield await this.readPart(signal);
        else if (this.file.settled(stats)) return;
        else await sleep(GROWTH_POLL_MS, undefined, { signal });
      }
    } catch (error) {
      // Stopped by a part that failed: that part's error is the one that goes up.
      if (failed.aborted && !this.transfer.signal.aborted) return;
      throw error;
    }
  }

  /** The file as it is now (only appended to), with the progress so far. */
  private async look(): Promise<Stats> {
    const stats = await this.file.look(this.offset);
    this.progress.bytesUploaded(this.upload.confirmedBytes, stats.size);
    return stats;
  }

  /** A full part exists past what was read, and a part number is left for it (the last one is kept for the tail). */
  private canStartPart(size: number): boolean {
    return size - this.offset >= this.partSize && this.nextPart < MAX_PARTS;
  }

  private async readPart(signal: AbortSignal): Promise<ReadPart> {
    const { buffer: body, release } = await this.context.buffers.lease(this.partSize, signal);
    try {
      if ((await this.file.read(body, this.offset)) < this.partSize)
        throw new FileRewrittenError(this.file.filePath, 'truncated');
      const partNumber = this.nextPart++;
      await this.upload.content.update(partNumber, body);
      this.offset += this.partSize;
      await this.file.markRead(this.offset);
      return { partNumber, body, md5: md5Of(body), release };
    } catch (error) {
      release();
      throw error;
    }
  }

  /**
   * The file has settled and every full part is on S3: the rest goes as the last part. When the
   * file moved meanwhile, that part is forgotten (it is sent again, longer): 'moved'.
   */
  private async finish(stats: Stats): Promise<UploadResult | 'moved'> {
    const tailSize = stats.size - this.offset;
    if (tailSize > this.partSize) throw new FileRewrittenError(this.file.filePath, 'outgrown');
    const { content } = this.upload;
    const beforeTail = content.mark();
    const hasTail = tailSize > 0 || this.nextPart === 1;
    if (hasTail && !(await this.sendTail(tailSize))) return 'moved';
    const sha256 = content.digestSoFar();
    const forgetTail = (): 'moved' => {
      if (hasTail) this.upload.forget(this.nextPart);
      content.rewind(beforeTail);
      return 'moved';
    };
    if (!(await this.file.unchangedSince(stats))) return forgetTail();
    if (stats.mtimeMs !== this.file.opened.mtimeMs) {
      // Read while it changed: what is on disk now must be exactly what was sent.
      const onDisk = await sha256OfFile(this.file.handle, stats.size, this.transfer.signal);
      if (onDisk !== sha256) throw new FileRewrittenError(this.file.filePath, 'rewritten');
      if (!(await this.file.unchangedSince(stats))) return forgetTail();
    }
    const completed = await this.upload.complete(hasTail ? this.nextPart : this.nextPart - 1);
    this.progress.bytesUploaded(stats.size, stats.size);
    const { size, mtimeMs, ino, ctimeMs } = stats;
    return {
      ...completed,
      sha256,
      size,
      mtimeMs,
      ino,
      ctimeMs,
      method: this.start.method,
      ...this.upload.tally,
    };
  }

  /** Reads and sends the last part; false when the file is shorter now (the next look decides). */
  private async sendTail(size: number): Promise<boolean> {
    const { buffer: body, release } = await this.context.buffers.lease(size, this.transfer.signal);
    try {
      if ((await this.file.read(body, this.offset)) < size) return false;
      await this.upload.content.update(this.nextPart, body);
      await this.upload.send(this.nextPart, body, md5Of(body));
      return true;
    } finally {
      release();
    }
  }
}
