// Files below the multipart threshold: read whole (they are small), one PutObject with Content-MD5.
import { createHash } from 'node:crypto';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { md5Of, sdkChecksumAlgorithm } from './checksums.js';
import { assertUnchanged, openVersion, readExactly } from './file-version.js';
import { requestS3, type TransferContext } from './s3-request.js';
import type { UploadJob, UploadProgressListener, UploadResult } from './types.js';
import { checkedEtag, validationMethodOf } from './validation.js';

async function readWholeFile(job: UploadJob, content: Buffer): Promise<void> {
  const handle = await openVersion(job);
  try {
    await readExactly(handle, content, 0, job);
  } finally {
    await handle.close();
  }
}

export async function uploadSingle(
  context: TransferContext,
  job: UploadJob,
  progress: UploadProgressListener,
): Promise<UploadResult> {
  const lease = await context.buffers.lease(job.size, job.signal);
  try {
    return await putWholeFile(context, job, lease.buffer, progress);
  } finally {
    lease.release();
  }
}

async function putWholeFile(
  context: TransferContext,
  job: UploadJob,
  content: Buffer,
  progress: UploadProgressListener,
): Promise<UploadResult> {
  await readWholeFile(job, content);
  // A file that grew while it was read has a new mtime; this catches it before anything is sent.
  await assertUnchanged(job);
  const md5 = md5Of(content);
  const target = { bucket: job.bucket, key: job.key };
  const stored = await requestS3(context, 'PutObject', target, job.signal, async (abortSignal) => {
    const response = await context.client.send(
      new PutObjectCommand({
        Bucket: job.bucket,
        Key: job.key,
        Body: content,
        ContentLength: content.length,
        ContentMD5: md5.base64,
        ChecksumAlgorithm: sdkChecksumAlgorithm(context.settings.checksumAlgorithm),
      }),
      { abortSignal },
    );
    const validation = validationMethodOf(response);
    const etag = checkedEtag(`PutObject s3://${job.bucket}/${job.key}`, response.ETag, md5.hex, validation);
    return { etag, validation };
  });
  progress.bytesUploaded(job.size);
  const sha256 = createHash('sha256').update(content).digest('hex');
  return {
    ...stored,
    sha256,
    size: job.size,
    mtimeMs: job.mtimeMs,
    ino: job.ino,
    ctimeMs: job.ctimeMs,
    method: 'single',
    bytesSent: job.size,
    bytesCopied: 0,
    partsReused: 0,
  };
}
