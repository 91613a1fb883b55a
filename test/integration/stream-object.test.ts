// An object written from a stream of unknown length (uploader.writeObject), against a real S3
// server (Swift's S3 API): one PutObject for a stream within one part, a multipart upload beyond,
// and no multipart upload left behind when the source fails or the write is aborted. Parts are S3's
// minimum (5 MiB) to keep the streams small.
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import type { TransferSettings } from '../../src/config.js';
import { NO_OBJECT_PROPERTIES } from '../../src/domain/object-properties.js';
import { createLogger } from '../../src/logger.js';
import { BufferPool } from '../../src/transfer/buffer-pool.js';
import { md5Of, multipartEtag, normalizeEtag } from '../../src/transfer/checksums.js';
import { S3RequestError } from '../../src/transfer/errors.js';
import { createS3Client } from '../../src/transfer/s3-client.js';
import type { ObjectChunk } from '../../src/transfer/stream-object.js';
import { createUploader } from '../../src/transfer/uploader.js';
import {
  createTestBucket,
  deleteBucket,
  getObjectBytes,
  listKeys,
  listMultipartUploads,
  testS3Client,
  testS3Settings,
  uniqueBucketName,
} from '../support/s3.js';
import { requestCounter } from '../support/transfer-recorder.js';

const MiB = 1024 * 1024;
const PART = 5 * MiB;

const settings: TransferSettings = {
  multipartThresholdBytes: PART,
  partSizeBytes: PART,
  maxConcurrentParts: 2,
  retryMaxAttempts: 3,
  retryBaseDelayMs: 10,
  streamGrowingFiles: false,
  streamPartSizeBytes: PART,
  appendMode: 'off',
  checksumAlgorithm: 'md5',
  maxBufferBytes: 4 * PART,
};

function sha256Of(content: Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

function bytesOf(chunks: readonly ObjectChunk[]): Buffer {
  return Buffer.concat(
    chunks.map((chunk) => (typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk)),
  );
}

async function* streamOf<T extends ObjectChunk>(chunks: readonly T[]): AsyncGenerator<T> {
  for (const chunk of chunks) yield chunk;
}

/** `content` cut into chunks of odd sizes, none a divisor of the part size. */
function oddChunks(content: Buffer): Buffer[] {
  const sizes = [777_777, 1, 123_457, 2 * MiB + 3, 65_537];
  const chunks: Buffer[] = [];
  for (let offset = 0, i = 0; offset < content.length; i++) {
    const chunk = content.subarray(offset, offset + sizes[i % sizes.length]!);
    chunks.push(chunk);
    offset += chunk.length;
  }
  return chunks;
}

describe('writing an object from a stream', () => {
  const checkClient = testS3Client();
  const { observer, counts } = requestCounter();
  const client = createS3Client(testS3Settings(), { maxSockets: 8, observer });
  const buffers = new BufferPool(settings.maxBufferBytes);
  const uploader = createUploader(client, settings, createLogger('silent'), buffers);
  const never = new AbortController().signal;
  let bucket: string;

  const target = (key: string) => ({ bucket, key, objectProperties: NO_OBJECT_PROPERTIES });

  async function head(key: string) {
    return checkClient.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  }

  /** Neither an object at `key` nor a multipart upload in the bucket, and every buffer returned. */
  async function assertNothingLeft(key: string): Promise<void> {
    assert.deepEqual(await listMultipartUploads(checkClient, bucket), [], 'no multipart upload left');
    assert.ok(!(await listKeys(checkClient, bucket)).includes(key), 'no object written');
    assert.equal(buffers.leasedBytes, 0, 'every buffer back in the pool');
  }

  before(async () => {
    bucket = await createTestBucket(checkClient, 'stream-object');
  });

  after(async () => {
    await deleteBucket(checkClient, bucket);
    client.destroy();
    checkClient.destroy();
  });

  beforeEach(() => counts.clear());

  it('writes a small stream, strings as UTF-8, with one PutObject carrying its SHA-256', async () => {
    const chunks: ObjectChunk[] = [
      '{"files":[',
      randomBytes(3000),
      '"naïve/résumé.txt","日本語/ファイル.bin","🎉.json"',
      randomBytes(1500),
      '',
      ']}\n',
    ];
    const content = bytesOf(chunks);

    const written = await uploader.writeObject(target('manifests/small.json'), streamOf(chunks), never);

    assert.deepEqual(written, {
      etag: md5Of(content).hex,
      validation: 'etag',
      sha256: sha256Of(content),
      size: content.length,
      parts: 0,
    });
    assert.equal(counts.get('PutObjectCommand'), 1);
    assert.equal(counts.get('CreateMultipartUploadCommand'), undefined);
    assert.deepEqual(await getObjectBytes(checkClient, bucket, 'manifests/small.json'), content);
    const stored = await head('manifests/small.json');
    assert.equal(stored.Metadata?.sha256, sha256Of(content), 'the SHA-256 metadata is set');
    assert.equal(stored.ContentType, 'application/json');
    assert.equal(buffers.leasedBytes, 0);
  });

  it('writes a stream of exactly one part with one PutObject', async () => {
    const content = randomBytes(PART);

    const written = await uploader.writeObject(target('one-part.bin'), streamOf(oddChunks(content)), never);

    assert.deepEqual([written.parts, written.size, written.etag], [0, PART, md5Of(content).hex]);
    assert.equal(counts.get('PutObjectCommand'), 1);
    assert.equal(counts.get('CreateMultipartUploadCommand'), undefined);
    assert.deepEqual(await getObjectBytes(checkClient, bucket, 'one-part.bin'), content);
  });

  it('writes a stream longer than two parts as a multipart upload of three, in two buffers', async () => {
    const content = randomBytes(12 * MiB);
    const pool = new BufferPool(settings.maxBufferBytes);
    const pooled = createUploader(client, settings, createLogger('silent'), pool);

    const written = await pooled.writeObject(
      target('manifests/large.json'),
      streamOf(oddChunks(content)),
      never,
      {
        partSize: PART,
      },
    );

    const md5s = [0, PART, 2 * PART].map((offset) => md5Of(content.subarray(offset, offset + PART)).hex);
    assert.deepEqual(written, {
      etag: multipartEtag(md5s),
      validation: 'etag',
      sha256: sha256Of(content),
      size: content.length,
      parts: 3,
    });
    assert.deepEqual(
      ['CreateMultipartUpload', 'UploadPart', 'CompleteMultipartUpload', 'PutObject'].map((name) =>
        counts.get(`${name}Command`),
      ),
      [1, 3, 1, undefined],
    );
    assert.deepEqual(await getObjectBytes(checkClient, bucket, 'manifests/large.json'), content);
    assert.deepEqual(await listMultipartUploads(checkClient, bucket), []);
    const stored = await head('manifests/large.json');
    assert.equal(normalizeEtag(stored.ETag ?? ''), written.etag);
    assert.ok(pool.peakLeasedBytes <= 2 * PART, `at most two parts leased (${pool.peakLeasedBytes})`);
    assert.equal(pool.leasedBytes, 0);
  });

  it('aborts the multipart upload and rethrows when the source fails after a part was sent', async () => {
    const failure = new Error('the database went away');
    const content = randomBytes(11 * MiB);
    async function* failing(): AsyncGenerator<Buffer> {
      // Past 10 MiB the second part is handed over, which waits for the first one to be stored.
      yield* streamOf(oddChunks(content));
      throw failure;
    }

    await assert.rejects(uploader.writeObject(target('failed.json'), failing(), never), (error) => {
      assert.equal(error, failure);
      return true;
    });

    assert.ok((counts.get('UploadPartCommand') ?? 0) >= 1, 'a part was sent');
    assert.equal(counts.get('AbortMultipartUploadCommand'), 1);
    await assertNothingLeft('failed.json');
  });

  it('rejects with an AbortError when aborted, and leaves nothing behind', async () => {
    const controller = new AbortController();
    const content = randomBytes(11 * MiB);
    async function* aborted(): AsyncGenerator<Buffer> {
      yield* streamOf(oddChunks(content));
      controller.abort();
      yield randomBytes(1000);
    }

    await assert.rejects(uploader.writeObject(target('aborted.json'), aborted(), controller.signal), {
      name: 'AbortError',
    });

    assert.ok((counts.get('UploadPartCommand') ?? 0) >= 1, 'a part was sent');
    assert.equal(counts.get('AbortMultipartUploadCommand'), 1);
    await assertNothingLeft('aborted.json');
  });

  it('writes an empty stream as an empty object', async () => {
    const written = await uploader.writeObject(target('empty.json'), streamOf([]), never);

    assert.deepEqual(written, {
      etag: md5Of(Buffer.alloc(0)).hex,
      validation: 'etag',
      sha256: sha256Of(Buffer.alloc(0)),
      size: 0,
      parts: 0,
    });
    assert.equal((await getObjectBytes(checkClient, bucket, 'empty.json')).length, 0);
    assert.equal((await head('empty.json')).ContentLength, 0);
  });

  it('fails with a permanent S3RequestError when the bucket does not exist', async () => {
    const missing = { ...target('nowhere.json'), bucket: uniqueBucketName('missing') };

    await assert.rejects(uploader.writeObject(missing, streamOf(['{}']), never), (error) => {
      assert.ok(error instanceof S3RequestError);
      assert.deepEqual([error.kind, error.code], ['permanent', 'NoSuchBucket']);
      return true;
    });
  });
});
