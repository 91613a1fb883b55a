// The S3 calls that look at what a bucket holds, for the verify route, the orphan sweep and the
// check of a new upload's bucket: one object's size and ETag, the multipart uploads still open
// under a prefix, an abort, and whether the bucket can be used. Each call
// goes through requestS3 (retries, error classification); nothing here knows about tasks.
import {
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { ExistingObject, ListedObject } from '../domain/model.js';
import type { TransferSettings } from '../config.js';
import type { Logger } from '../logger.js';
import { normalizeEtag } from './checksums.js';
import { SHA256_METADATA } from '../domain/object-properties.js';
import { S3RequestError } from './errors.js';
import { checkBucket, type BucketCheck } from './bucket-check.js';
import { abortMultipartUpload } from './multipart-api.js';
import { createTransferContext, requestS3, type TransferContext } from './s3-request.js';

/** What S3 holds at a key, with the SHA-256 this service stored in its metadata when it has one. */
export type StoredObject = ExistingObject;

/** A multipart upload S3 holds open (created, neither completed nor aborted). */
export interface OpenMultipartUpload {
  key: string;
  s3UploadId: string;
  /** When S3 says it was created; undefined when S3 did not say. */
  initiated: Date | undefined;
}

export interface ObjectAuditor {
  /** The object at the key, or undefined when there is none (404, NoSuchKey). */
  headObject(bucket: string, key: string, signal?: AbortSignal): Promise<StoredObject | undefined>;
  /** Every multipart upload open in the bucket under `prefix` ('' for all), page after page. */
  listMultipartUploads(
    bucket: string,
    prefix: string,
    signal?: AbortSignal,
  ): AsyncIterable<OpenMultipartUpload>;
  /**
   * The objects under `prefix` ('' for all), a page (up to 1,000) at a time, in key order (UTF-8
   * bytes), after the key `startAfter` when given.
   */
  listObjects(
    bucket: string,
    prefix: string,
    signal?: AbortSignal,
    startAfter?: string,
  ): AsyncIterable<ListedObject[]>;
  /** Aborts an upload; one S3 no longer knows, or whose bucket is gone, counts as aborted. */
  abortMultipartUpload(bucket: string, key: string, s3UploadId: string, signal?: AbortSignal): Promise<void>;
  /** Whether the service can use the bucket, asked once within a few seconds (see bucket-check.ts). */
  checkBucket(bucket: string, prefix: string): Promise<BucketCheck>;
}

export interface ObjectAuditorOptions {
  /** Entries per ListMultipartUploads and ListObjectsV2 page; S3's default (1000) when unset. For tests of paging. */
  listPageSize?: number;
  /** How long checkBucket waits for S3; BUCKET_CHECK_TIMEOUT_MS when unset. */
  bucketCheckTimeoutMs?: number;
}

export function createObjectAuditor(
  client: S3Client,
  settings: TransferSettings,
  logger: Logger,
  options: ObjectAuditorOptions = {},
): ObjectAuditor {
  const context = createTransferContext(client, settings, logger.child({ component: 'audit' }));
  const never = new AbortController().signal;
  return {
    headObject: (bucket, key, signal) => headObject(context, bucket, key, signal ?? never),
    listMultipartUploads: (bucket, prefix, signal) =>
      listMultipartUploads(context, bucket, prefix, signal ?? never, options.listPageSize),
    listObjects: (bucket, prefix, signal, startAfter) =>
      listObjects(context, bucket, prefix, signal ?? never, startAfter, options.listPageSize),
    abortMultipartUpload: (bucket, key, s3UploadId, signal) =>
      abortMultipartUpload(context, { bucket, key, s3UploadId }, signal ?? never),
    checkBucket: (bucket, prefix) => checkBucket(context, bucket, prefix, options.bucketCheckTimeoutMs),
  };
}

export async function headObject(
  context: TransferContext,
  bucket: string,
  key: string,
  signal: AbortSignal,
): Promise<StoredObject | undefined> {
  const target = { bucket, key };
  let response: {
    ContentLength?: number | undefined;
    ETag?: string | undefined;
    Metadata?: Record<string, string> | undefined;
  };
  try {
    response = await requestS3(context, 'HeadObject', target, signal, (abortSignal) =>
      context.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal }),
    );
  } catch (error) {
    if (isMissingObject(error)) return undefined;
    throw error;
  }
  if (response.ContentLength === undefined || response.ETag === undefined) {
    const missing = response.ETag === undefined ? 'ETag' : 'Content-Length';
    throw new S3RequestError('HeadObject', target, 1, new Error(`S3 returned no ${missing}`));
  }
  const sha256 = response.Metadata?.[SHA256_METADATA];
  return {
    size: response.ContentLength,
    etag: normalizeEtag(response.ETag),
    sha256: sha256 !== undefined && /^[0-9a-f]{64}$/.test(sha256) ? sha256 : undefined,
  };
}

export async function* listObjects(
  context: TransferContext,
  bucket: string,
  prefix: string,
  signal: AbortSignal,
  startAfter?: string,
  pageSize?: number,
): AsyncGenerator<ListedObject[]> {
  const target = prefix === '' ? { bucket } : { bucket, key: prefix };
  let continuationToken: string | undefined;
  for (;;) {
    const page = await requestS3(context, 'ListObjectsV2', target, signal, (abortSignal) =>
      context.client.send(
        new ListObjectsV2Command({
          Bucket: bucket,
          Prefix: prefix === '' ? undefined : prefix,
          StartAfter: continuationToken === undefined ? startAfter : undefined,
          ContinuationToken: continuationToken,
          MaxKeys: pageSize,
        }),
        { abortSignal },
      ),
    );
    const objects: ListedObject[] = [];
    for (const object of page.Contents ?? []) {
      if (object.Key === undefined || object.Size === undefined || object.ETag === undefined) continue;
      objects.push({ key: object.Key, size: object.Size, etag: normalizeEtag(object.ETag) });
    }
    yield objects;
    if (!page.IsTruncated || !page.NextContinuationToken) return;
    continuationToken = page.NextContinuationToken;
  }
}

/**
 * A HEAD has no body, so S3 cannot say NoSuchKey in it: a 404 is the answer (a missing bucket
 * answers the same, and then no object of it exists either).
 */
function isMissingObject(error: unknown): boolean {
  if (!(error instanceof S3RequestError)) return false;
  return error.httpStatus === 404 || error.code === 'NoSuchKey' || error.code === 'NotFound';
}

export async function* listMultipartUploads(
  context: TransferContext,
  bucket: string,
  prefix: string,
  signal: AbortSignal,
  pageSize?: number,
): AsyncGenerator<OpenMultipartUpload> {
  const target = prefix === '' ? { bucket } : { bucket, key: prefix };
  let keyMarker: string | undefined;
  let s3UploadIdMarker: string | undefined;
  for (;;) {
    const page = await requestS3(context, 'ListMultipartUploads', target, signal, (abortSignal) =>
      context.client.send(
        new ListMultipartUploadsCommand({
          Bucket: bucket,
          Prefix: prefix === '' ? undefined : prefix,
          KeyMarker: keyMarker,
          UploadIdMarker: s3UploadIdMarker,
          MaxUploads: pageSize,
        }),
        { abortSignal },
      ),
    );
    const uploads = page.Uploads ?? [];
    for (const upload of uploads) {
      if (upload.Key === undefined || upload.UploadId === undefined) continue;
      yield { key: upload.Key, s3UploadId: upload.UploadId, initiated: upload.Initiated };
    }
    if (!page.IsTruncated) return;
    // Some servers (Swift's s3api) send a truncated page with empty Next*Marker: the last upload
    // listed is where the next page starts, as the markers would have said.
    const last = uploads.at(-1);
    const nextKeyMarker = page.NextKeyMarker || last?.Key;
    const nextS3UploadIdMarker = page.NextUploadIdMarker || last?.UploadId;
    // Nowhere to go on from, or the same place again: stop rather than loop for ever.
    if (nextKeyMarker === undefined) return;
    if (nextKeyMarker === keyMarker && nextS3UploadIdMarker === s3UploadIdMarker) return;
    keyMarker = nextKeyMarker;
    s3UploadIdMarker = nextS3UploadIdMarker;
  }
}
