// Whether a file is followed as it grows, and from where: the saved streamed upload when its parts
// still match the file, else an append of the object uploaded before (its bytes copied on the
// server), else a new upload from the first byte when the file is still written. A file that is
// none of these goes the settled way; a saved upload that cannot go on is aborted first.
import { md5Of } from '../checksums.js';
import { ObjectTooLargeError } from '../errors.js';
import { openRegularFile } from '../file-version.js';
import { HeldParts } from '../multipart-resume.js';
import { MultipartUpload } from '../multipart-upload.js';
import { MAX_OBJECT_SIZE } from '../part-plan.js';
import type { TransferContext } from '../s3-request.js';
import type {
  FileTransfer,
  PreviousUpload,
  ResumeState,
  UploadProgressListener,
  UploadResult,
} from '../types.js';
import { appendFits, copyPrefix, keepCopiedPrefix } from './copied.js';
import { followFile, type FollowedStart } from './followed.js';
import { GrowingFile } from './growing-file.js';

/** What may make a file followed, when no saved upload can go on. */
export interface FollowOptions {
  /** The file is still being written: follow it from its first byte. */
  stream: boolean;
  /** The object already at the key, which the file may have grown from. */
  appendFrom: PreviousUpload | undefined;
  partSize: number;
}

/** A followed file's result, or 'settled': it is not followed, and any saved upload was aborted. */
export type FollowOutcome = { kind: 'uploaded'; result: UploadResult } | { kind: 'settled' };

/** Uploads the file as it grows (or as an append), going on with `resume` when that still fits. */
export async function uploadFollowed(
  context: TransferContext,
  transfer: FileTransfer,
  resume: ResumeState | undefined,
  progress: UploadProgressListener,
  options: FollowOptions,
): Promise<FollowOutcome> {
  const handle = await openRegularFile(transfer.filePath);
  try {
    const file = new GrowingFile(handle, transfer.filePath, transfer.settleMs, await handle.stat());
    const start = await startFollowing(context, transfer, file, resume, progress, options);
    if (start === 'settled') return { kind: 'settled' };
    await file.markRead(start.offset);
    return { kind: 'uploaded', result: await followFile(context, transfer, file, start, progress) };
  } finally {
    await handle.close();
  }
}

async function startFollowing(
  context: TransferContext,
  transfer: FileTransfer,
  file: GrowingFile,
  resume: ResumeState | undefined,
  progress: UploadProgressListener,
  options: FollowOptions,
): Promise<FollowedStart | 'settled'> {
  const { opened } = file;
  const tooLarge = opened.size > MAX_OBJECT_SIZE;
  if (resume) {
    if (!tooLarge && resume.streamed) {
      const resumed = await resumeFollowed(context, transfer, file, resume, progress);
      if (resumed) return resumed;
    }
    const saved = MultipartUpload.saved(context, transfer, progress, resume.s3UploadId);
    context.logger.info(saved.target, 'the saved multipart upload no longer matches the file; aborting it');
    await saved.abort();
  }
  if (tooLarge) throw new ObjectTooLargeError(transfer.filePath, opened.size);
  const previous = options.appendFrom;
  if (previous && appendFits(previous, opened.size, options.partSize)) {
    const upload = await copyPrefix(context, transfer, file.handle, previous, options.partSize, progress);
    if (upload) return { upload, partSize: options.partSize, offset: previous.size, method: 'append' };
  }
  if (!options.stream) return 'settled';
  const shape = { partSize: options.partSize, streamed: true, copiedBytes: 0, copySourceEtag: null };
  const upload = await MultipartUpload.create(context, transfer, progress, shape);
  return { upload, partSize: options.partSize, offset: 0, method: 'streamed' };
}

/**
 * Goes on with the saved streamed upload: its copied parts must all be on S3 and its copied bytes
 * still the file's first bytes, and each full part S3 holds is kept while the file's bytes hash to
 * its ETag (read locally, never sent again). Undefined when the file no longer matches it.
 */
async function resumeFollowed(
  context: TransferContext,
  transfer: FileTransfer,
  file: GrowingFile,
  saved: ResumeState,
  progress: UploadProgressListener,
): Promise<FollowedStart | undefined> {
  const upload = MultipartUpload.saved(context, transfer, progress, saved.s3UploadId);
  const listed = await upload.listParts();
  if (!listed) return undefined;
  const held = new HeldParts(saved.parts, listed);
  if (saved.copiedBytes > 0) {
    const previous = transfer.previous;
    if (previous?.etag !== saved.copySourceEtag || previous.size !== saved.copiedBytes) return undefined;
    if (!(await keepCopiedPrefix(upload, held, file.handle, previous, transfer.signal))) return undefined;
  }
  const offset = await keepPartsStillOnDisk(context, transfer, file, upload, held, saved);
  if (offset === undefined) return undefined;
  context.logger.info(
    { ...upload.target, partsReused: upload.tally.partsReused, bytes: offset },
    'resuming the upload of a growing file',
  );
  const method = saved.copiedBytes > 0 ? 'append' : 'streamed';
  return { upload, partSize: saved.partSize, offset, method };
}

/**
 * Keeps each full part S3 holds, in order after the copied ones, while the file's bytes there still
 * hash to its ETag; returns the bytes the upload then covers, or undefined when S3 holds other
 * bytes than the file has there (it was rewritten).
 */
async function keepPartsStillOnDisk(
  context: TransferContext,
  transfer: FileTransfer,
  file: GrowingFile,
  upload: MultipartUpload,
  held: HeldParts,
  saved: ResumeState,
): Promise<number | undefined> {
  let offset = saved.copiedBytes;
  const { buffer: body, release } = await context.buffers.lease(saved.partSize, transfer.signal);
  try {
    for (;;) {
      const partNumber = upload.partCount + 1;
      const found = held.find(partNumber, body.length);
      if (!found || offset + body.length > file.opened.size) return offset;
      if ((await file.read(body, offset)) < body.length) return undefined;
      if (md5Of(body).hex !== found.part.etag) return undefined;
      await upload.content.update(partNumber, body);
      await upload.keep(found.part, found.saved ? 'saved' : 'unsaved');
      offset += body.length;
    }
  } finally {
    release();
  }
}
