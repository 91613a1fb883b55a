// The S3 multipart calls, each retried and checked. Nothing here knows about files or progress.
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import type { ValidationMethod } from '../domain/model.js';
import { normalizeEtag, sdkChecksumAlgorithm, type ChecksumField, type Md5 } from './checksums.js';
import { ETagMismatchError, S3RequestError, type S3Target } from './errors.js';
import type { ObjectHeaders } from './object-headers.js';
import { isNoSuchBucket, isNoSuchUpload, requestS3, type TransferContext } from './s3-request.js';
import { checkedEtag, validationMethodOf } from './validation.js';

export interface UploadTarget extends S3Target {
  key: string;
  s3UploadId: string;
}

/** What S3 answered for a stored part: enough to name it in CompleteMultipartUpload. */
export interface PartReceipt {
  etag: string;
  /** S3's additional checksum of the part (CHECKSUM_ALGORITHM crc32c or sha256), when it returned one. */
  checksum?: string | undefined;
}

export interface ListedPart extends PartReceipt {
  partNumber: number;
  size: number;
}

interface ChecksumFields {
  ChecksumCRC32C?: string | undefined;
  ChecksumSHA256?: string | undefined;
}

/** The additional checksum S3 returned for a part, in the configured algorithm. */
function checksumOf(context: TransferContext, fields: ChecksumFields | undefined): string | undefined {
  switch (context.settings.checksumAlgorithm) {
    case 'crc32c':
      return fields?.ChecksumCRC32C;
    case 'sha256':
      return fields?.ChecksumSHA256;
    case 'md5':
      return undefined;
  }
}

function completedPart(context: TransferContext, receipt: PartReceipt, partNumber: number): CompletedPart {
  const part: CompletedPart = { PartNumber: partNumber, ETag: `"${receipt.etag}"` };
  if (receipt.checksum === undefined) return part;
  if (context.settings.checksumAlgorithm === 'crc32c') part.ChecksumCRC32C = receipt.checksum;
  if (context.settings.checksumAlgorithm === 'sha256') part.ChecksumSHA256 = receipt.checksum;
  return part;
}

export interface CompletedObject {
  etag: string;
  validation: ValidationMethod;
}

function where(target: S3Target): string {
  return `s3://${target.bucket}/${target.key ?? ''}`;
}

/** `headers`: what the object will carry (see object-headers.ts), given when the upload is created. */
export async function createMultipartUpload(
  context: TransferContext,
  target: S3Target & { key: string },
  headers: ObjectHeaders,
  signal: AbortSignal,
): Promise<string> {
  const startedAt = Date.now();
  let answersLost = 0;
  let response;
  try {
    response = await requestS3(context, 'CreateMultipartUpload', target, signal, async (abortSignal) => {
      try {
        return await context.client.send(
          new CreateMultipartUploadCommand({
            Bucket: target.bucket,
            Key: target.key,
            ChecksumAlgorithm: sdkChecksumAlgorithm(context.settings.checksumAlgorithm),
            ...headers,
          }),
          { abortSignal },
        );
      } catch (error) {
        if (!refusedByS3(error)) answersLost++;
        throw error;
      }
    });
  } catch (error) {
    if (answersLost > 0 && !signal.aborted) await abortLostUploads(context, target, undefined, startedAt);
    throw error;
  }
  if (answersLost > 0) await abortLostUploads(context, target, response.UploadId, startedAt);
  if (!response.UploadId) {
    throw new S3RequestError('CreateMultipartUpload', target, 1, new Error('S3 returned no upload id'));
  }
  return response.UploadId;
}

/**
 * S3 answered with an error status, so it did not act on the request. Anything else (a reset, a
 * timeout, an answer cut short or unreadable) may hide a request that S3 carried out.
 */
function refusedByS3(error: unknown): boolean {
  const metadata =
    typeof error === 'object' && error !== null ? (error as { $metadata?: unknown }).$metadata : undefined;
  const status = (metadata as { httpStatusCode?: unknown } | undefined)?.httpStatusCode;
  return typeof status === 'number' && (status < 200 || status >= 300);
}

/** S3 states when an upload was initiated to the second; a second more allows for clock skew. */
const INITIATED_SLACK_MS = 2000;

/**
 * A CreateMultipartUpload whose answer was lost may have created an upload whose id nobody knows,
 * costing storage until the next start's orphan sweep. The uploads S3 holds at this exact key,
 * initiated since the first attempt, other than `keep`, are those: aborted now. Best effort: a
 * failure is logged, never thrown.
 */
async function abortLostUploads(
  context: TransferContext,
  target: S3Target & { key: string },
  keep: string | undefined,
  since: number,
): Promise<void> {
  const signal = new AbortController().signal; // the cleanup runs to its end, even for a stopped transfer
  try {
    const listed = await requestS3(context, 'ListMultipartUploads', target, signal, (abortSignal) =>
      context.client.send(new ListMultipartUploadsCommand({ Bucket: target.bucket, Prefix: target.key }), {
        abortSignal,
      }),
    );
    for (const upload of listed.Uploads ?? []) {
      const { Key: key, UploadId: s3UploadId, Initiated: initiated } = upload;
      if (key !== target.key || s3UploadId === undefined || s3UploadId === keep) continue;
      if (initiated === undefined || initiated.getTime() < since - INITIATED_SLACK_MS) continue;
      await abortMultipartUpload(context, { ...target, s3UploadId }, signal);
      context.logger.info(
        { ...target, s3UploadId },
        'aborted a multipart upload created by an attempt whose answer was lost',
      );
    }
  } catch (error) {
    context.logger.warn(
      { ...target, err: error },
      'could not look for multipart uploads created by attempts whose answer was lost',
    );
  }
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
            UploadId: target.s3UploadId,
            PartNumberMarker: marker,
          }),
          { abortSignal },
        ),
      );
      for (const part of page.Parts ?? []) {
        if (part.PartNumber === undefined || part.ETag === undefined || part.Size === undefined) continue;
        parts.push({
          partNumber: part.PartNumber,
          etag: normalizeEtag(part.ETag),
          size: part.Size,
          checksum: checksumOf(context, part),
        });
      }
      marker = page.IsTruncated ? page.NextPartNumberMarker : undefined;
    } while (marker !== undefined);
  } catch (error) {
    if (isNoSuchUpload(error)) return undefined;
    throw error;
  }
  return parts;
}

/**
 * Sends one part with its Content-MD5 (and the configured additional checksum, which the SDK
 * computes); returns its receipt once the ETag is checked against the part's MD5.
 */
export async function uploadPart(
  context: TransferContext,
  target: UploadTarget,
  partNumber: number,
  body: Buffer,
  md5: Md5,
  signal: AbortSignal,
): Promise<PartReceipt> {
  return requestS3(context, `UploadPart ${partNumber}`, target, signal, async (abortSignal) => {
    const response = await context.client.send(
      new UploadPartCommand({
        Bucket: target.bucket,
        Key: target.key,
        UploadId: target.s3UploadId,
        PartNumber: partNumber,
        Body: body,
        ContentLength: body.length,
        ContentMD5: md5.base64,
        ChecksumAlgorithm: sdkChecksumAlgorithm(context.settings.checksumAlgorithm),
      }),
      { abortSignal },
    );
    const what = `part ${partNumber} of ${where(target)}`;
    const etag = checkedEtag(what, response.ETag, md5.hex, validationMethodOf(response));
    return { etag, checksum: checksumOf(context, response) };
  });
}

/** One attempt's body of a part sent as a stream. */
export interface PartStream {
  stream: Readable;
  /** Why the stream gave up (the file's bytes are not those hashed), which then fails the attempt. */
  failure(): Error | undefined;
  /** Aborts the request when the stream gives up: a piped body cannot end it otherwise. */
  signal: AbortSignal;
  /** Stops the stream; resolves once it no longer writes into its buffers. */
  close(): Promise<void>;
}

/** A part too large to hold in memory: its digests known beforehand, its bytes read at each attempt. */
export interface StreamedPart {
  size: number;
  md5: Md5;
  checksum: { field: ChecksumField; base64: string } | undefined;
  /** A fresh stream of the part's bytes, for one attempt (a stream cannot be sent twice). */
  open(abortSignal: AbortSignal): PartStream;
}

/**
 * Sends one part from a stream, with Content-Length, Content-MD5 and the additional checksum
 * given beforehand (the SDK computes nothing, and frames nothing), and checks its ETag like
 * uploadPart. Every retry reads the part again.
 */
export async function uploadPartStreamed(
  context: TransferContext,
  target: UploadTarget,
  partNumber: number,
  part: StreamedPart,
  signal: AbortSignal,
): Promise<PartReceipt> {
  return requestS3(context, `UploadPart ${partNumber}`, target, signal, async (abortSignal) => {
    const body = part.open(abortSignal);
    let response;
    try {
      response = await context.client.send(
        new UploadPartCommand({
          Bucket: target.bucket,
          Key: target.key,
          UploadId: target.s3UploadId,
          PartNumber: partNumber,
          Body: body.stream,
          ContentLength: part.size,
          ContentMD5: part.md5.base64,
          ...(part.checksum && { [part.checksum.field]: part.checksum.base64 }),
        }),
        { abortSignal: body.signal },
      );
    } catch (error) {
      throw body.failure() ?? error;
    } finally {
      await body.close();
    }
    const what = `part ${partNumber} of ${where(target)}`;
    const etag = checkedEtag(what, response.ETag, part.md5.hex, validationMethodOf(response));
    return { etag, checksum: checksumOf(context, response) };
  });
}

/** A byte range of the object already at the key, which a part copies on the server. */
export interface CopySource {
  key: string;
  /** The source object must still carry this ETag (normalised). */
  etag: string;
  /** First and last byte, inclusive. */
  first: number;
  last: number;
}

/** The source object changed since its ETag was recorded: copying from it would mix versions. */
export class CopySourceChangedError extends Error {
  override readonly name = 'CopySourceChangedError';
}

/**
 * Copies a range of the object at `source.key` into a part, on the server. The copy is guarded by
 * x-amz-copy-source-if-match; a server that refuses the guard for an unchanged object (Swift 2.30
 * does, for a source that is itself a multipart object) is asked with a HEAD before each copy
 * instead, from then on. Throws CopySourceChangedError when the source is not the expected object.
 */
export async function uploadPartCopy(
  context: TransferContext,
  target: UploadTarget,
  partNumber: number,
  source: CopySource,
  signal: AbortSignal,
): Promise<PartReceipt> {
  const sourceTarget = { bucket: target.bucket, key: source.key };
  const assertSourceUnchanged = async (): Promise<void> => {
    const head = await headObject(context, sourceTarget, signal).catch((error: unknown) => {
      if (error instanceof S3RequestError && error.httpStatus === 404) return undefined;
      throw error;
    });
    if (head?.ETag === undefined || normalizeEtag(head.ETag) !== source.etag) {
      throw new CopySourceChangedError(
        `${where(sourceTarget)} is no longer the object uploaded before (ETag ${source.etag})`,
      );
    }
  };
  const copy = (guarded: boolean) =>
    requestS3(context, `UploadPartCopy ${partNumber}`, target, signal, async (abortSignal) => {
      const response = await context.client.send(
        new UploadPartCopyCommand({
          Bucket: target.bucket,
          Key: target.key,
          UploadId: target.s3UploadId,
          PartNumber: partNumber,
          CopySource: `${target.bucket}/${source.key.split('/').map(encodeURIComponent).join('/')}`,
          CopySourceRange: `bytes=${source.first}-${source.last}`,
          CopySourceIfMatch: guarded ? `"${source.etag}"` : undefined,
        }),
        { abortSignal },
      );
      const etag = response.CopyPartResult?.ETag;
      if (etag === undefined) throw new Error('S3 returned no ETag for the copied part');
      return { etag: normalizeEtag(etag), checksum: checksumOf(context, response.CopyPartResult) };
    });

  if (context.quirks.copyIfMatchRefused) {
    await assertSourceUnchanged();
    return copy(false);
  }
  try {
    return await copy(true);
  } catch (error) {
    if (!(error instanceof S3RequestError) || error.httpStatus !== 412) throw error;
    await assertSourceUnchanged();
    context.quirks.copyIfMatchRefused = true;
    context.logger.info(
      { bucket: target.bucket, key: source.key },
      'S3 refused x-amz-copy-source-if-match for an unchanged object; each copy is checked with a HEAD instead',
    );
    return copy(false);
  }
}

/**
 * Completes the upload from the parts' ETags (in part order) and checks the object's ETag against
 * `expectedEtag`. When S3 no longer knows the upload, an earlier attempt may have completed it
 * before its answer was lost: the object itself is then asked for.
 */
export async function completeMultipartUpload(
  context: TransferContext,
  target: UploadTarget,
  parts: readonly PartReceipt[],
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
          UploadId: target.s3UploadId,
          MultipartUpload: { Parts: parts.map((part, index) => completedPart(context, part, index + 1)) },
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
  try {
    return {
      etag: checkedEtag(`completed ${where(target)}`, returned.ETag, expectedEtag, validation),
      validation,
    };
  } catch (error) {
    if (!(error instanceof ETagMismatchError)) throw error;
    // The upload is gone either way: whether the answer or the object is wrong, the object says.
    const stored = await headObject(context, target, signal);
    const storedValidation = validationMethodOf(stored);
    const etag = checkedEtag(`object ${where(target)}`, stored.ETag, expectedEtag, storedValidation);
    context.logger.warn(
      { ...target, mismatch: error.message },
      'CompleteMultipartUpload answered a wrong ETag, but the object S3 holds has the expected one',
    );
    return { etag, validation: storedValidation };
  }
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

export async function headObject(context: TransferContext, target: S3Target, signal: AbortSignal) {
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
          UploadId: target.s3UploadId,
        }),
        { abortSignal },
      ),
    );
  } catch (error) {
    if (!isNoSuchUpload(error) && !isNoSuchBucket(error)) throw error;
  }
}
