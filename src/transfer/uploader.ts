import type { S3Client } from '@aws-sdk/client-s3';
import type { TransferSettings } from '../config.js';
import type { Logger } from '../logger.js';
import { abortMultipartUpload } from './multipart-api.js';
import { uploadMultipart } from './multipart.js';
import type { TransferContext } from './s3-request.js';
import { uploadSingle } from './single-put.js';
import type { Uploader } from './types.js';

export function createUploader(client: S3Client, settings: TransferSettings, logger: Logger): Uploader {
  const context: TransferContext = { client, settings, logger: logger.child({ component: 'transfer' }) };
  return {
    async upload(job, resume, progress) {
      if (job.size >= settings.multipartThresholdBytes)
        return uploadMultipart(context, job, resume, progress);
      if (resume) {
        // The file shrank below the threshold: its old multipart upload would be left behind.
        const target = { bucket: job.bucket, key: job.key, uploadId: resume.s3UploadId };
        await abortMultipartUpload(context, target, job.signal);
      }
      return uploadSingle(context, job, progress);
    },
    async abortMultipart(bucket, key, s3UploadId) {
      await abortMultipartUpload(
        context,
        { bucket, key, uploadId: s3UploadId },
        new AbortController().signal,
      );
    },
  };
}
