// The S3 server the tests talk to. `npm test` starts a local OpenStack Swift (with its S3 API)
// and exports S3_TEST_ENDPOINT and keys; set them yourself to point the suite at another S3.
import { randomBytes } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
  type MultipartUpload,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import type { S3Settings } from '../../src/config.js';

export interface TestS3 {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

export function testS3(): TestS3 {
  const endpoint = process.env.S3_TEST_ENDPOINT;
  const accessKeyId = process.env.S3_TEST_ACCESS_KEY_ID;
  const secretAccessKey = process.env.S3_TEST_SECRET_ACCESS_KEY;
  if (!endpoint || !accessKeyId || !secretAccessKey) {
    throw new Error(
      'S3_TEST_ENDPOINT, S3_TEST_ACCESS_KEY_ID and S3_TEST_SECRET_ACCESS_KEY are not set: run the tests with `npm test`, which starts a local S3 server',
    );
  }
  return { endpoint, accessKeyId, secretAccessKey, region: process.env.S3_TEST_REGION ?? 'us-east-1' };
}

/** Settings for the service's own S3 client, pointed at the test server (or at a proxy in front of it). */
export function testS3Settings(endpoint = testS3().endpoint): S3Settings {
  const s3 = testS3();
  return {
    region: s3.region,
    endpoint,
    forcePathStyle: true,
    checksumMode: 'when_required',
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    sessionToken: undefined,
    profile: undefined,
  };
}

/**
 * A plain SDK client for the tests' own checks (listing, downloading), independent of the service's
 * code; `options` adds to its settings (the benchmark's retries, say).
 */
export function testS3Client(options: Partial<S3ClientConfig> = {}): S3Client {
  const s3 = testS3();
  return new S3Client({
    ...options,
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** A fresh bucket with a unique name; S3's rules: lower case, digits and hyphens. */
export async function createTestBucket(client: S3Client, label = 'test'): Promise<string> {
  const bucket = `${label}-${randomBytes(6).toString('hex')}`.toLowerCase().slice(0, 63);
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

export function uniqueBucketName(label = 'test'): string {
  return `${label}-${randomBytes(6).toString('hex')}`.toLowerCase();
}

export async function listKeys(client: S3Client, bucket: string, prefix?: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const object of page.Contents ?? []) if (object.Key) keys.push(object.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys.sort();
}

export async function getObjectBytes(client: S3Client, bucket: string, key: string): Promise<Buffer> {
  const result = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  if (!result.Body) throw new Error(`no body for s3://${bucket}/${key}`);
  return Buffer.from(await result.Body.transformToByteArray());
}

export async function listMultipartUploads(client: S3Client, bucket: string): Promise<MultipartUpload[]> {
  const result = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  return result.Uploads ?? [];
}

/**
 * Deletes every object and then the bucket; for test clean-up. One DeleteObject per key: Swift
 * requires a Content-MD5 on DeleteObjects, which the SDK no longer sends.
 */
export async function deleteBucket(client: S3Client, bucket: string): Promise<void> {
  // A service killed with requests in flight leaves PUTs that S3 may finish after the listing:
  // the bucket is emptied again until it can be deleted.
  const deadline = Date.now() + 30_000;
  for (;;) {
    const keys = await listKeys(client, bucket);
    for (let i = 0; i < keys.length; i += 16) {
      await Promise.all(
        keys.slice(i, i + 16).map((Key) => client.send(new DeleteObjectCommand({ Bucket: bucket, Key }))),
      );
    }
    for (const upload of await listMultipartUploads(client, bucket)) {
      await client.send(
        new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.Key, UploadId: upload.UploadId }),
      );
    }
    try {
      await client.send(new DeleteBucketCommand({ Bucket: bucket }));
      return;
    } catch (error) {
      if (!(error instanceof Error && error.name === 'BucketNotEmpty') || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}
