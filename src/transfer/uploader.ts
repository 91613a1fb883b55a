import type { S3Client } from '@aws-sdk/client-s3';
import type { TransferSettings } from '../config.js';
import type { Logger } from '../logger.js';
import type { BufferPool } from './buffer-pool.js';
import { ObjectTooLargeError } from './errors.js';
import { checkContent } from './content-check.js';
import { appendFits, uploadGrowing } from './growing-upload.js';
import { abortMultipartUpload } from './multipart-api.js';
import { uploadMultipart } from './multipart.js';
import { MAX_OBJECT_SIZE } from './part-plan.js';
import { createTransferContext } from './s3-request.js';
import { uploadSingle } from './single-put.js';
import type { FileTransfer, Uploader } from './types.js';

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
      // The caller's logger names the file in its own words (the upload and task it belongs to).
      const context = transfer.logger
        ? { ...shared, logger: transfer.logger.child({ component: 'transfer' }) }
        : shared;
      if (transfer.size > MAX_OBJECT_SIZE) {
        // Refused before any request: a saved upload of an earlier version is all that S3 hears of.
        if (resume) {
          const target = { bucket: transfer.bucket, key: transfer.key, s3UploadId: resume.s3UploadId };
          await abortMultipartUpload(context, target, transfer.signal);
          await progress.multipartAborted();
        }
        throw new ObjectTooLargeError(transfer.filePath, transfer.size);
      }
      if (transfer.hashFirst) {
        const checked = await checkContent(context, transfer, transfer.hashFirst);
        if ('unchanged' in checked) return checked.unchanged;
        transfer = checked.changed;
      }
      const { stream } = transfer;
      const appendFrom = appendSource(transfer);
      if (resume?.streamed || stream || appendFrom) {
        const start = { stream, appendFrom, partSize: settings.streamPartSizeBytes };
        const followed = await uploadGrowing(context, transfer, resume, progress, start);
        if (followed) return followed;
        resume = undefined; // aborted by uploadGrowing, if there was one
      }
      if (transfer.size >= settings.multipartThresholdBytes)
        return uploadMultipart(context, transfer, resume, progress);
      if (resume) {
        // The file shrank below the threshold: its old multipart upload would be left behind.
        const target = { bucket: transfer.bucket, key: transfer.key, s3UploadId: resume.s3UploadId };
        await abortMultipartUpload(context, target, transfer.signal);
        await progress.multipartAborted();
      }
      return uploadSingle(context, transfer, progress);
    },
    async abortMultipart(bucket, key, s3UploadId) {
      await abortMultipartUpload(shared, { bucket, key, s3UploadId }, new AbortController().signal);
    },
  };
}
