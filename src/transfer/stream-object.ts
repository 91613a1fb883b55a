// An object written from a stream of bytes whose length is not known beforehand (a manifest built
// page by page from the database). The bytes are gathered into part-sized buffers leased from the
// process's pool: a stream that ends within the first buffer is one PutObject, a longer one a
// multipart upload, aborted when anything fails before it is completed. Memory: at most two
// buffers, the part being sent while the next one fills (one part in flight, no more).
import { createHash } from 'node:crypto';
import type { ValidationMethod } from '../domain/model.js';
import type { ObjectProperties } from '../domain/object-properties.js';
import type { BufferLease } from './buffer-pool.js';
import { md5Of, multipartEtag } from './checksums.js';
import { abortErrorFrom } from './errors.js';
import {
  abortMultipartUpload,
  completeMultipartUpload,
  createMultipartUpload,
  uploadPart,
  type PartReceipt,
  type UploadTarget,
} from './multipart-api.js';
import { objectHeadersOf } from './object-headers.js';
import { putObject } from './single-put.js';
import { MAX_PARTS, MAX_PART_SIZE, MIN_PART_SIZE } from './part-plan.js';
import type { TransferContext } from './s3-request.js';

/** Where the object goes, and what it carries besides its bytes (as an uploaded file's object does). */
export interface ObjectTarget {
  bucket: string;
  key: string;
  objectProperties: ObjectProperties;
}

export interface StreamObjectOptions {
  /** Bytes per part, from 5 MiB to 5 GiB; default the configured part size (PART_SIZE_BYTES). */
  partSize?: number;
}

export interface WrittenObject {
  /** The ETag S3 returned, with its quotes stripped (checked against the content's MD5s). */
  etag: string;
  validation: ValidationMethod;
  /** Hex SHA-256 of every byte written. */
  sha256: string;
  size: number;
  /** Parts of its multipart upload; 0 when it was written with one PutObject. */
  parts: number;
}

/** A source's chunk: bytes, or text written as UTF-8. */
export type ObjectChunk = Buffer | string;

/**
 * Writes the bytes of `chunks`, in order, to target.bucket/target.key. A stream of at most one part
 * is one PutObject with Content-MD5 and the object headers, its SHA-256 metadata included (as for an
 * uploaded file); a longer one a multipart upload (created without the SHA-256, not known yet), each
 * full part sent with Content-MD5 while the next fills, then the last, shorter one, and Complete.
 * Every request is retried and its ETag checked as for uploaded files. When the source throws, a
 * request fails for good, or `signal` aborts (seen between chunks, and by the request in flight),
 * a multipart upload already created is aborted (best effort, logged) and the error rethrown as it
 * was: an S3RequestError keeps its kind (transient or permanent), an abort rejects with an AbortError.
 * Request bodies go through the client's bandwidth limit, as every part and small file does.
 */
export async function streamObject(
  context: TransferContext,
  target: ObjectTarget,
  chunks: AsyncIterable<ObjectChunk>,
  signal: AbortSignal,
  options: StreamObjectOptions = {},
): Promise<WrittenObject> {
  const partSize = partSizeOf(options.partSize ?? context.settings.partSizeBytes);
  const content = createHash('sha256');
  let size = 0;
  let filling = await context.buffers.lease(partSize, signal);
  let filled = 0;
  let parts: StreamedParts | undefined;
  try {
    for await (const chunk of chunks) {
      if (signal.aborted) throw abortErrorFrom(signal);
      parts?.throwIfFailed();
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
      content.update(bytes);
      size += bytes.length;
      for (let offset = 0; offset < bytes.length;) {
        // A full buffer is sent once more bytes come: the last part is never empty, and a stream of
        // exactly one part stays one PutObject.
        if (filled === partSize) {
          parts ??= await StreamedParts.create(context, target, signal);
          // The part's request releases its lease (the release in `finally` then does nothing).
          await parts.send(filling);
          filling = await context.buffers.lease(partSize, signal);
          filled = 0;
        }
        const copied = bytes.copy(filling.buffer, filled, offset);
        filled += copied;
        offset += copied;
      }
    }
    if (signal.aborted) throw abortErrorFrom(signal);
    const last = filling.buffer.subarray(0, filled);
    const sha256 = content.digest('hex');
    if (parts === undefined) {
      const stored = await putObject(context, target, last, sha256, signal);
      return { ...stored, sha256, size, parts: 0 };
    }
    const completed = await parts.complete(last);
    return { ...completed, sha256, size, parts: parts.count };
  } catch (error) {
    await parts?.abort();
    throw error;
  } finally {
    filling.release();
  }
}

function partSizeOf(partSize: number): number {
  if (!Number.isSafeInteger(partSize) || partSize < MIN_PART_SIZE || partSize > MAX_PART_SIZE) {
    throw new RangeError(
      `a part size must be a whole number of bytes from ${MIN_PART_SIZE} to ${MAX_PART_SIZE}, not ${partSize}`,
    );
  }
  return partSize;
}

/**
 * The multipart upload of a stream: its parts sent one at a time, each while the caller fills the
 * next buffer. A part's buffer goes back to the pool as soon as its request is over, so that a pool
 * too small for two parts lets the next buffer be leased then (the parts are then not overlapped).
 */
class StreamedParts {
  private readonly receipts: PartReceipt[] = [];
  private inFlight: Promise<void> | undefined;
  private failure: { error: unknown } | undefined;
  private completed = false;

  private constructor(
    private readonly context: TransferContext,
    private readonly target: UploadTarget,
    private readonly signal: AbortSignal,
  ) {}

  static async create(
    context: TransferContext,
    target: ObjectTarget,
    signal: AbortSignal,
  ): Promise<StreamedParts> {
    const at = { bucket: target.bucket, key: target.key };
    const headers = objectHeadersOf(target.key, target.objectProperties);
    const s3UploadId = await createMultipartUpload(context, at, headers, signal);
    return new StreamedParts(context, { ...at, s3UploadId }, signal);
  }

  /** Parts sent or being sent. */
  get count(): number {
    return this.receipts.length + (this.inFlight === undefined ? 0 : 1);
  }

  /** A part sent in the background failed: the stream stops at its next chunk rather than its next part. */
  throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }

  /** Starts sending a full part once the one before is stored; the lease is released when it is over. */
  async send(lease: BufferLease): Promise<void> {
    await this.settle();
    const partNumber = this.receipts.length + 1;
    if (partNumber > MAX_PARTS - 1) {
      lease.release();
      throw new Error(
        `s3://${this.target.bucket}/${this.target.key} would need more than ${MAX_PARTS} parts of ${lease.buffer.length} bytes: write it with a larger part size`,
      );
    }
    const sent = this.upload(partNumber, lease.buffer).finally(() => lease.release());
    // Awaited by the next send or by complete(); meanwhile a failure is kept, not left unhandled.
    sent.catch((error: unknown) => (this.failure ??= { error }));
    this.inFlight = sent;
  }

  /** Sends the last part (not empty) once the one before is stored, then completes the upload. */
  async complete(last: Buffer): Promise<{ etag: string; validation: ValidationMethod }> {
    await this.settle();
    await this.upload(this.receipts.length + 1, last);
    const expectedEtag = multipartEtag(this.receipts.map((receipt) => receipt.etag));
    const completed = await completeMultipartUpload(
      this.context,
      this.target,
      this.receipts,
      expectedEtag,
      this.signal,
    );
    this.completed = true;
    return completed;
  }

  /**
   * Aborts the upload unless it was completed, once no part is in flight. Best effort: it runs even
   * when the transfer's signal has aborted, and a failure is logged, not thrown (the orphan sweep
   * of a later start finds what is left).
   */
  async abort(): Promise<void> {
    if (this.completed) return;
    await this.inFlight?.catch(() => undefined);
    try {
      await abortMultipartUpload(this.context, this.target, new AbortController().signal);
      this.context.logger.debug({ ...this.target }, 'aborted the multipart upload of a streamed object');
    } catch (error) {
      this.context.logger.warn(
        { ...this.target, err: error },
        'could not abort the multipart upload of a streamed object',
      );
    }
  }

  private async settle(): Promise<void> {
    const inFlight = this.inFlight;
    this.inFlight = undefined;
    await inFlight;
  }

  private async upload(partNumber: number, body: Buffer): Promise<void> {
    const md5 = md5Of(body);
    const receipt = await uploadPart(this.context, this.target, partNumber, body, md5, this.signal);
    this.receipts[partNumber - 1] = receipt;
  }
}
