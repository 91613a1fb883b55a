// The S3 multipart calls, each retried and checked. Nothing here knows about files or progress.
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListPartsCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import type { ValidationMethod } from '../domain/model.js';
import { normalizeEtag, type Md5 } from './checksums.js';
import { S3RequestError, type S3Target } from './errors.js';
import { isNoSuchBucket, isNoSuchUpload, requestS3, type TransferContext } from './s3-request.js';
import { checkedEtag, validationMethodOf } from './validation.js';

export interface UploadTarget extends S3Target {
  key: string;
  uploadId: string;
}

export interface ListedPart {
  partNumber: number;
  etag: string;
  size: number;
}

export interface CompletedObject {
  etag: string;
  validation: ValidationMethod;
}

function where(target: S3Target): string {
  return `s3://${target.bucket}/${target.key ?? ''}`;
}

export async function createMultipartUpload(
  context: TransferContext,
  target: S3Target & { key: string },
  signal: AbortSignal,
): Promise<string> {
  const response = await requestS3(context, 'CreateMultipartUpload', target, signal, (abortSignal) =>
    context.client.send(new CreateMultipartUploadCommand({ Bucket: target.bucket, Key: target.key }), {
      abortSignal,
    }),
  );
  if (!response.UploadId) {
    throw new S3RequestError('CreateMultipartUpload', target, 1, new Error('S3 returned no upload id'));
  }
  return response.UploadId;
}

/** Every part S3 holds for the upload (all pages), or undefined when S3 no longer knows the upload. */
export async function listUploadedParts(
  context: TransferContext,
  target: UploadTarget,
  signal: AbortSignal,
): Promise<ListedPart[] | undefined> {
  const parts: ListedPart[] = [];
  let marker: string | undefined;
  try {
    do {
      const page = await requestS3(context, 'ListParts', target, signal, (abortSignal) =>
        context.client.send(
          new ListPartsCommand({
            Bucket: target.bucket,
            Key: target.key,
            UploadId: target.uploadId,
            PartNumberMarker: marker,
          }),
          { abortSignal },
        ),
      );
      for (const part of page.Parts ?? []) {
        if (part.PartNumber === undefined || part.ETag === undefined || part.Size === undefined) continue;
        parts.push({ partNumber: part.PartNumber, etag: normalizeEtag(part.ETag), size: part.Size });
      }
      marker = page.IsTruncated ? page.NextPartNumberMarker : undefined;
    } while (marker !== undefined);
  } catch (error) {
    if (isNoSuchUpload(error)) return undefined;
    throw error;
  }
  return parts;
}

/** Sends one part with its Content-MD5; returns its ETag once checked against the part's MD5. */
export async function uploadPart(
  context: TransferContext,
  target: UploadTarget,
  partNumber: number,
  body: Buffer,
  md5: Md5,
  signal: AbortSignal,
): Promise<string> {
  return requestS3(context, `UploadPart ${partNumber}`, target, signal, async (abortSignal) => {
    const response = await context.client.send(
      new UploadPartCommand({
        Bucket: target.bucket,
        Key: target.key,
        UploadId: target.uploadId,
        PartNumber: partNumber,
        Body: body,
        ContentLength: body.length,
        ContentMD5: md5.base64,
      }),
      { abortSignal },
    );
    const what = `part ${partNumber} of ${where(target)}`;
    return checkedEtag(what, response.ETag, md5.hex, validationMethodOf(response));
  });
}

/**
 * Completes the upload from the parts' ETags (in part order) and checks the object's ETag against
 * `expectedEtag`. When S3 no longer knows the upload, an earlier attempt may have completed it
 * before its answer was lost: the object itself is then asked for.
 */
export async function completeMultipartUpload(
  context: TransferContext,
  target: UploadTarget,
  partEtags: readonly string[],
  expectedEtag: string,
  signal: AbortSignal,
): Promise<CompletedObject> {
  let returned: { ETag?: string | undefined; ServerSideEncryption?: string | undefined };
  try {
    returned = await requestS3(context, 'CompleteMultipartUpload', target, signal, (abortSignal) =>
      context.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: target.bucket,
          Key: target.key,
          UploadId: target.uploadId,
          MultipartUpload: {
            Parts: partEtags.map((etag, index) => ({ PartNumber: index + 1, ETag: `"${etag}"` })),
          },
        }),
        { abortSignal },
      ),
    );
  } catch (error) {
    if (!isNoSuchUpload(error)) throw error;
    const existing = await headObject(context, target, signal);
    if (existing.ETag === undefined || normalizeEtag(existing.ETag) !== expectedEtag) throw error;
    returned = existing;
  }
  const validation = validationMethodOf(returned);
  return {
    etag: checkedEtag(`completed ${where(target)}`, returned.ETag, expectedEtag, validation),
    validation,
  };
}

/**
 * The object at the key when it is the one a multipart upload with these parts completed into, else
 * undefined: for a resume after Complete succeeded but its answer, or the record of it, was lost.
 */
export async function findCompletedObject(
  context: TransferContext,
  target: S3Target,
  expectedEtag: string,
  signal: AbortSignal,
): Promise<CompletedObject | undefined> {
  let existing: Awaited<ReturnType<typeof headObject>>;
  try {
    existing = await headObject(context, target, signal);
  } catch (error) {
    // Not there (404), or not readable with these credentials (403: GetObject is not granted): either
    // way nothing says the upload completed, so the caller starts over rather than failing for ever.
    if (error instanceof S3RequestError && error.kind === 'permanent') return undefined;
    throw error;
  }
  if (existing.ETag === undefined || normalizeEtag(existing.ETag) !== expectedEtag) return undefined;
  return { etag: normalizeEtag(existing.ETag), validation: validationMethodOf(existing) };
}

async function headObject(context: TransferContext, target: S3Target, signal: AbortSignal) {
  return requestS3(context, 'HeadObject', target, signal, (abortSignal) =>
    context.client.send(new HeadObjectCommand({ Bucket: target.bucket, Key: target.key }), { abortSignal }),
  );
}

/** Aborts the upload; an upload S3 no longer knows, or whose bucket is gone, counts as aborted. */
export async function abortMultipartUpload(
  context: TransferContext,
  target: UploadTarget,
  signal: AbortSignal,
): Promise<void> {
  try {
    await requestS3(context, 'AbortMultipartUpload', target, signal, (abortSignal) =>
      context.client.send(
        new AbortMultipartUploadCommand({
          Bucket: target.bucket,
          Key: target.key,
          UploadId: target.uploadId,
        }),
        { abortSignal },
      ),
    );
  } catch (error) {
    if (!isNoSuchUpload(error) && !isNoSuchBucket(error)) throw error;
  }
}
