// Files uploaded while they grow, and appends to objects uploaded before, against a real S3 server
// (Swift's S3 API). Parts are S3's minimum (5 MiB) to keep the files small.
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { appendFile, mkdtemp, open, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TransferSettings } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { FileRewrittenError } from '../../src/transfer/errors.js';
import { createS3Client } from '../../src/transfer/s3-client.js';
import type { FileTransfer, PreviousUpload, ResumeState } from '../../src/transfer/types.js';
import { createUploader } from '../../src/transfer/uploader.js';
import { startFaultProxy } from '../support/fault-proxy.js';
import { startGrowingWrite } from '../support/growing-writer.js';
import { waitFor } from '../support/poll.js';
import {
  createTestBucket,
  getObjectBytes,
  listMultipartUploads,
  testS3,
  testS3Client,
  testS3Settings,
} from '../support/s3.js';
import { countCommands, recorder, removeBucket, sentContent } from '../support/transfer-recorder.js';
import { NO_OBJECT_PROPERTIES } from '../../src/domain/object-properties.js';

const MiB = 1024 * 1024;
const PART = 5 * MiB;
const SETTLE_MS = 800;

const settings: TransferSettings = {
  multipartThresholdBytes: PART,
  partSizeBytes: PART,
  maxConcurrentParts: 2,
  retryMaxAttempts: 3,
  retryBaseDelayMs: 10,
  streamGrowingFiles: true,
  streamPartSizeBytes: PART,
  appendMode: 'auto',
  checksumAlgorithm: 'md5',
  maxBufferBytes: 4 * PART,
};

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

describe('uploading growing files against S3', () => {
  const checkClient = testS3Client();
  const client = createS3Client(testS3Settings(), { maxSockets: 8 });
  const counts = countCommands(client);
  const uploader = createUploader(client, settings, createLogger('silent'));
  let bucket: string;
  let folder: string;

  async function transferFor(
    filePath: string,
    key: string,
    options: { stream?: boolean; previous?: PreviousUpload; signal?: AbortSignal } = {},
  ): Promise<FileTransfer> {
    const stats = await stat(filePath);
    return {
      filePath,
      bucket,
      key,
      objectProperties: NO_OBJECT_PROPERTIES,
      size: stats.size,
      mtimeMs: stats.mtimeMs,
      ino: stats.ino,
      ctimeMs: stats.ctimeMs,
      stream: options.stream ?? true,
      settleMs: SETTLE_MS,
      previous: options.previous,
      signal: options.signal ?? new AbortController().signal,
    };
  }

  /** A file of random bytes uploaded whole, and what an append would copy from. */
  async function uploadedFile(
    name: string,
    size: number,
  ): Promise<{ filePath: string; previous: PreviousUpload }> {
    const filePath = path.join(folder, name);
    await writeFile(filePath, randomBytes(size));
    const transfer = await transferFor(filePath, name, { stream: false });
    const uploaded = await uploader.upload(transfer, undefined, recorder().listener);
    const { etag, sha256 } = sentContent(uploaded);
    return { filePath, previous: { size: uploaded.size, etag, sha256 } };
  }

  before(async () => {
    bucket = await createTestBucket(checkClient, 'growing');
    folder = await mkdtemp(path.join(tmpdir(), 'growing-test-'));
  });

  after(async () => {
    await removeBucket(checkClient, bucket);
    await rm(folder, { recursive: true, force: true });
    client.destroy();
    checkClient.destroy();
  });

  beforeEach(() => counts.clear());

  it('sends each part while the file is written, then the tail once it settles', async () => {
    const filePath = path.join(folder, 'streamed.bin');
    const first = randomBytes(PART + 1000);
    await writeFile(filePath, first);
    const { listener, recorded } = recorder();
    const partTimes: number[] = [];
    const upload = uploader.upload(await transferFor(filePath, 'streamed.bin'), undefined, {
      ...listener,
      partUploaded: async (part) => {
        partTimes.push(Date.now());
        await listener.partUploaded(part);
      },
    });
    const written = await startGrowingWrite(filePath, {
      totalBytes: 8 * (2 * MiB + 333),
      chunkBytes: 2 * MiB + 333,
      intervalMs: 150,
      append: true,
    }).done;
    const content = await readFile(filePath);
    const result = await upload;

    assert.equal(result.method, 'streamed');
    assert.equal(result.size, content.length);
    assert.equal(result.sha256, sha256(content));
    assert.equal(result.bytesSent, content.length, 'every byte sent once');
    assert.equal(content.length, first.length + written.written);
    assert.ok(
      partTimes.filter((time) => time < written.lastWriteAt).length >= 2,
      'parts went up while the file was written',
    );
    assert.deepEqual(await getObjectBytes(checkClient, bucket, 'streamed.bin'), content);
    assert.equal(recorded.created[0]?.streamed, true);
    assert.deepEqual(await listMultipartUploads(checkClient, bucket), []);
  });

  it('appends to an uploaded object by copying its bytes on the server and sending only the new ones', async () => {
    const filePath = path.join(folder, 'appended.bin');
    const original = randomBytes(12 * MiB);
    await writeFile(filePath, original);
    const firstUpload = await uploader.upload(
      await transferFor(filePath, 'appended.bin', { stream: false }),
      undefined,
      recorder().listener,
    );
    assert.equal(firstUpload.method, 'multipart', 'the old object is itself a multipart object');
    const added = randomBytes(7 * MiB + 11);
    await appendFile(filePath, added);
    counts.clear();
    const previous = {
      size: firstUpload.size,
      etag: firstUpload.etag,
      sha256: sentContent(firstUpload).sha256,
    };
    const transfer = await transferFor(filePath, 'appended.bin', { stream: false, previous });
    const result = await uploader.upload(transfer, undefined, recorder().listener);

    const content = Buffer.concat([original, added]);
    assert.equal(result.method, 'append');
    assert.equal(result.bytesCopied, original.length);
    assert.equal(result.bytesSent, added.length, 'only the new bytes crossed the network');
    assert.equal(result.sha256, sha256(content));
    assert.equal(counts.get('UploadPartCopyCommand') !== undefined, true);
    assert.deepEqual(await getObjectBytes(checkClient, bucket, 'appended.bin'), content);
    assert.deepEqual(await listMultipartUploads(checkClient, bucket), []);
  });

  it('uploads the whole file when it no longer starts with the uploaded object', async () => {
    const { filePath, previous } = await uploadedFile('not-an-append.bin', 6 * MiB);
    const content = randomBytes(8 * MiB);
    await writeFile(filePath, content);
    const transfer = await transferFor(filePath, 'not-an-append.bin', { stream: false, previous });
    const result = await uploader.upload(transfer, undefined, recorder().listener);
    assert.equal(result.method, 'multipart');
    assert.equal(result.bytesCopied, 0);
    assert.deepEqual(await getObjectBytes(checkClient, bucket, 'not-an-append.bin'), content);
  });

  it('does not copy from an object that changed in S3 since it was uploaded', async () => {
    const { filePath, previous } = await uploadedFile('changed-in-s3.bin', 6 * MiB);
    // Someone else puts other bytes at the key.
    const other = randomBytes(6 * MiB);
    const otherPath = path.join(folder, 'other.bin');
    await writeFile(otherPath, other);
    await uploader.upload(
      await transferFor(otherPath, 'changed-in-s3.bin', { stream: false }),
      undefined,
      recorder().listener,
    );
    await appendFile(filePath, randomBytes(MiB));
    const content = await readFile(filePath);
    const { listener, recorded } = recorder();
    const result = await uploader.upload(
      await transferFor(filePath, 'changed-in-s3.bin', { stream: false, previous }),
      undefined,
      listener,
    );
    assert.equal(result.bytesCopied, 0);
    assert.equal(recorded.aborted, 1, 'the append upload was aborted');
    assert.deepEqual(await getObjectBytes(checkClient, bucket, 'changed-in-s3.bin'), content);
    assert.deepEqual(await listMultipartUploads(checkClient, bucket), []);
  });

  for (const fault of ['rewritten', 'truncated'] as const) {
    it(`aborts the upload and starts over when the file is ${fault} while it is streamed`, async () => {
      const filePath = path.join(folder, `${fault}.bin`);
      await writeFile(filePath, randomBytes(PART + 10));
      const { listener, recorded } = recorder();
      const upload = uploader.upload(await transferFor(filePath, `${fault}.bin`), undefined, listener);
      await appendFile(filePath, randomBytes(PART));
      await waitFor(() => recorded.parts.length >= 2, { timeoutMs: 20_000, message: 'two parts sent' });
      if (fault === 'rewritten') {
        const handle = await open(filePath, 'r+');
        await handle.write(randomBytes(100), 0, 100, 10);
        await handle.close();
      } else {
        await truncate(filePath, 1000);
      }
      await appendFile(filePath, randomBytes(10)); // still being written
      await assert.rejects(upload, (error: unknown) => {
        assert.ok(error instanceof FileRewrittenError);
        assert.equal(error.how, fault);
        return true;
      });
      assert.equal(recorded.aborted, 1);
      assert.deepEqual(await listMultipartUploads(checkClient, bucket), []);
    });
  }

  it('numbers the parts in file order when they finish out of order', async () => {
    const proxy = await startFaultProxy(testS3().endpoint);
    const slowClient = createS3Client(testS3Settings(proxy.endpoint), { maxSockets: 8 });
    try {
      // Part 1 answers last: parts 2 and 3 finish while it is still in flight.
      proxy.inject({
        method: 'PUT',
        where: (request) => request.query.get('partNumber') === '1',
        times: 1,
        fault: { type: 'delay', ms: 1500 },
      });
      const slow = createUploader(slowClient, { ...settings, maxConcurrentParts: 3 }, createLogger('silent'));
      const filePath = path.join(folder, 'out-of-order.bin');
      const content = randomBytes(4 * PART + 100);
      await writeFile(filePath, content);
      const result = await slow.upload(
        await transferFor(filePath, 'out-of-order.bin'),
        undefined,
        recorder().listener,
      );
      assert.equal(result.method, 'streamed');
      assert.match(result.etag, /-5$/);
      const parts = proxy.log
        .filter((r) => r.operation === 'UploadPart')
        .map((r) => r.query.get('partNumber'));
      assert.deepEqual([...parts].sort(), ['1', '2', '3', '4', '5']);
      assert.deepEqual(await getObjectBytes(checkClient, bucket, 'out-of-order.bin'), content);
    } finally {
      slowClient.destroy();
      await proxy.close();
    }
  });

  it('resumes a stopped streamed upload from the parts S3 holds whose bytes still match', async () => {
    const filePath = path.join(folder, 'resumed.bin');
    const first = randomBytes(3 * PART);
    await writeFile(filePath, first);
    const controller = new AbortController();
    const { listener, recorded } = recorder((_part, soFar) => {
      if (soFar.parts.length >= 2) controller.abort();
    });
    const transfer = await transferFor(filePath, 'resumed.bin', { signal: controller.signal });
    await assert.rejects(uploader.upload(transfer, undefined, listener), { name: 'AbortError' });
    const added = randomBytes(PART + 77);
    await appendFile(filePath, added);
    const content = Buffer.concat([first, added]);
    const created = recorded.created[0];
    assert.ok(created);
    const resume: ResumeState = {
      ...created,
      parts: [...recorded.parts],
      size: transfer.size,
      mtimeMs: transfer.mtimeMs,
      ino: transfer.ino,
      ctimeMs: transfer.ctimeMs,
    };
    counts.clear();
    const { listener: again } = recorder();
    const result = await uploader.upload(await transferFor(filePath, 'resumed.bin'), resume, again);

    assert.equal(result.method, 'streamed');
    assert.ok(result.partsReused >= 2, `reused ${result.partsReused} parts`);
    assert.equal(result.bytesSent, content.length - result.partsReused * PART);
    assert.equal(result.sha256, sha256(content));
    assert.deepEqual(await getObjectBytes(checkClient, bucket, 'resumed.bin'), content);
    assert.deepEqual(await listMultipartUploads(checkClient, bucket), []);
  });

  it('starts over when the saved parts no longer match the file', async () => {
    const filePath = path.join(folder, 'stale.bin');
    await writeFile(filePath, randomBytes(2 * PART));
    const controller = new AbortController();
    const { listener, recorded } = recorder((_part, soFar) => {
      if (soFar.parts.length >= 1) controller.abort();
    });
    const transfer = await transferFor(filePath, 'stale.bin', { signal: controller.signal });
    await assert.rejects(uploader.upload(transfer, undefined, listener), { name: 'AbortError' });
    const content = randomBytes(2 * PART + 5);
    await writeFile(filePath, content); // rewritten while the service was down
    const created = recorded.created[0];
    assert.ok(created);
    const resume: ResumeState = {
      ...created,
      parts: [...recorded.parts],
      size: transfer.size,
      mtimeMs: transfer.mtimeMs,
      ino: transfer.ino,
      ctimeMs: transfer.ctimeMs,
    };
    const { listener: again, recorded: recordedAgain } = recorder();
    const result = await uploader.upload(await transferFor(filePath, 'stale.bin'), resume, again);
    assert.equal(result.partsReused, 0);
    assert.equal(recordedAgain.aborted, 1);
    assert.deepEqual(await getObjectBytes(checkClient, bucket, 'stale.bin'), content);
    assert.deepEqual(await listMultipartUploads(checkClient, bucket), []);
  });
});
