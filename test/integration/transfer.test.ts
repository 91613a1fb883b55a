// The uploader against a real S3 server (Swift's S3 API): content, ETags, resume, stale uploads,
// changed files and permanent errors. Parts are S3's minimum (5 MiB) to keep the files small.
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { appendFile, chmod, mkdtemp, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  HeadObjectCommand,
  PutObjectCommand,
  NoSuchUpload,
  S3ServiceException,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { TransferSettings } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { md5Of, multipartEtag } from '../../src/transfer/checksums.js';
import {
  FileChangedError,
  FileVanishedError,
  S3RequestError,
  classifyS3Error,
} from '../../src/transfer/errors.js';
import { createS3Client } from '../../src/transfer/s3-client.js';
import type { FileTransfer, ResumeState } from '../../src/transfer/types.js';
import { createUploader } from '../../src/transfer/uploader.js';
import {
  createTestBucket,
  getObjectBytes,
  listMultipartUploads,
  testS3Client,
  testS3Settings,
  uniqueBucketName,
} from '../support/s3.js';
import {
  countCommands,
  requestCounter,
  peakInFlight,
  recorder,
  removeBucket,
  sentContent,
  type Recorded,
} from '../support/transfer-recorder.js';
import { NO_OBJECT_PROPERTIES } from '../../src/domain/object-properties.js';

const MiB = 1024 * 1024;
const PART = 5 * MiB;

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

function expectedMultipartEtag(content: Buffer, partSize: number): string {
  const md5s: string[] = [];
  for (let offset = 0; offset < content.length; offset += partSize) {
    md5s.push(md5Of(content.subarray(offset, offset + partSize)).hex);
  }
  return multipartEtag(md5s);
}

describe('transfer against S3', () => {
  const checkClient = testS3Client();
  const { observer, counts } = requestCounter();
  const client = createS3Client(testS3Settings(), { maxSockets: 8, observer });
  const uploader = createUploader(client, settings, createLogger('silent'));
  let bucket: string;
  let folder: string;

  async function writeRandomFile(name: string, size: number): Promise<{ filePath: string; content: Buffer }> {
    const filePath = path.join(folder, name);
    const content = randomBytes(size);
    await writeFile(filePath, content);
    return { filePath, content };
  }

  async function transferFor(
    filePath: string,
    key: string,
    signal = new AbortController().signal,
  ): Promise<FileTransfer> {
    const stats = await stat(filePath);
    const version = { size: stats.size, mtimeMs: stats.mtimeMs, ino: stats.ino, ctimeMs: stats.ctimeMs };
    return {
      filePath,
      bucket,
      key,
      objectProperties: NO_OBJECT_PROPERTIES,
      ...version,
      stream: false,
      settleMs: 0,
      previous: undefined,
      signal,
    };
  }

  function resumeFrom(transfer: FileTransfer, recorded: Recorded, parts = recorded.parts): ResumeState {
    const created = recorded.created.at(-1);
    assert.ok(created, 'a multipart upload was created');
    return {
      ...created,
      parts: [...parts],
      size: transfer.size,
      mtimeMs: transfer.mtimeMs,
      ino: transfer.ino,
      ctimeMs: transfer.ctimeMs,
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

  /** Starts an upload that is aborted as soon as `partsBeforeAbort` parts are reported. */
  async function interruptedUpload(
    transfer: FileTransfer,
    controller: AbortController,
    partsBeforeAbort: number,
  ) {
    const { listener, recorded } = recorder((_part, soFar) => {
      if (soFar.parts.length >= partsBeforeAbort) controller.abort();
    });
    await assert.rejects(uploader.upload(transfer, undefined, listener), { name: 'AbortError' });
    return recorded;
  }

  before(async () => {
    bucket = await createTestBucket(checkClient, 'transfer');
    folder = await mkdtemp(path.join(tmpdir(), 'transfer-test-'));
  });

  after(async () => {
    await removeBucket(checkClient, bucket);
    await rm(folder, { recursive: true, force: true });
    client.destroy();
    checkClient.destroy();
  });

  beforeEach(() => counts.clear());

  it('hashes a file whose ctime alone changed: nothing is sent if its content is the last upload', async () => {
    const { filePath } = await writeRandomFile('hashed.bin', 100 * 1024);
    const modified = new Date('2022-02-02T02:02:02.222Z');
    await utimes(filePath, modified, modified);
    const first = await uploader.upload(
      await transferFor(filePath, 'hashed.bin'),
      undefined,
      recorder().listener,
    );
    const known = sentContent(first);
    const uploadedVersion = await transferFor(filePath, 'hashed.bin');

    await chmod(filePath, 0o600);
    counts.clear();
    const unchanged = await uploader.upload(
      { ...uploadedVersion, hashFirst: known },
      undefined,
      recorder().listener,
    );
    assert.deepEqual(
      [unchanged.method, unchanged.bytesSent, unchanged.sha256],
      ['unchanged', 0, first.sha256],
    );
    assert.equal(unchanged.ctimeMs, (await stat(filePath)).ctimeMs, 'the new ctime is the version recorded');
    assert.equal(counts.size, 0, 'no request to S3');

    // Rewritten in place with the same size and its mtime set back: the hash differs, it is sent.
    const rewritten = randomBytes(100 * 1024);
    await writeFile(filePath, rewritten);
    await utimes(filePath, modified, modified);
    const sent = await uploader.upload(
      { ...uploadedVersion, hashFirst: known },
      undefined,
      recorder().listener,
    );
    const now = await stat(filePath);
    assert.equal(now.mtimeMs, uploadedVersion.mtimeMs, 'the rewrite kept size and mtime');
    assert.deepEqual(
      [sent.method, sent.bytesSent, sent.mtimeMs, sent.ctimeMs],
      ['single', rewritten.length, now.mtimeMs, now.ctimeMs],
    );
    assert.deepEqual(await getObjectBytes(checkClient, bucket, 'hashed.bin'), rewritten);
  });

  it('uploads a small file with one PutObject whose ETag is its MD5', async () => {
    const { filePath, content } = await writeRandomFile('small.bin', 100 * 1024);
    const { listener, recorded } = recorder();
    const result = await uploader.upload(await transferFor(filePath, 'dir/small.bin'), undefined, listener);

    assert.deepEqual(result, {
      etag: md5Of(content).hex,
      validation: 'etag',
      method: 'single',
      bytesSent: content.length,
      bytesCopied: 0,
      partsReused: 0,
      sha256: createHash('sha256').update(content).digest('hex'),
      size: content.length,
      mtimeMs: (await stat(filePath)).mtimeMs,
      ino: (await stat(filePath)).ino,
      ctimeMs: (await stat(filePath)).ctimeMs,
    });
    assert.deepEqual(await getObjectBytes(checkClient, bucket, 'dir/small.bin'), content);
    assert.deepEqual(recorded.bytes, [content.length]);
    assert.equal(counts.get('PutObjectCommand'), 1);
  });

  it('uploads an empty file', async () => {
    const { filePath } = await writeRandomFile('empty.bin', 0);
    const result = await uploader.upload(
      await transferFor(filePath, 'empty.bin'),
      undefined,
      recorder().listener,
    );
    assert.equal(result.etag, md5Of(Buffer.alloc(0)).hex);
    assert.equal((await getObjectBytes(checkClient, bucket, 'empty.bin')).length, 0);
  });

  it('uploads a large file in parts, reports each part, and checks the multipart ETag', async () => {
    const { filePath, content } = await writeRandomFile('large.bin', 13 * MiB);
    const { listener, recorded } = recorder();
    const result = await uploader.upload(await transferFor(filePath, 'large.bin'), undefined, listener);

    assert.equal(result.method, 'multipart');
    assert.equal(result.validation, 'etag');
    assert.match(result.etag, /-3$/);
    assert.equal(result.etag, expectedMultipartEtag(content, PART));
    assert.equal(result.bytesSent, content.length);
    assert.equal(result.sha256, createHash('sha256').update(content).digest('hex'), 'hashed in file order');
    assert.deepEqual(await getObjectBytes(checkClient, bucket, 'large.bin'), content);

    assert.equal(recorded.created.length, 1);
    assert.equal(recorded.created[0]?.partSize, PART);
    const parts = [...recorded.parts].sort((a, b) => a.partNumber - b.partNumber);
    assert.deepEqual(
      parts.map((p) => [p.partNumber, p.size, p.etag]),
      [0, 1, 2].map((i) => [
        i + 1,
        Math.min(PART, content.length - i * PART),
        md5Of(content.subarray(i * PART, (i + 1) * PART)).hex,
      ]),
    );
    assert.equal(recorded.bytes.at(-1), content.length);
    assert.equal(counts.get('UploadPartCommand'), 3);
    assert.deepEqual(await listMultipartUploads(checkClient, bucket), []);
  });

  it('resumes an interrupted upload, sending only the parts S3 does not hold', async () => {
    const { filePath, content } = await writeRandomFile('resumed.bin', 16 * MiB + 7);
    const controller = new AbortController();
    const transfer = await transferFor(filePath, 'resumed.bin', controller.signal);
    const first = await interruptedUpload(transfer, controller, 1);
    const partsSentBefore = counts.get('UploadPartCommand') ?? 0;
    assert.ok(partsSentBefore >= 1 && partsSentBefore <= 2, 'the abort came after one or two parts');

    counts.clear();
    const { listener, recorded } = recorder();
    const resumed = { ...transfer, signal: new AbortController().signal };
    const result = await uploader.upload(resumed, resumeFrom(transfer, first), listener);

    // The one part recorded is trusted; a second part stored by S3 but cut off before it was
    // recorded (two were in flight) is reused only if its bytes hash to S3's ETag.
    assert.equal(recorded.created.length, 0, 'the saved upload was resumed, not replaced');
    assert.equal(counts.get('ListPartsCommand'), 1);
    assert.equal((counts.get('UploadPartCommand') ?? 0) + result.partsReused, 4);
    assert.ok(result.partsReused >= first.parts.length);
    assert.equal(result.bytesSent, content.length - result.partsReused * PART);
    assert.equal(
      result.sha256,
      createHash('sha256').update(content).digest('hex'),
      'resumed parts are hashed too',
    );
    assert.equal(
      recorded.bytes[0],
      first.parts.length * PART,
      'trusted parts count as uploaded from the start',
    );
    assert.equal(result.etag, expectedMultipartEtag(content, PART));
    assert.deepEqual(await getObjectBytes(checkClient, bucket, 'resumed.bin'), content);
    assert.deepEqual(await listMultipartUploads(checkClient, bucket), []);
  });

  it('reuses a part S3 holds but the saved state does not, once its local bytes hash to its ETag', async () => {
    const { filePath, content } = await writeRandomFile('unsaved-part.bin', 11 * MiB);
    const controller = new AbortController();
    const transfer = await transferFor(filePath, 'unsaved-part.bin', controller.signal);
    const first = await interruptedUpload(transfer, controller, 1);

    counts.clear();
    const { listener, recorded } = recorder();
    // As if the process died after S3 stored the part, before it was saved.
    const result = await uploader.upload(
      { ...transfer, signal: new AbortController().signal },
      resumeFrom(transfer, first, []),
      listener,
    );

    assert.ok(result.partsReused >= 1);
    assert.equal((counts.get('UploadPartCommand') ?? 0) + result.partsReused, 3);
    assert.equal(recorded.parts.length, 3, 'a reused part is reported so that it is saved');
    assert.deepEqual(await getObjectBytes(checkClient, bucket, 'unsaved-part.bin'), content);
  });

  it('aborts a saved upload of another version of the file and starts over', async () => {
    const { filePath, content } = await writeRandomFile('stale.bin', 11 * MiB);
    const controller = new AbortController();
    const oldTransfer = await transferFor(filePath, 'stale.bin', controller.signal);
    const first = await interruptedUpload(oldTransfer, controller, 1);
    const stale = resumeFrom(oldTransfer, first);

    const newTime = new Date(Math.floor(oldTransfer.mtimeMs) + 60_000);
    await utimes(filePath, newTime, newTime);
    counts.clear();
    const { listener, recorded } = recorder();
    const result = await uploader.upload(await transferFor(filePath, 'stale.bin'), stale, listener);

    assert.equal(counts.get('AbortMultipartUploadCommand'), 1);
    assert.equal(recorded.created.length, 1);
    assert.notEqual(recorded.created[0]?.s3UploadId, stale.s3UploadId);
    assert.equal(counts.get('UploadPartCommand'), 3);
    assert.equal(result.partsReused, 0);
    assert.deepEqual(await getObjectBytes(checkClient, bucket, 'stale.bin'), content);
    assert.deepEqual(await listMultipartUploads(checkClient, bucket), []);
  });

  it('starts a new upload when S3 no longer knows the saved one', async () => {
    const { filePath, content } = await writeRandomFile('forgotten.bin', 11 * MiB);
    const controller = new AbortController();
    const transfer = await transferFor(filePath, 'forgotten.bin', controller.signal);
    const first = await interruptedUpload(transfer, controller, 1);
    const saved = resumeFrom(transfer, first);
    await uploader.abortMultipart(bucket, 'forgotten.bin', saved.s3UploadId);

    const { listener, recorded } = recorder();
    const result = await uploader.upload(
      { ...transfer, signal: new AbortController().signal },
      saved,
      listener,
    );
    assert.equal(recorded.created.length, 1);
    assert.equal(result.partsReused, 0);
    assert.deepEqual(await getObjectBytes(checkClient, bucket, 'forgotten.bin'), content);
  });

  it('finds the object of a saved upload that was completed before its completion was recorded', async () => {
    const { filePath, content } = await writeRandomFile('completed-before.bin', 11 * MiB);
    const transfer = await transferFor(filePath, 'completed-before.bin');
    const first = recorder();
    await uploader.upload(transfer, undefined, first.listener);
    // As after a crash between Complete and its record: every part saved, the upload unknown to S3.
    const saved = { ...resumeFrom(transfer, first.recorded), s3UploadId: 'completed-and-gone' };
    counts.clear();

    const { listener, recorded } = recorder();
    const result = await uploader.upload(transfer, saved, listener);
    assert.equal(result.bytesSent, 0);
    assert.equal(result.etag, expectedMultipartEtag(content, PART));
    assert.equal(recorded.created.length, 0, 'no new multipart upload');
    assert.equal(counts.get('UploadPartCommand') ?? 0, 0);
    assert.equal(counts.get('CompleteMultipartUploadCommand') ?? 0, 0);

    // When the object at the key is another one, the file is sent again.
    await checkClient.send(
      new PutObjectCommand({ Bucket: bucket, Key: 'completed-before.bin', Body: Buffer.from('other') }),
    );
    const again = recorder();
    const resent = await uploader.upload(transfer, saved, again.listener);
    assert.equal(resent.bytesSent, content.length);
    assert.equal(again.recorded.created.length, 1);
    assert.deepEqual(await getObjectBytes(checkClient, bucket, 'completed-before.bin'), content);
  });

  it('does not complete a multipart upload when the file changes while it is read', async () => {
    const { filePath } = await writeRandomFile('changing.bin', 11 * MiB);
    const transfer = await transferFor(filePath, 'changing.bin');
    const { listener, recorded } = recorder(async (_part, soFar) => {
      if (soFar.parts.length === 1) await appendFile(filePath, 'more');
    });
    // One part at a time: with two, a busy machine may have read the second and third parts before
    // the first is recorded, and the change is then only seen after reading.
    const onePartAtATime = createUploader(
      client,
      { ...settings, maxConcurrentParts: 1 },
      createLogger('silent'),
    );

    await assert.rejects(onePartAtATime.upload(transfer, undefined, listener), (error: unknown) => {
      assert.ok(error instanceof FileChangedError, `expected FileChangedError, got ${String(error)}`);
      // Seen before the next part is read: the part after the change is never sent.
      assert.equal(error.moment, 'while reading');
      assert.equal(error.found?.size, transfer.size + 4);
      return true;
    });
    assert.equal(counts.get('UploadPartCommand'), 1, 'the second part was not sent');
    assert.equal(counts.get('CompleteMultipartUploadCommand'), undefined);
    assert.equal(await objectExists('changing.bin'), false);
    // The upload is left for the engine to abort or resume.
    const s3UploadId = recorded.created[0]?.s3UploadId;
    assert.ok(s3UploadId);
    assert.ok((await listMultipartUploads(checkClient, bucket)).some((u) => u.UploadId === s3UploadId));
    await uploader.abortMultipart(bucket, 'changing.bin', s3UploadId);
    assert.ok(!(await listMultipartUploads(checkClient, bucket)).some((u) => u.UploadId === s3UploadId));
  });

  it('refuses a file that is not the version the transfer names, before any request', async () => {
    const { filePath } = await writeRandomFile('other-version.bin', 1024);
    const transfer = await transferFor(filePath, 'other-version.bin');
    await assert.rejects(
      uploader.upload({ ...transfer, mtimeMs: transfer.mtimeMs - 1000 }, undefined, recorder().listener),
      FileChangedError,
    );
    await assert.rejects(
      uploader.upload({ ...transfer, size: 6 * MiB }, undefined, recorder().listener),
      FileChangedError,
    );
    await assert.rejects(
      uploader.upload(
        { ...transfer, filePath: path.join(folder, 'missing.bin') },
        undefined,
        recorder().listener,
      ),
      FileVanishedError,
    );
    assert.equal(counts.size, 0, 'no request was sent');
  });

  it('never follows a symbolic link, in place of the file or of a folder on its path', async () => {
    const outside = await mkdtemp(path.join(tmpdir(), 'transfer-outside-'));
    try {
      const secret = path.join(outside, 'secret.txt');
      await writeFile(secret, 'outside the source folder');
      const stats = await stat(secret);
      const version = { size: stats.size, mtimeMs: stats.mtimeMs, ino: stats.ino, ctimeMs: stats.ctimeMs };
      const linkedFile = path.join(folder, 'linked-file.txt');
      await symlink(secret, linkedFile);
      await symlink(outside, path.join(folder, 'linked-folder'));
      for (const filePath of [linkedFile, path.join(folder, 'linked-folder', 'secret.txt')]) {
        const transfer = {
          filePath,
          bucket,
          key: 'never.txt',
          objectProperties: NO_OBJECT_PROPERTIES,
          ...version,
          stream: false,
          settleMs: 0,
          previous: undefined,
          signal: new AbortController().signal,
        };
        await assert.rejects(uploader.upload(transfer, undefined, recorder().listener), FileVanishedError);
      }
      assert.equal(counts.size, 0, 'no request was sent');
      assert.equal(await objectExists('never.txt'), false);
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });

  it('fails at once, with a clear message, when the bucket does not exist', async () => {
    const { filePath } = await writeRandomFile('nowhere.bin', 1024);
    const missingBucket = uniqueBucketName('missing');
    const transfer = { ...(await transferFor(filePath, 'nowhere.bin')), bucket: missingBucket };

    await assert.rejects(uploader.upload(transfer, undefined, recorder().listener), (error: unknown) => {
      assert.ok(error instanceof S3RequestError, `expected S3RequestError, got ${String(error)}`);
      assert.equal(classifyS3Error(error), 'permanent');
      assert.equal(error.code, 'NoSuchBucket');
      assert.match(
        error.message,
        new RegExp(`bucket '${missingBucket}' does not exist \\(NoSuchBucket, HTTP 404\\)`),
      );
      return true;
    });
    assert.equal(counts.get('PutObjectCommand'), 1, 'a permanent error is not retried');

    const { filePath: largePath } = await writeRandomFile('nowhere-large.bin', 6 * MiB);
    const largeTransfer = { ...(await transferFor(largePath, 'nowhere-large.bin')), bucket: missingBucket };
    await assert.rejects(uploader.upload(largeTransfer, undefined, recorder().listener), /NoSuchBucket/);
    assert.equal(counts.get('CreateMultipartUploadCommand'), 1);
  });

  it('treats aborting an upload S3 does not know as done', async () => {
    await uploader.abortMultipart(bucket, 'no-such-key', 'no-such-upload-id');
  });

  it('accepts an object completed by an attempt whose answer was lost', async () => {
    const flakyClient = createS3Client(testS3Settings(), { maxSockets: 4 });
    let completes = 0;
    // The first Complete succeeds on S3 but its answer is lost (a 500 instead); the retry then
    // hears NoSuchUpload, as from AWS once a completed upload id is forgotten.
    flakyClient.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== 'CompleteMultipartUploadCommand') return next(args);
        completes++;
        if (completes > 1) {
          throw new NoSuchUpload({
            message: 'The specified upload does not exist',
            $metadata: { httpStatusCode: 404 },
          });
        }
        await next(args);
        throw new S3ServiceException({
          name: 'InternalError',
          message: 'the answer was lost',
          $fault: 'server',
          $metadata: { httpStatusCode: 500 },
        });
      },
      { step: 'initialize', name: 'testLoseCompleteAnswer' },
    );
    const flakyCounts = countCommands(flakyClient);
    try {
      const flakyUploader = createUploader(flakyClient, settings, createLogger('silent'));
      const { filePath, content } = await writeRandomFile('lost-answer.bin', 11 * MiB);
      const result = await flakyUploader.upload(
        await transferFor(filePath, 'lost-answer.bin'),
        undefined,
        recorder().listener,
      );
      assert.equal(completes, 2);
      assert.equal(flakyCounts.get('HeadObjectCommand'), 1, 'the object itself was asked for');
      assert.equal(result.etag, expectedMultipartEtag(content, PART));
      assert.deepEqual(await getObjectBytes(checkClient, bucket, 'lost-answer.bin'), content);
    } finally {
      flakyClient.destroy();
    }
  });

  it('keeps the parts in flight of all files within MAX_BUFFER_BYTES', async () => {
    const files = await Promise.all(
      [0, 1, 2].map((index) => writeRandomFile(`bounded-${index}.bin`, 4 * PART)),
    );
    // Twelve parts, four at a time per file: only the buffer bound holds them back.
    const peakWith = async (maxBufferBytes: number, label: string): Promise<number> => {
      const bounded = createS3Client(testS3Settings(), { maxSockets: 16 });
      const inFlight = peakInFlight(bounded, 'UploadPartCommand');
      try {
        const boundedUploader = createUploader(
          bounded,
          { ...settings, maxConcurrentParts: 4, maxBufferBytes },
          createLogger('silent'),
        );
        await Promise.all(
          files.map(async ({ filePath }, index) =>
            boundedUploader.upload(
              await transferFor(filePath, `${label}-${index}.bin`),
              undefined,
              recorder().listener,
            ),
          ),
        );
      } finally {
        bounded.destroy();
      }
      for (const [index, { content }] of files.entries())
        assert.deepEqual(await getObjectBytes(checkClient, bucket, `${label}-${index}.bin`), content);
      return inFlight.peak;
    };
    assert.equal(await peakWith(2 * PART, 'two-parts'), 2);
    assert.ok((await peakWith(12 * PART, 'twelve-parts')) > 2, 'without the bound more parts go at once');
  });

  it('sends a part again when S3 rejects it as corrupted (BadDigest)', async () => {
    const faultyClient = createS3Client(testS3Settings(), { maxSockets: 4 });
    let corrupted = 0;
    // Fault injection on the wire: the first part goes out with a Content-MD5 that is not its own.
    faultyClient.middlewareStack.add(
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
    const faultyCounts = countCommands(faultyClient);
    try {
      const faultyUploader = createUploader(faultyClient, settings, createLogger('silent'));
      const { filePath, content } = await writeRandomFile('bad-digest.bin', 11 * MiB);
      const result = await faultyUploader.upload(
        await transferFor(filePath, 'bad-digest.bin'),
        undefined,
        recorder().listener,
      );
      assert.equal(corrupted, 1);
      assert.equal(faultyCounts.get('UploadPartCommand'), 4, 'three parts, one of them twice');
      assert.equal(result.etag, expectedMultipartEtag(content, PART));
      assert.deepEqual(await getObjectBytes(checkClient, bucket, 'bad-digest.bin'), content);
    } finally {
      faultyClient.destroy();
    }
  });

  it('uploads with the SDK checksums too (S3_CHECKSUM_MODE=when_supported): bodies are never streamed', async () => {
    // A streamed body with the SDK's checksums goes out aws-chunked, which this server refuses (501)
    // and lax ones store framing and all; Buffers carry a plain checksum header instead.
    const supported = createS3Client(
      { ...testS3Settings(), checksumMode: 'when_supported' },
      { maxSockets: 4 },
    );
    const withChecksums = createUploader(supported, settings, createLogger('silent'));
    try {
      for (const [name, size] of [
        ['checksums-small.bin', 300 * 1024],
        ['checksums-large.bin', 11 * MiB],
      ] as const) {
        const { filePath, content } = await writeRandomFile(name, size);
        await withChecksums.upload(await transferFor(filePath, name), undefined, recorder().listener);
        assert.deepEqual(await getObjectBytes(checkClient, bucket, name), content, name);
      }
    } finally {
      supported.destroy();
    }
  });

  for (const algorithm of ['crc32c', 'sha256'] as const) {
    it(`sends S3's ${algorithm} checksum with every part and single PUT (CHECKSUM_ALGORITHM=${algorithm})`, async () => {
      const checked = createS3Client(testS3Settings(), { maxSockets: 4 });
      const headers = recordChecksumHeaders(checked);
      const withChecksum = createUploader(
        checked,
        { ...settings, checksumAlgorithm: algorithm },
        createLogger('silent'),
      );
      try {
        for (const [name, size] of [
          [`${algorithm}-small.bin`, 300 * 1024],
          [`${algorithm}-large.bin`, 11 * MiB],
        ] as const) {
          const { filePath, content } = await writeRandomFile(name, size);
          await withChecksum.upload(await transferFor(filePath, name), undefined, recorder().listener);
          assert.deepEqual(await getObjectBytes(checkClient, bucket, name), content, name);
        }
        const header = `x-amz-checksum-${algorithm}`;
        const expected = { PutObjectCommand: 1, UploadPartCommand: 3 };
        for (const [command, count] of Object.entries(expected)) {
          const sent = headers.filter((h) => h.command === command);
          assert.equal(sent.length, count, command);
          assert.ok(
            sent.every((h) => typeof h.headers[header] === 'string'),
            `${command} carries ${header}`,
          );
        }
        const [create] = headers.filter((h) => h.command === 'CreateMultipartUploadCommand');
        assert.equal(create?.headers['x-amz-checksum-algorithm'], algorithm.toUpperCase());
      } finally {
        checked.destroy();
      }
    });
  }
});

/** The headers of every request the client sends, by command. */
function recordChecksumHeaders(client: S3Client): { command: string; headers: Record<string, string> }[] {
  const sent: { command: string; headers: Record<string, string> }[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const request = args.request as { headers?: Record<string, string> };
      sent.push({ command: context.commandName ?? 'unknown', headers: { ...request.headers } });
      return next(args);
    },
    { step: 'finalizeRequest', name: 'testHeaderRecorder' },
  );
  return sent;
}
