// Files below the multipart threshold: read whole (they are small), one PutObject with Content-MD5.
import { createHash } from 'node:crypto';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { md5Of, sdkChecksumAlgorithm } from './checksums.js';
import { readWholeVersion } from './file-version.js';
import { directPutOf } from './direct-put.js';
import { objectHeadersOf } from './object-headers.js';
import { requestS3, type TransferContext } from './s3-request.js';
import type { ValidationMethod } from '../domain/model.js';
import type { ObjectTarget } from './stream-object.js';
import type { FileTransfer, UploadProgressListener, UploadResult } from './types.js';
import { checkedEtag, validationMethodOf } from './validation.js';

export async function uploadSingle(
  context: TransferContext,
  transfer: FileTransfer,
  progress: UploadProgressListener,
): Promise<UploadResult> {
  const lease = await context.buffers.lease(transfer.size, transfer.signal);
  try {
    return await putWholeFile(context, transfer, lease.buffer, progress);
  } finally {
    lease.release();
  }
}

/**
 * One PutObject of `body` with its Content-MD5, its SHA-256 in the object's metadata and the
 * object headers of its properties; retried, and its ETag checked. Also the write of a streamed
 * object that fits in one part (stream-object.ts).
 */
export async function putObject(
  context: TransferContext,
  target: ObjectTarget,
  body: Buffer,
  sha256: string,
  signal: AbortSignal,
): Promise<{ etag: string; validation: ValidationMethod }> {
  const { bucket, key } = target;
  const md5 = md5Of(body);
  const headers = objectHeadersOf(key, target.objectProperties, sha256);
  const checksumAlgorithm = sdkChecksumAlgorithm(context.settings.checksumAlgorithm);
  // The SDK computes additional checksums; the direct path sends Content-MD5 and the SHA-256 only.
  const direct = checksumAlgorithm === undefined ? directPutOf(context.client) : undefined;
  return requestS3(context, 'PutObject', { bucket, key }, signal, async (abortSignal) => {
    const request = { bucket, key, body, contentMd5: md5.base64, sha256, headers };
    const response =
      (await direct?.put(request, abortSignal)) ??
      (await context.client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: body,
          ContentLength: body.length,
          ContentMD5: md5.base64,
          ChecksumAlgorithm: checksumAlgorithm,
          ...headers,
        }),
        { abortSignal },
      ));
    const validation = validationMethodOf(response);
    const etag = checkedEtag(`PutObject s3://${bucket}/${key}`, response.ETag, md5.hex, validation);
    return { etag, validation };
  });
}

async function putWholeFile(
  context: TransferContext,
  transfer: FileTransfer,
  content: Buffer,
  progress: UploadProgressListener,
): Promise<UploadResult> {
  // A file that changed before or while it was read fails here, before anything is sent.
  await readWholeVersion(transfer, content);
  // Stored with the object, so that a later comparison of it with a file is exact (see existing-object.ts).
  const sha256 = createHash('sha256').update(content).digest('hex');
  const stored = await putObject(context, transfer, content, sha256, transfer.signal);
  progress.bytesUploaded(transfer.size);
  return {
    ...stored,
    sha256,
    size: transfer.size,
    mtimeMs: transfer.mtimeMs,
    ino: transfer.ino,
    ctimeMs: transfer.ctimeMs,
    method: 'single',
    bytesSent: transfer.size,
    bytesCopied: 0,
    partsReused: 0,
  };
}
