// Files below the multipart threshold: read whole (they are small), one PutObject with Content-MD5.
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { md5Of } from './checksums.js';
import { assertUnchanged, openVersion, readExactly } from './file-version.js';
import { requestS3, type TransferContext } from './s3-request.js';
import type { UploadJob, UploadProgressListener, UploadResult } from './types.js';
import { checkedEtag, validationMethodOf } from './validation.js';

async function readWholeFile(job: UploadJob): Promise<Buffer> {
  const handle = await openVersion(job);
  try {
    const content = Buffer.allocUnsafe(job.size);
    await readExactly(handle, content, 0, job);
    return content;
  } finally {
    await handle.close();
  }
}

export async function uploadSingle(
  context: TransferContext,
  job: UploadJob,
  progress: UploadProgressListener,
): Promise<UploadResult> {
  const content = await readWholeFile(job);
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
      }),
      { abortSignal },
    );
    const validation = validationMethodOf(response);
    const etag = checkedEtag(`PutObject s3://${job.bucket}/${job.key}`, response.ETag, md5.hex, validation);
    return { etag, validation };
  });
  progress.bytesUploaded(job.size);
  return { ...stored, method: 'single', bytesSent: job.size, partsReused: 0 };
}
