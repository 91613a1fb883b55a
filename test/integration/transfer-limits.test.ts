// The uploader at S3's size limits, against a real S3 server (Swift's S3 API): a file over 5 TiB is
// refused before any request, and a part larger than MAX_BUFFER_BYTES (as the parts of a file of
// 2.5 TiB and more are) is read and sent in pieces without the pool ever lending more than it holds.
// The pool is a few MiB and parts a few tens of MiB, so that the same path runs on small files.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { TransferSettings } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { BufferPool } from '../../src/transfer/buffer-pool.js';
import { md5Of, multipartEtag } from '../../src/transfer/checksums.js';
import { FileChangedError, ObjectTooLargeError } from '../../src/transfer/errors.js';
import { MAX_OBJECT_SIZE } from '../../src/transfer/part-plan.js';
import { createS3Client } from '../../src/transfer/s3-client.js';
import type { FileTransfer } from '../../src/transfer/types.js';
import { createUploader } from '../../src/transfer/uploader.js';
import { startFaultProxy } from '../support/fault-proxy.js';
import { waitFor } from '../support/poll.js';
import {
  createTestBucket,
  getObjectBytes,
  listMultipartUploads,
  testS3,
  testS3Client,
  testS3Settings,
} from '../support/s3.js';
import { countCommands, recorder, removeBucket } from '../support/transfer-recorder.js';
import { NO_OBJECT_PROPERTIES } from '../../src/domain/object-properties.js';

const MiB = 1024 * 1024;
const POOL = 8 * MiB;
const PART = 24 * MiB;

const settings: TransferSettings = {
  multipartThresholdBytes: 5 * MiB,
  partSizeBytes: PART,
  maxConcurrentParts: 4,
  retryMaxAttempts: 3,
  retryBaseDelayMs: 10,
  streamGrowingFiles: true,
  streamPartSizeBytes: 5 * MiB,
  appendMode: 'off',
  checksumAlgorithm: 'md5',
  maxBufferBytes: POOL,
};

function expectedMultipartEtag(content: Buffer, partSize: number): string {
  const md5s: string[] = [];
  for (let offset = 0; offset < content.length; offset += partSize) {
    md5s.push(md5Of(content.subarray(offset, offset + partSize)).hex);
  }
  return multipartEtag(md5s);
}

describe('transfer at S3 size limits', () => {
  const checkClient = testS3Client();
  let bucket: string;
  let folder: string;

  async function writeRandomFile(name: string, size: number): Promise<{ filePath: string; content: Buffer }> {
    const filePath = path.join(folder, name);
    const content = randomBytes(size);
    await writeFile(filePath, content);
    return { filePath, content };
  }

  async function transferFor(filePath: string, key: string, stream = false): Promise<FileTransfer> {
    const stats = await stat(filePath);
    const signal = new AbortController().signal;
    const version = { size: stats.size, mtimeMs: stats.mtimeMs, ino: stats.ino, ctimeMs: stats.ctimeMs };
    return {
      filePath,
      bucket,
      key,
      objectProperties: NO_OBJECT_PROPERTIES,
      ...version,
      stream,
      settleMs: 0,
      previous: undefined,
      signal,
    };
  }

  async function objectExists(key: string): Promise<boolean> {
    try {
      await checkClient.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return true;
    } catch (error) {
      if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404)
        return false;
      throw error;
    }
  }

  /** An uploader with its own client and pool, so that the pool's accounting is this test's alone. */
  function uploaderWith(overrides: Partial<TransferSettings> = {}, client?: S3Client) {
    const s3 = client ?? createS3Client(testS3Settings(), { maxSockets: 8 });
    const buffers = new BufferPool(POOL);
    const uploader = createUploader(s3, { ...settings, ...overrides }, createLogger('silent'), buffers);
    return { s3, buffers, uploader };
  }

  before(async () => {
    bucket = await createTestBucket(checkClient, 'limits');
    folder = await mkdtemp(path.join(tmpdir(), 'transfer-limits-'));
  });

  after(async () => {
    await removeBucket(checkClient, bucket);
    await rm(folder, { recursive: true, force: true });
    checkClient.destroy();
  });

  it('refuses a file over 5 TiB at once, with a clear message, before any request reaches S3', async () => {
    const proxy = await startFaultProxy(testS3().endpoint);
    const { s3, uploader } = uploaderWith(
      {},
      createS3Client(testS3Settings(proxy.endpoint), { maxSockets: 4 }),
    );
    try {
      const filePath = path.join(folder, 'over-5-tib.bin');
      await writeFile(filePath, '');
      await truncate(filePath, MAX_OBJECT_SIZE + 1); // sparse: no disk used
      const { listener, recorded } = recorder();
      await assert.rejects(
        uploader.upload(await transferFor(filePath, 'over-5-tib.bin'), undefined, listener),
        {
          name: 'ObjectTooLargeError',
          message: `${filePath} is 5497558138881 bytes; S3 stores objects of at most 5 TiB (5,497,558,138,880 bytes)`,
        },
      );
      assert.deepEqual(proxy.log, [], 'no request at all');
      assert.deepEqual(recorded.created, []);
    } finally {
      s3.destroy();
      await proxy.close();
    }
  });

  it('refuses a file streamed as it grows once it grows past 5 TiB, and aborts its upload', async () => {
    const { s3, uploader } = uploaderWith({ maxBufferBytes: POOL });
    try {
      const filePath = path.join(folder, 'growing-past-5-tib.bin');
      await writeFile(filePath, randomBytes(6 * MiB));
      const transfer = { ...(await transferFor(filePath, 'growing-past-5-tib.bin', true)), settleMs: 60_000 };
      const { listener, recorded } = recorder();
      const upload = uploader.upload(transfer, undefined, listener);
      const outcome = upload.then(
        () => undefined,
        (error: unknown) => error,
      );
      await waitFor(() => recorded.parts.length >= 1, { message: 'the first streamed part is sent' });
      await truncate(filePath, MAX_OBJECT_SIZE + 1);
      const error = await outcome;
      assert.ok(error instanceof ObjectTooLargeError, `refused as too large, not ${String(error)}`);
      assert.equal(error.size, MAX_OBJECT_SIZE + 1);
      assert.equal(recorded.aborted, 1, 'its multipart upload is aborted and forgotten');
      assert.deepEqual(await listMultipartUploads(s3, bucket), []);
      assert.equal(await objectExists('growing-past-5-tib.bin'), false);
    } finally {
      s3.destroy();
    }
  });

  it('sends parts larger than MAX_BUFFER_BYTES in pieces: same bytes and ETag, the pool never lends more than it holds', async () => {
    const { s3, buffers, uploader } = uploaderWith();
    const counts = countCommands(s3);
    try {
      const { filePath, content } = await writeRandomFile('pieces.bin', 2 * PART + 5 * MiB + 123);
      const { listener, recorded } = recorder();
      const result = await uploader.upload(await transferFor(filePath, 'pieces.bin'), undefined, listener);
      assert.equal(result.etag, expectedMultipartEtag(content, PART));
      assert.equal(result.sha256, createHash('sha256').update(content).digest('hex'));
      assert.equal(result.bytesSent, content.length);
      assert.deepEqual(
        recorded.parts.map((part) => part.size).sort((a, b) => a - b),
        [5 * MiB + 123, PART, PART],
      );
      assert.equal(counts.get('UploadPartCommand'), 3);
      assert.deepEqual(await getObjectBytes(checkClient, bucket, 'pieces.bin'), content);
      assert.ok(buffers.peakLeasedBytes > 0);
      assert.ok(buffers.peakLeasedBytes <= POOL, `peak ${buffers.peakLeasedBytes} <= ${POOL}`);
      assert.equal(buffers.leasedBytes, 0);
    } finally {
      s3.destroy();
    }
  });

  for (const [algorithm, checksumMode] of [
    ['crc32c', 'when_required'],
    ['sha256', 'when_required'],
    ['md5', 'when_supported'],
  ] as const) {
    it(`sends a part in pieces with the ${algorithm} checksum computed over its bytes (S3_CHECKSUM_MODE=${checksumMode})`, async () => {
      const client = createS3Client({ ...testS3Settings(), checksumMode }, { maxSockets: 4 });
      const sent: Record<string, string>[] = [];
      client.middlewareStack.add(
        (next, context) => async (args) => {
          const { headers } = args.request as { headers: Record<string, string> };
          if (context.commandName === 'UploadPartCommand') sent.push({ ...headers });
          return next(args);
        },
        { step: 'finalizeRequest', name: 'testHeaderRecorder' },
      );
      const { s3, buffers, uploader } = uploaderWith({ checksumAlgorithm: algorithm }, client);
      try {
        const { filePath, content } = await writeRandomFile(`pieces-${algorithm}.bin`, PART + 6 * MiB);
        const result = await uploader.upload(
          await transferFor(filePath, `pieces-${algorithm}.bin`),
          undefined,
          recorder().listener,
        );
        assert.equal(result.etag, expectedMultipartEtag(content, PART));
        assert.deepEqual(await getObjectBytes(checkClient, bucket, `pieces-${algorithm}.bin`), content);
        assert.ok(buffers.peakLeasedBytes <= POOL);
        // The header the SDK would have computed, and no aws-chunked framing of the streamed body.
        const header = `x-amz-checksum-${algorithm === 'md5' ? 'crc32' : algorithm}`;
        assert.equal(sent.length, 2);
        for (const headers of sent) {
          assert.equal(typeof headers[header], 'string', header);
          assert.equal(headers['content-encoding'], undefined);
        }
        const lengths = sent.map((headers) => Number(headers['content-length'])).sort((a, b) => a - b);
        assert.deepEqual(lengths, [6 * MiB, PART]);
      } finally {
        s3.destroy();
      }
    });
  }

  it('reads a part sent in pieces again when S3 refuses it (BadDigest), since a stream cannot be sent twice', async () => {
    const client = createS3Client(testS3Settings(), { maxSockets: 4 });
    let corrupted = 0;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const headers = (args.request as { headers?: Record<string, string> }).headers;
        if (context.commandName === 'UploadPartCommand' && corrupted === 0 && headers?.['content-md5']) {
          corrupted++;
          headers['content-md5'] = md5Of(Buffer.from('something else')).base64;
        }
        return next(args);
      },
      { step: 'build', name: 'testCorruptContentMd5' },
    );
    const { s3, uploader } = uploaderWith({ maxConcurrentParts: 1 }, client);
    const counts = countCommands(s3);
    try {
      const { filePath, content } = await writeRandomFile('pieces-retried.bin', PART + 6 * MiB);
      const result = await uploader.upload(
        await transferFor(filePath, 'pieces-retried.bin'),
        undefined,
        recorder().listener,
      );
      assert.equal(corrupted, 1);
      assert.equal(counts.get('UploadPartCommand'), 3, 'two parts, the first one twice');
      assert.equal(result.etag, expectedMultipartEtag(content, PART));
      assert.deepEqual(await getObjectBytes(checkClient, bucket, 'pieces-retried.bin'), content);
    } finally {
      s3.destroy();
    }
  });

  it('does not complete a part sent in pieces whose bytes changed between the two reads', async () => {
    // The request of part 1 is held back by the proxy after its first read: the file is rewritten
    // then, at the end of the part, with its size and modification time kept.
    const bigPart = 64 * MiB;
    const proxy = await startFaultProxy(testS3().endpoint);
    proxy.inject({
      method: 'PUT',
      where: (request) => request.query.get('partNumber') === '1',
      times: 1,
      fault: { type: 'delay', ms: 4000 },
    });
    const client = createS3Client(testS3Settings(proxy.endpoint), { maxSockets: 4 });
    const { s3, buffers, uploader } = uploaderWith({ partSizeBytes: bigPart, maxConcurrentParts: 1 }, client);
    try {
      const { filePath } = await writeRandomFile('pieces-changed.bin', bigPart + 6 * MiB);
      // Whole seconds, which utimes sets back exactly.
      const mtime = Math.floor(Date.now() / 1000) - 60;
      await utimes(filePath, mtime, mtime);
      const transfer = await transferFor(filePath, 'pieces-changed.bin');
      const { listener, recorded } = recorder();
      const outcome = uploader.upload(transfer, undefined, listener).then(
        () => undefined,
        (error: unknown) => error,
      );
      await waitFor(() => proxy.log.some((r) => r.operation === 'UploadPart'), {
        message: 'part 1 was hashed and its request sent',
      });
      const handle = await open(filePath, 'r+');
      try {
        await handle.write(randomBytes(MiB), 0, MiB, bigPart - 2 * MiB);
      } finally {
        await handle.close();
      }
      await utimes(filePath, mtime, mtime);
      assert.equal((await stat(filePath)).mtimeMs, transfer.mtimeMs, 'the change is invisible to stat');
      const error = await outcome;
      assert.ok(error instanceof FileChangedError, `the file counts as changed, not ${String(error)}`);
      assert.match(error.message, /read other bytes than the first read of the same part/);
      assert.deepEqual(recorded.parts, [], 'no part was stored');
      assert.equal(await objectExists('pieces-changed.bin'), false);
      assert.equal(buffers.leasedBytes, 0);
    } finally {
      s3.destroy();
      await proxy.close();
    }
  });
});
