// A multipart upload that follows a file while it grows, and the append of new bytes to an object
// uploaded before. Parts of a fixed size are sent as soon as the file holds them; once the file has
// settled, the rest goes as the last part. An append starts with the old object's bytes, copied on
// the server (UploadPartCopy), so that only the new bytes cross the network.
//
// Only appends are followed. Before each part, and before completing, the file must still be the
// same file (inode), no shorter than what was read, with the same first bytes and the same bytes
// at the end of what was read; anything else aborts the upload and the file starts over. Fingerprints
// catch a rewrite early; what guarantees the result is the last step: when the file changed at all
// while it was read, it is read once more and its SHA-256 must equal that of the bytes sent.
import { createHash, type Hash } from 'node:crypto';
import type { Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { UploadedPart } from '../domain/model.js';
import { md5Of, multipartEtag, type Md5 } from './checksums.js';
import { hashRange, hexDigestSoFar, sha256OfFile } from './content-hash.js';
import { FileRewrittenError, ObjectTooLargeError, abortErrorFrom } from './errors.js';
import { openRegularFile, statPath } from './file-version.js';
import {
  CopySourceChangedError,
  abortMultipartUpload,
  completeMultipartUpload,
  createMultipartUpload,
  listUploadedParts,
  uploadPart,
  uploadPartCopy,
  type PartReceipt,
  type UploadTarget,
} from './multipart-api.js';
import { MAX_OBJECT_SIZE, MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE } from './part-plan.js';
import type { TransferContext } from './s3-request.js';
import type {
  PreviousUpload,
  ResumeState,
  FileTransfer,
  UploadProgressListener,
  UploadResult,
} from './types.js';

/** How often a file that is still being written is looked at. */
export const GROWTH_POLL_MS = 250;
/** Bytes compared at the start of the file and at the end of what was read, to notice a rewrite early. */
const FINGERPRINT_BYTES = 4096;

/** What to do when no saved upload can go on. */
export interface GrowingStart {
  /** The file is still being written: follow it from its first byte. */
  stream: boolean;
  /** The object already at the key, which the file may have grown from. */
  appendFrom: PreviousUpload | undefined;
  partSize: number;
}

/** The byte ranges of an object of `size` bytes that copy parts take: as few as S3 allows, ≤ 5 GiB each. */
export function copyRanges(size: number): { first: number; last: number }[] {
  const count = Math.ceil(size / MAX_PART_SIZE);
  const base = Math.floor(size / count);
  return Array.from({ length: count }, (_, index) => ({
    first: index * base,
    last: index === count - 1 ? size - 1 : (index + 1) * base - 1,
  }));
}

/** Whether a file of `size` bytes can be uploaded as `previous` plus appended parts of `partSize`. */
export function appendFits(previous: PreviousUpload, size: number, partSize: number): boolean {
  if (previous.size < MIN_PART_SIZE || size <= previous.size) return false;
  return copyRanges(previous.size).length + Math.ceil((size - previous.size) / partSize) <= MAX_PARTS;
}

/** Fills `buffer` from `position` as far as the file goes; returns how many bytes were read. */
async function readUpTo(handle: FileHandle, buffer: Buffer, position: number): Promise<number> {
  let filled = 0;
  while (filled < buffer.length) {
    const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled;
}

/** Two windows of the file: its first bytes and the last bytes before `end`. */
async function fingerprintAt(handle: FileHandle, end: number): Promise<string | undefined> {
  const head = Buffer.allocUnsafe(Math.min(FINGERPRINT_BYTES, end));
  const tail = Buffer.allocUnsafe(Math.min(FINGERPRINT_BYTES, end));
  const [headRead, tailRead] = await Promise.all([
    readUpTo(handle, head, 0),
    readUpTo(handle, tail, end - tail.length),
  ]);
  if (headRead < head.length || tailRead < tail.length) return undefined;
  return createHash('sha256').update(head).update(tail).digest('hex');
}

function sameFile(a: Stats, b: Stats): boolean {
  return a.ino === b.ino && a.dev === b.dev;
}

/**
 * Uploads the file as it grows (or as an append to `start.appendFrom`), going on with `resume`
 * when that is a streamed upload whose parts still match the file. Resolves undefined when there is
 * nothing to follow (no saved upload fits, the file is not growing, and it is not an append of the
 * old object): the caller then uploads the file the usual way.
 */
export async function uploadGrowing(
  context: TransferContext,
  transfer: FileTransfer,
  resume: ResumeState | undefined,
  progress: UploadProgressListener,
  start: GrowingStart,
): Promise<UploadResult | undefined> {
  const handle = await openRegularFile(transfer.filePath);
  try {
    const upload = new GrowingUpload(context, transfer, handle, progress, await handle.stat());
    if (!(await upload.begin(resume, start))) return undefined;
    return await upload.follow();
  } finally {
    await handle.close();
  }
}

class GrowingUpload {
  private s3UploadId = '';
  private partSize = 0;
  /** Receipts of the parts stored so far: parts[n - 1] is part n (parts in flight leave holes). */
  private readonly parts: PartReceipt[] = [];
  /** The number of the next part to start. */
  private nextPart = 1;
  /** Bytes of the file covered by the parts started so far (copied or read). */
  private offset = 0;
  /** SHA-256 of the file's bytes [0, offset), as they were read. */
  private content: Hash = createHash('sha256');
  private fingerprint: string | undefined;
  private copiedBytes = 0;
  private bytesSent = 0;
  private bytesCopied = 0;
  private partsReused = 0;
  private confirmedBytes = 0;
  private readonly inFlight = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;
  /** The file's modification time when this call first looked: unchanged at the end means nothing moved. */
  private readonly firstMtimeMs: number;
  /** The version last seen, and when (this clock) it was first seen: the settle check. */
  private seen: { size: number; mtimeMs: number; since: number } | undefined;

  constructor(
    private readonly context: TransferContext,
    private readonly transfer: FileTransfer,
    private readonly handle: FileHandle,
    private readonly progress: UploadProgressListener,
    private readonly opened: Stats,
  ) {
    this.firstMtimeMs = opened.mtimeMs;
  }

  private get target(): UploadTarget {
    return { bucket: this.transfer.bucket, key: this.transfer.key, s3UploadId: this.s3UploadId };
  }

  /** Forgets what a start that did not work out had set. */
  private reset(): void {
    this.parts.length = 0;
    this.nextPart = 1;
    this.offset = 0;
    this.copiedBytes = 0;
    this.bytesCopied = 0;
    this.partsReused = 0;
    this.confirmedBytes = 0;
    this.content = createHash('sha256');
  }

  /** Goes on with the saved upload, or starts one; false when there is nothing to follow. */
  async begin(resume: ResumeState | undefined, start: GrowingStart): Promise<boolean> {
    const tooLarge = this.opened.size > MAX_OBJECT_SIZE;
    if (resume) {
      if (!tooLarge && resume.streamed && (await this.resumeSaved(resume))) return true;
      this.reset();
      const target = { bucket: this.transfer.bucket, key: this.transfer.key, s3UploadId: resume.s3UploadId };
      this.context.logger.info(target, 'the saved multipart upload no longer matches the file; aborting it');
      await abortMultipartUpload(this.context, target, this.transfer.signal);
      await this.progress.multipartAborted();
    }
    if (tooLarge) throw new ObjectTooLargeError(this.transfer.filePath, this.opened.size);
    const previous = start.appendFrom;
    if (previous && appendFits(previous, this.opened.size, start.partSize)) {
      if (await this.beginAppend(previous, start.partSize)) return true;
    }
    if (!start.stream) return false;
    this.reset();
    await this.create(start.partSize, 0, null);
    this.fingerprint = await fingerprintAt(this.handle, 0);
    return true;
  }

  /**
   * Starts from the saved upload: its copied parts must all be on S3, its copied bytes must still
   * be the file's first bytes, and each full part S3 holds is kept while the file's bytes hash to
   * its ETag (read locally, never sent again). False when the file no longer matches it.
   */
  private async resumeSaved(saved: ResumeState): Promise<boolean> {
    this.s3UploadId = saved.s3UploadId;
    this.partSize = saved.partSize;
    const listed = await listUploadedParts(this.context, this.target, this.transfer.signal);
    if (!listed) return false;
    const byNumber = new Map(listed.map((part) => [part.partNumber, part]));
    const savedNumbers = new Set(saved.parts.map((part) => part.partNumber));
    if (saved.copiedBytes > 0) {
      const previous = this.transfer.previous;
      if (previous?.etag !== saved.copySourceEtag || previous.size !== saved.copiedBytes) return false;
      for (const [index, range] of copyRanges(saved.copiedBytes).entries()) {
        const part = byNumber.get(index + 1);
        if (part?.size !== range.last - range.first + 1) return false;
        this.parts.push(part);
      }
      if (!(await this.prefixMatches(previous))) return false;
      this.copiedBytes = saved.copiedBytes;
    }
    this.offset = saved.copiedBytes;
    const lease = await this.context.buffers.lease(saved.partSize, this.transfer.signal);
    try {
      if (!(await this.keepPartsStillOnDisk(byNumber, savedNumbers, lease.buffer))) return false;
    } finally {
      lease.release();
    }
    this.confirmedBytes = this.offset;
    this.nextPart = this.parts.length + 1;
    this.fingerprint = await fingerprintAt(this.handle, this.offset);
    this.context.logger.info(
      { ...this.target, partsReused: this.partsReused, bytes: this.offset },
      'resuming the upload of a growing file',
    );
    return true;
  }

  /** Whether the file's first previous.size bytes are the old object's content; they are hashed into `content`. */
  /** Keeps each full part S3 holds while the file's bytes there still hash to its ETag. */
  private async keepPartsStillOnDisk(
    byNumber: Map<number, UploadedPart>,
    savedNumbers: Set<number>,
    body: Buffer,
  ): Promise<boolean> {
    for (;;) {
      const partNumber = this.parts.length + 1;
      const part = byNumber.get(partNumber);
      if (part?.size !== body.length || this.offset + body.length > this.opened.size) return true;
      if ((await readUpTo(this.handle, body, this.offset)) < body.length) return false;
      // S3 holds other bytes than the file has there: the file was rewritten.
      if (md5Of(body).hex !== part.etag) return false;
      this.content.update(body);
      if (!savedNumbers.has(partNumber)) {
        await this.progress.partUploaded({ partNumber, etag: part.etag, size: part.size });
      }
      this.parts.push(part);
      this.offset += body.length;
      this.partsReused++;
    }
  }

  private async prefixMatches(previous: PreviousUpload): Promise<boolean> {
    const hash = createHash('sha256');
    const read = await hashRange(this.handle, hash, 0, previous.size, this.transfer.signal);
    if (!read || hexDigestSoFar(hash) !== previous.sha256) return false;
    this.content = hash;
    return true;
  }

  /** Copies the old object into the first parts of a new upload, when the file starts with it. */
  private async beginAppend(previous: PreviousUpload, partSize: number): Promise<boolean> {
    this.reset();
    if (!(await this.prefixMatches(previous))) {
      this.context.logger.info(
        { bucket: this.transfer.bucket, key: this.transfer.key },
        'the file no longer starts with the uploaded object; uploading it whole',
      );
      this.content = createHash('sha256');
      return false;
    }
    await this.create(partSize, previous.size, previous.etag);
    try {
      for (const [index, range] of copyRanges(previous.size).entries()) {
        const source = { key: this.transfer.key, etag: previous.etag, ...range };
        const receipt = await uploadPartCopy(
          this.context,
          this.target,
          index + 1,
          source,
          this.transfer.signal,
        );
        const size = range.last - range.first + 1;
        await this.progress.partUploaded({ partNumber: index + 1, etag: receipt.etag, size });
        this.parts.push(receipt);
        this.bytesCopied += size;
      }
    } catch (error) {
      if (!(error instanceof CopySourceChangedError)) throw error;
      this.context.logger.info(
        { ...this.target, err: error },
        'the object changed in S3; uploading the file whole',
      );
      await abortMultipartUpload(this.context, this.target, this.transfer.signal);
      await this.progress.multipartAborted();
      this.reset();
      return false;
    }
    this.nextPart = this.parts.length + 1;
    this.offset = previous.size;
    this.confirmedBytes = previous.size;
    this.fingerprint = await fingerprintAt(this.handle, this.offset);
    return true;
  }

  private async create(partSize: number, copiedBytes: number, copySourceEtag: string | null): Promise<void> {
    const target = { bucket: this.transfer.bucket, key: this.transfer.key };
    this.s3UploadId = await createMultipartUpload(this.context, target, this.transfer.signal);
    this.partSize = partSize;
    this.copiedBytes = copiedBytes;
    try {
      await this.progress.multipartCreated({
        s3UploadId: this.s3UploadId,
        partSize,
        streamed: true,
        copiedBytes,
        copySourceEtag,
      });
    } catch (error) {
      // Not saved means nobody could resume or abort it later: abort it now.
      await abortMultipartUpload(this.context, this.target, new AbortController().signal).catch(
        (abortError: unknown) =>
          this.context.logger.warn(
            { ...this.target, err: abortError },
            'could not abort an unsaved multipart upload',
          ),
      );
      throw error;
    }
  }

  /** Sends parts as the file grows until it settles; then the rest, a last check, and Complete. */
  async follow(): Promise<UploadResult> {
    try {
      return await this.followUntilSettled();
    } catch (error) {
      // The parts in flight settle (they stop with the transfer's signal) before the error goes up.
      await Promise.allSettled([...this.inFlight]);
      throw error;
    }
  }

  private async followUntilSettled(): Promise<UploadResult> {
    for (;;) {
      this.throwIfStopped();
      const stats = await this.look();
      await this.startFullParts(stats.size);
      this.progress.bytesUploaded(this.confirmedBytes, stats.size);
      if (this.settled(stats) && this.inFlight.size === 0 && !this.canStartPart(stats.size)) {
        const result = await this.finish(stats);
        if (result) return result;
        continue;
      }
      await Promise.race([
        sleep(GROWTH_POLL_MS, undefined, { signal: this.transfer.signal }),
        ...this.inFlight,
      ]);
    }
  }

  /** The file as it is now, after checking that it was only appended to since it was read. */
  private async look(): Promise<Stats> {
    const stats = await this.handle.stat();
    const atPath = await statPath(this.transfer.filePath);
    if (!sameFile(atPath, stats)) return this.startOver('replaced');
    if (stats.size < this.offset) return this.startOver('truncated');
    // Parts of a large STREAM_PART_SIZE_BYTES could carry it past what one object may hold.
    if (stats.size > MAX_OBJECT_SIZE)
      return this.giveUp(new ObjectTooLargeError(this.transfer.filePath, stats.size));
    const changed = stats.size !== this.seen?.size || stats.mtimeMs !== this.seen.mtimeMs;
    if (changed) {
      if ((await fingerprintAt(this.handle, this.offset)) !== this.fingerprint)
        return this.startOver('rewritten');
      this.seen = { size: stats.size, mtimeMs: stats.mtimeMs, since: Date.now() };
    }
    return stats;
  }

  /**
   * Settled: unchanged for settleMs, counted from its modification time or, when that is in the
   * future (another clock, a network share), from when this version was first seen.
   */
  private settled(stats: Stats): boolean {
    const since = Math.min(stats.mtimeMs, this.seen?.since ?? Date.now());
    return Date.now() >= since + this.transfer.settleMs;
  }

  /** A full part exists past what was read, and a part number is left for it (the last one is kept for the tail). */
  private canStartPart(size: number): boolean {
    return size - this.offset >= this.partSize && this.nextPart < MAX_PARTS;
  }

  /** Reads full parts in file order (hashing them as read) and sends them, up to maxConcurrentParts at once. */
  private async startFullParts(size: number): Promise<void> {
    while (this.inFlight.size < this.context.settings.maxConcurrentParts && this.canStartPart(size)) {
      this.throwIfStopped();
      const { buffer, release } = await this.context.buffers.lease(this.partSize, this.transfer.signal);
      let sending: Promise<void> | undefined;
      try {
        if ((await readUpTo(this.handle, buffer, this.offset)) < this.partSize)
          return await this.startOver('truncated');
        const partNumber = this.nextPart++;
        this.content.update(buffer);
        const md5 = md5Of(buffer);
        this.offset += this.partSize;
        this.fingerprint = await fingerprintAt(this.handle, this.offset);
        sending = this.send(partNumber, buffer, md5)
          .catch((error: unknown) => {
            this.failure ??= { error };
          })
          .finally(() => {
            this.inFlight.delete(sending!);
            release();
          });
        this.inFlight.add(sending);
      } finally {
        if (sending === undefined) release();
      }
    }
  }

  private async send(partNumber: number, body: Buffer, md5: Md5): Promise<void> {
    const receipt = await uploadPart(this.context, this.target, partNumber, body, md5, this.transfer.signal);
    this.bytesSent += body.length;
    await this.progress.partUploaded({ partNumber, etag: receipt.etag, size: body.length });
    this.parts[partNumber - 1] = receipt;
    this.confirmedBytes += body.length;
  }

  private throwIfStopped(): void {
    if (this.transfer.signal.aborted) throw abortErrorFrom(this.transfer.signal);
    if (this.failure) throw this.failure.error;
  }

  /**
   * The file has settled and every full part is on S3: the rest goes as the last part. When the
   * file moved meanwhile, that part is forgotten (it is sent again, longer) and undefined returned.
   */
  private async finish(stats: Stats): Promise<UploadResult | undefined> {
    const tailSize = stats.size - this.offset;
    if (tailSize > this.partSize) return this.startOver('outgrown');
    const beforeTail = this.content.copy();
    let tail: UploadedPart | undefined;
    if (tailSize > 0 || this.nextPart === 1) {
      tail = { partNumber: this.nextPart, etag: '', size: tailSize };
      if (!(await this.sendTail(tail))) return undefined;
    }
    const sha256 = hexDigestSoFar(this.content);
    const forgetTail = (): undefined => {
      if (tail) this.parts.length = tail.partNumber - 1;
      this.content = beforeTail;
      return undefined;
    };
    if (!(await this.unchangedSince(stats))) return forgetTail();
    if (stats.mtimeMs !== this.firstMtimeMs) {
      // Read while it changed: what is on disk now must be exactly what was sent.
      const onDisk = await sha256OfFile(this.handle, stats.size, this.transfer.signal);
      if (onDisk !== sha256) return this.startOver('rewritten');
      if (!(await this.unchangedSince(stats))) return forgetTail();
    }
    const expectedEtag = multipartEtag(this.parts.map((part) => part.etag));
    const completed = await completeMultipartUpload(
      this.context,
      this.target,
      this.parts,
      expectedEtag,
      this.transfer.signal,
    );
    this.progress.bytesUploaded(stats.size, stats.size);
    return {
      ...completed,
      sha256,
      size: stats.size,
      mtimeMs: stats.mtimeMs,
      ino: stats.ino,
      ctimeMs: stats.ctimeMs,
      method: this.copiedBytes > 0 ? 'append' : 'streamed',
      bytesSent: this.bytesSent,
      bytesCopied: this.bytesCopied,
      partsReused: this.partsReused,
    };
  }

  /** Reads and sends the last part; false when the file is shorter now (the next look decides). */
  private async sendTail(tail: UploadedPart): Promise<boolean> {
    const { buffer: body, release } = await this.context.buffers.lease(tail.size, this.transfer.signal);
    try {
      if ((await readUpTo(this.handle, body, this.offset)) < tail.size) return false;
      this.content.update(body);
      const md5 = md5Of(body);
      const receipt = await uploadPart(
        this.context,
        this.target,
        tail.partNumber,
        body,
        md5,
        this.transfer.signal,
      );
      this.bytesSent += tail.size;
      await this.progress.partUploaded({ ...tail, etag: receipt.etag });
      this.parts[tail.partNumber - 1] = receipt;
      return true;
    } finally {
      release();
    }
  }

  private async unchangedSince(stats: Stats): Promise<boolean> {
    const now = await this.handle.stat();
    const atPath = await statPath(this.transfer.filePath);
    return sameFile(atPath, stats) && now.size === stats.size && now.mtimeMs === stats.mtimeMs;
  }

  /** Not an append after all: the parts in flight settle, the upload is aborted and forgotten. */
  private async startOver(how: FileRewrittenError['how']): Promise<never> {
    return this.giveUp(new FileRewrittenError(this.transfer.filePath, how), how);
  }

  /** The parts in flight settle, the upload is aborted and forgotten, and `error` is thrown. */
  private async giveUp(error: Error, reason: string = error.name): Promise<never> {
    await Promise.allSettled([...this.inFlight]);
    this.context.logger.info({ ...this.target, reason }, error.message);
    await abortMultipartUpload(this.context, this.target, this.transfer.signal);
    await this.progress.multipartAborted();
    throw error;
  }
}
