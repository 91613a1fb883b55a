// Stands in for S3 where a test exercises verify or the orphan sweep without a server: objects and
// open multipart uploads held in maps, and every call recorded.
import type { ListedObject } from '../../src/domain/model.js';
import type { BucketCheck } from '../../src/transfer/bucket-check.js';
import type { ObjectAuditor, OpenMultipartUpload, StoredObject } from '../../src/transfer/object-audit.js';

export interface AbortedUpload {
  bucket: string;
  key: string;
  s3UploadId: string;
}

export class FakeAuditor implements ObjectAuditor {
  /** By `${bucket}/${key}`. */
  readonly objects = new Map<string, StoredObject>();
  /** Open multipart uploads, by bucket. */
  readonly uploads = new Map<string, OpenMultipartUpload[]>();
  readonly heads: string[] = [];
  readonly listings: { bucket: string; prefix: string }[] = [];
  readonly aborted: AbortedUpload[] = [];
  /** When set, every call rejects with it (S3 unreachable). */
  failure: Error | undefined;
  /** Buckets whose listing rejects (missing bucket). */
  readonly failingBuckets = new Map<string, Error>();

  putObject(bucket: string, key: string, object: StoredObject): void {
    this.objects.set(`${bucket}/${key}`, object);
  }

  openUpload(bucket: string, upload: OpenMultipartUpload): void {
    const open = this.uploads.get(bucket) ?? [];
    open.push(upload);
    this.uploads.set(bucket, open);
  }

  async headObject(bucket: string, key: string): Promise<StoredObject | undefined> {
    if (this.failure) throw this.failure;
    this.heads.push(`${bucket}/${key}`);
    return this.objects.get(`${bucket}/${key}`);
  }

  async *listMultipartUploads(bucket: string, prefix: string): AsyncIterable<OpenMultipartUpload> {
    if (this.failure) throw this.failure;
    const failing = this.failingBuckets.get(bucket);
    if (failing) throw failing;
    this.listings.push({ bucket, prefix });
    for (const upload of this.uploads.get(bucket) ?? []) {
      if (upload.key.startsWith(prefix)) yield upload;
    }
  }

  readonly objectListings: { bucket: string; prefix: string }[] = [];

  /** One page of every object under the prefix, in key order. */
  async *listObjects(bucket: string, prefix: string): AsyncIterable<ListedObject[]> {
    if (this.failure) throw this.failure;
    this.objectListings.push({ bucket, prefix });
    const page: ListedObject[] = [];
    for (const [name, object] of this.objects) {
      const key = name.slice(bucket.length + 1);
      if (name.startsWith(`${bucket}/`) && key.startsWith(prefix)) page.push({ key, ...object });
    }
    yield page.sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)));
  }

  /** What checkBucket answers, by bucket; usable when not set. */
  readonly bucketChecks = new Map<string, BucketCheck>();
  readonly checkedBuckets: { bucket: string; prefix: string }[] = [];

  async checkBucket(bucket: string, prefix: string): Promise<BucketCheck> {
    this.checkedBuckets.push({ bucket, prefix });
    return this.bucketChecks.get(bucket) ?? { result: 'usable' };
  }

  async abortMultipartUpload(bucket: string, key: string, s3UploadId: string): Promise<void> {
    if (this.failure) throw this.failure;
    this.aborted.push({ bucket, key, s3UploadId });
    const open = this.uploads.get(bucket) ?? [];
    this.uploads.set(
      bucket,
      open.filter((upload) => upload.s3UploadId !== s3UploadId),
    );
  }
}
