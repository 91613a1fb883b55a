import type { S3Client } from '@aws-sdk/client-s3';
import type { TransferSettings } from '../config.js';
import type { Logger } from '../logger.js';
import type { BufferPool } from './buffer-pool.js';
import { checkContent } from './content-check.js';
import { ObjectTooLargeError } from './errors.js';
import { skipIfExisting } from './existing-object.js';
import { abortMultipartUpload } from './multipart-api.js';
import { MultipartUpload } from './multipart-upload.js';
import { MAX_OBJECT_SIZE } from './part-plan.js';
import { appendFits } from './part-sources/copied.js';
import { uploadFollowed } from './part-sources/followed-start.js';
import { uploadPlanned } from './part-sources/planned.js';
import { createTransferContext, type TransferContext } from './s3-request.js';
import { uploadSingle } from './single-put.js';
import { streamObject } from './stream-object.js';
import type { FileTransfer, Uploader } from './types.js';

/** The context, logging with `fields` too; the child logger is made when a first line is logged. */
function withLogFields(shared: TransferContext, fields: Record<string, unknown>): TransferContext {
  let logger: Logger | undefined;
  return {
    ...shared,
    get logger() {
      return (logger ??= shared.logger.child(fields));
    },
  };
}

/** `buffers`: the pool of file data memory, when the caller wants to look at its accounting (tests). */
export function createUploader(
  client: S3Client,
  settings: TransferSettings,
  logger: Logger,
  buffers?: BufferPool,
): Uploader {
  const shared = createTransferContext(client, settings, logger.child({ component: 'transfer' }), buffers);
  const appendSource = (transfer: FileTransfer) =>
    settings.appendMode === 'auto' &&
    transfer.previous &&
    appendFits(transfer.previous, transfer.size, settings.streamPartSizeBytes)
      ? transfer.previous
      : undefined;
  return {
    async upload(transfer, resume, progress) {
      // The caller's fields name the file in its own words (the upload and task it belongs to).
      const context = transfer.logFields ? withLogFields(shared, transfer.logFields) : shared;
      const abortSaved = async (s3UploadId: string) =>
        MultipartUpload.saved(context, transfer, progress, s3UploadId).abort();
      if (transfer.size > MAX_OBJECT_SIZE) {
        // Refused before any request: a saved upload of an earlier version is all that S3 hears of.
        if (resume) await abortSaved(resume.s3UploadId);
        throw new ObjectTooLargeError(transfer.filePath, transfer.size);
      }
      if (transfer.existing) {
        const skipped = await skipIfExisting(context, transfer, transfer.existing);
        if (skipped) return skipped;
        transfer = { ...transfer, existing: undefined };
      }
      if (transfer.hashFirst) {
        const checked = await checkContent(context, transfer, transfer.hashFirst);
        if ('unchanged' in checked) return checked.unchanged;
        transfer = checked.changed;
      }
      const appendFrom = appendSource(transfer);
      if (resume?.streamed || transfer.stream || appendFrom) {
        const options = { stream: transfer.stream, appendFrom, partSize: settings.streamPartSizeBytes };
        const followed = await uploadFollowed(context, transfer, resume, progress, options);
        if (followed.kind === 'uploaded') return followed.result;
        resume = undefined; // not followed after all: a saved upload was aborted
      }
      if (transfer.size >= settings.multipartThresholdBytes)
        return uploadPlanned(context, transfer, resume, progress);
      // The file shrank below the threshold: its old multipart upload would be left behind.
      if (resume) await abortSaved(resume.s3UploadId);
      return uploadSingle(context, transfer, progress);
    },
    async abortMultipart(bucket, key, s3UploadId) {
      await abortMultipartUpload(shared, { bucket, key, s3UploadId }, new AbortController().signal);
    },
    writeObject(target, chunks, signal, options) {
      return streamObject(shared, target, chunks, signal, options);
    },
  };
}
