// What the S3 client tells its observer (the metrics' view of S3), against the real S3 server
// through the fault proxy: every request with its operation and outcome (success, S3's error code,
// timeout, network error, abort), its time and body size, and the retries of the transfer.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { HeadBucketCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { TransferSettings } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createS3Client } from '../../src/transfer/s3-client.js';
import type { S3RequestObserver } from '../../src/transfer/s3-observer.js';
import type { FileTransfer } from '../../src/transfer/types.js';
import { createUploader } from '../../src/transfer/uploader.js';
import { SLOW_DOWN, startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { createTestBucket, testS3, testS3Client, testS3Settings } from '../support/s3.js';
import { recorder, removeBucket } from '../support/transfer-recorder.js';
import { NO_OBJECT_PROPERTIES } from '../../src/domain/object-properties.js';

const MiB = 1024 * 1024;

const settings: TransferSettings = {
  multipartThresholdBytes: 5 * MiB,
  partSizeBytes: 5 * MiB,
  maxConcurrentParts: 2,
  retryMaxAttempts: 3,
  retryBaseDelayMs: 10,
  streamGrowingFiles: false,
  streamPartSizeBytes: 5 * MiB,
  appendMode: 'off',
  checksumAlgorithm: 'md5',
  maxBufferBytes: 4 * 5 * MiB,
};

interface Ended {
  operation: string;
  outcome: string;
  seconds: number;
  bodyBytes: number;
}

/** An observer that keeps what it is told, and how many requests are in flight. */
class RecordingObserver implements S3RequestObserver {
  readonly ended: Ended[] = [];
  readonly retried: string[] = [];
  inFlight = 0;
  peakInFlight = 0;

  requestStarted(): void {
    this.inFlight++;
    this.peakInFlight = Math.max(this.peakInFlight, this.inFlight);
  }

  requestEnded(operation: string, outcome: string, seconds: number, bodyBytes: number): void {
    this.inFlight--;
    this.ended.push({ operation, outcome, seconds, bodyBytes });
  }

  requestRetried(operation: string): void {
    this.retried.push(operation);
  }

  outcomes(): string[] {
    return this.ended.map(({ operation, outcome }) => `${operation} ${outcome}`);
  }

  clear(): void {
    this.ended.length = 0;
    this.retried.length = 0;
  }
}

describe('the S3 request observer', () => {
  const checkClient = testS3Client();
  const observer = new RecordingObserver();
  let proxy: FaultProxy;
  let client: S3Client;
  let bucket: string;
  let folder: string;

  before(async () => {
    proxy = await startFaultProxy(testS3().endpoint);
    client = createS3Client(testS3Settings(proxy.endpoint), {
      maxSockets: 8,
      observer,
      requestTimeoutMs: 1000,
    });
    bucket = await createTestBucket(checkClient, 'observer');
    folder = await mkdtemp(path.join(tmpdir(), 's3-observer-'));
  });

  after(async () => {
    await removeBucket(checkClient, bucket);
    await rm(folder, { recursive: true, force: true });
    client.destroy();
    checkClient.destroy();
    await proxy.close();
  });

  afterEach(() => {
    proxy.clearFaults();
    observer.clear();
    assert.equal(observer.inFlight, 0, 'every request that started ended');
  });

  async function transferOf(
    name: string,
    size: number,
    signal = new AbortController().signal,
  ): Promise<FileTransfer> {
    const filePath = path.join(folder, name);
    await writeFile(filePath, randomBytes(size));
    const { mtimeMs, ino, ctimeMs } = await stat(filePath);
    return {
      filePath,
      bucket,
      key: name,
      objectProperties: NO_OBJECT_PROPERTIES,
      size,
      mtimeMs,
      ino,
      ctimeMs,
      stream: false,
      settleMs: 0,
      previous: undefined,
      signal,
    };
  }

  it('tells each request of an upload, with its body, and each retry by operation', async () => {
    const uploader = createUploader(client, settings, createLogger('silent'));
    proxy.inject({ method: 'PUT', query: ['partNumber'], times: 1, fault: SLOW_DOWN });
    const size = 6 * MiB;
    await uploader.upload(await transferOf('big.bin', size), undefined, recorder().listener);
    assert.deepEqual(observer.retried, ['UploadPart']);
    const counted = new Map<string, number>();
    for (const outcome of observer.outcomes()) counted.set(outcome, (counted.get(outcome) ?? 0) + 1);
    assert.deepEqual(Object.fromEntries(counted), {
      'CreateMultipartUpload success': 1,
      'UploadPart SlowDown': 1,
      'UploadPart success': 2,
      'CompleteMultipartUpload success': 1,
    });
    const sentByParts = observer.ended
      .filter((request) => request.operation === 'UploadPart' && request.outcome === 'success')
      .reduce((sum, request) => sum + request.bodyBytes, 0);
    assert.equal(sentByParts, size);
    assert.equal(
      sentByParts,
      proxy.stats.bodyBytesByOperation.UploadPart,
      'what S3 took: not the refused part',
    );
    assert.ok(observer.ended.every((request) => request.seconds > 0 && request.seconds < 30));
    assert.ok(observer.peakInFlight >= 1);
  });

  it("names S3's error code, or the status when S3 named none", async () => {
    await assert.rejects(client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'missing' })));
    await assert.rejects(client.send(new HeadBucketCommand({ Bucket: `${bucket}-missing` })));
    proxy.inject({ method: 'HEAD', times: 1, fault: { type: 'error', status: 418, code: '' } });
    await assert.rejects(client.send(new HeadBucketCommand({ Bucket: bucket })));
    const outcomes = observer.outcomes();
    // A HEAD answer has no body: the SDK names the error after the status (NotFound), or not at all.
    assert.deepEqual(outcomes, ['HeadObject NotFound', 'HeadBucket NotFound', 'HeadBucket http_418']);
  });

  it('tells a timeout, a network error and an abort apart', async () => {
    proxy.inject({ method: 'HEAD', times: 1, fault: { type: 'stall', stage: 'before-headers' } });
    await assert.rejects(client.send(new HeadBucketCommand({ Bucket: bucket })));
    proxy.inject({ method: 'HEAD', times: 1, fault: { type: 'reset', stage: 'before-forward' } });
    await assert.rejects(client.send(new HeadBucketCommand({ Bucket: bucket })));
    proxy.inject({ method: 'HEAD', times: 1, fault: { type: 'delay', ms: 2000 } });
    const abort = new AbortController();
    const request = client.send(new HeadBucketCommand({ Bucket: bucket }), { abortSignal: abort.signal });
    setImmediate(() => abort.abort());
    await assert.rejects(request);
    assert.deepEqual(observer.outcomes(), [
      'HeadBucket timeout',
      'HeadBucket network_error',
      'HeadBucket aborted',
    ]);
  });
});
