// The copied prefix of an append: a completed file that grew starts its new upload with the old
// object's bytes, copied on the server (UploadPartCopy), so that only the new bytes cross the
// network. The file's first bytes must still be the old object's content (its SHA-256), and the
// object must still be the one uploaded (its ETag, checked by every copy).
import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { hashRange, hexDigestSoFar } from '../content-hash.js';
import { CopySourceChangedError } from '../multipart-api.js';
import type { HeldParts } from '../multipart-resume.js';
import { MultipartUpload } from '../multipart-upload.js';
import { MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE } from '../part-plan.js';
import type { TransferContext } from '../s3-request.js';
import type { FileTransfer, PreviousUpload, UploadProgressListener } from '../types.js';

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

/** The SHA-256 of the file's first previous.size bytes when they are the old object's content. */
async function hashOfPrefix(
  handle: FileHandle,
  previous: PreviousUpload,
  signal: AbortSignal,
): Promise<Hash | undefined> {
  const hash = createHash('sha256');
  const read = await hashRange(handle, hash, 0, previous.size, signal);
  return read && hexDigestSoFar(hash) === previous.sha256 ? hash : undefined;
}

/**
 * A new upload whose first parts are the old object, copied on the server, when the file starts
 * with it; undefined (any upload aborted) when the file or the object is no longer that.
 */
export async function copyPrefix(
  context: TransferContext,
  transfer: FileTransfer,
  handle: FileHandle,
  previous: PreviousUpload,
  partSize: number,
  progress: UploadProgressListener,
): Promise<MultipartUpload | undefined> {
  const prefix = await hashOfPrefix(handle, previous, transfer.signal);
  if (!prefix) {
    context.logger.info(
      { bucket: transfer.bucket, key: transfer.key },
      'the file no longer starts with the uploaded object; uploading it whole',
    );
    return undefined;
  }
  const shape = { partSize, streamed: true, copiedBytes: previous.size, copySourceEtag: previous.etag };
  const upload = await MultipartUpload.create(context, transfer, progress, shape);
  const ranges = copyRanges(previous.size);
  upload.contentStartsWith(prefix, ranges.length);
  try {
    for (const [index, range] of ranges.entries()) {
      await upload.copy(index + 1, { key: transfer.key, etag: previous.etag, ...range });
    }
  } catch (error) {
    if (!(error instanceof CopySourceChangedError)) throw error;
    context.logger.info(
      { ...upload.target, err: error },
      'the object changed in S3; uploading the file whole',
    );
    await upload.abort();
    return undefined;
  }
  return upload;
}

/**
 * Keeps the copied parts of a saved append: all of them must be on S3, and the file must still
 * start with the old object. False when either is no longer so.
 */
export async function keepCopiedPrefix(
  upload: MultipartUpload,
  held: HeldParts,
  handle: FileHandle,
  previous: PreviousUpload,
  signal: AbortSignal,
): Promise<boolean> {
  const ranges = copyRanges(previous.size);
  for (const [index, range] of ranges.entries()) {
    const found = held.find(index + 1, range.last - range.first + 1);
    if (!found) return false;
    await upload.keep(found.part, 'copied');
  }
  const prefix = await hashOfPrefix(handle, previous, signal);
  if (!prefix) return false;
  upload.contentStartsWith(prefix, ranges.length);
  return true;
}
