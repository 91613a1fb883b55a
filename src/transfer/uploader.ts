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
import type { UploadJob, Uploader } from './types.js';

/** `buffers`: the pool of file data memory, when the caller wants to look at its accounting (tests). */
export function createUploader(
  client: S3Client,
  settings: TransferSettings,
  logger: Logger,
  buffers?: BufferPool,
): Uploader {
  const shared = createTransferContext(client, settings, logger.child({ component: 'transfer' }), buffers);
  const appendSource = (job: UploadJob) =>
    settings.appendMode === 'auto' &&
    job.previous &&
    appendFits(job.previous, job.size, settings.streamPartSizeBytes)
      ? job.previous
      : undefined;
  return {
    async upload(job, resume, progress) {
      // The caller's logger names the file in its own words (the upload and task it belongs to).
      const context = job.logger
        ? { ...shared, logger: job.logger.child({ component: 'transfer' }) }
        : shared;
      if (job.size > MAX_OBJECT_SIZE) {
        // Refused before any request: a saved upload of an earlier version is all that S3 hears of.
        if (resume) {
          const target = { bucket: job.bucket, key: job.key, s3UploadId: resume.s3UploadId };
          await abortMultipartUpload(context, target, job.signal);
          await progress.multipartAborted();
        }
        throw new ObjectTooLargeError(job.filePath, job.size);
      }
      if (job.hashFirst) {
        const checked = await checkContent(context, job, job.hashFirst);
        if ('unchanged' in checked) return checked.unchanged;
        job = checked.changed;
      }
      const { stream } = job;
      const appendFrom = appendSource(job);
      if (resume?.streamed || stream || appendFrom) {
        const start = { stream, appendFrom, partSize: settings.streamPartSizeBytes };
        const followed = await uploadGrowing(context, job, resume, progress, start);
        if (followed) return followed;
        resume = undefined; // aborted by uploadGrowing, if there was one
      }
      if (job.size >= settings.multipartThresholdBytes)
        return uploadMultipart(context, job, resume, progress);
      if (resume) {
        // The file shrank below the threshold: its old multipart upload would be left behind.
        const target = { bucket: job.bucket, key: job.key, s3UploadId: resume.s3UploadId };
        await abortMultipartUpload(context, target, job.signal);
        await progress.multipartAborted();
      }
      return uploadSingle(context, job, progress);
    },
    async abortMultipart(bucket, key, s3UploadId) {
      await abortMultipartUpload(shared, { bucket, key, s3UploadId }, new AbortController().signal);
    },
  };
}
