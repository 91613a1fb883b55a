// The bandwidth limit on every kind of request body, against a real S3 server through a byte-counting
// proxy: a single PUT, parts sent from a Buffer, parts read in pieces (a stream), with each
// additional checksum. The SDK computed its checksums from the body it was given, so a throttled
// body is never framed aws-chunked: S3 stores the exact bytes. A part sent again after a reset goes
// through the bucket again.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ChecksumAlgorithm, ChecksumMode, TransferSettings } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { BufferPool } from '../../src/transfer/buffer-pool.js';
import { createS3Client } from '../../src/transfer/s3-client.js';
import { TokenBucket } from '../../src/transfer/token-bucket.js';
import type { FileTransfer } from '../../src/transfer/types.js';
import { createUploader } from '../../src/transfer/uploader.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { createTestBucket, getObjectBytes, testS3, testS3Client, testS3Settings } from '../support/s3.js';
import { recorder, removeBucket } from '../support/transfer-recorder.js';
import { NO_OBJECT_PROPERTIES } from '../../src/domain/object-properties.js';

const MiB = 1024 * 1024;
/** Fast enough to keep the test short, slow enough that every body waits on the bucket. */
const LIMIT = 48 * MiB;
/** Parts of 12 MiB against a pool of 8 MiB are read and sent in pieces. */
const POOL = 8 * MiB;

const settings: TransferSettings = {
  multipartThresholdBytes: 5 * MiB,
  partSizeBytes: 5 * MiB,
  maxConcurrentParts: 2,
  retryMaxAttempts: 3,
  retryBaseDelayMs: 10,
  streamGrowingFiles: true,
  streamPartSizeBytes: 5 * MiB,
  appendMode: 'off',
  checksumAlgorithm: 'md5',
  maxBufferBytes: POOL,
};

/** A bucket that counts what it let go. */
class CountingBucket extends TokenBucket {
  taken = 0;
  override take(bytes: number, signal?: AbortSignal): Promise<void> {
    return super.take(bytes, signal).then(() => {
      this.taken += bytes;
    });
  }
}

describe('transfer under a bandwidth limit', () => {
  const checkClient = testS3Client();
  let bucket: string;
  let folder: string;
  let proxy: FaultProxy;

  before(async () => {
    bucket = await createTestBucket(checkClient, 'bandwidth');
    folder = await mkdtemp(path.join(tmpdir(), 'transfer-bandwidth-'));
    proxy = await startFaultProxy(testS3().endpoint);
  });

  after(async () => {
    await proxy.close();
    await removeBucket(checkClient, bucket);
    await rm(folder, { recursive: true, force: true });
    checkClient.destroy();
  });

  async function upload(
    name: string,
    content: Buffer,
    options: { algorithm: ChecksumAlgorithm; mode: ChecksumMode; partSizeBytes: number },
  ): Promise<CountingBucket> {
    const filePath = path.join(folder, name);
    await writeFile(filePath, content);
    const stats = await stat(filePath);
    const bandwidth = new CountingBucket(LIMIT);
    const s3 = createS3Client(
      { ...testS3Settings(proxy.endpoint), checksumMode: options.mode },
      { maxSockets: 4, bandwidth },
    );
    try {
      const uploader = createUploader(
        s3,
        { ...settings, checksumAlgorithm: options.algorithm, partSizeBytes: options.partSizeBytes },
        createLogger('silent'),
        new BufferPool(POOL),
      );
      const transfer: FileTransfer = {
        filePath,
        bucket,
        key: name,
        objectProperties: NO_OBJECT_PROPERTIES,
        size: stats.size,
        mtimeMs: stats.mtimeMs,
        ino: stats.ino,
        ctimeMs: stats.ctimeMs,
        stream: false,
        settleMs: 0,
        previous: undefined,
        signal: new AbortController().signal,
      };
      await uploader.upload(transfer, undefined, recorder().listener);
    } finally {
      s3.destroy();
    }
    assert.ok((await getObjectBytes(checkClient, bucket, name)).equals(content), `${name}: the exact bytes`);
    return bandwidth;
  }

  for (const [algorithm, mode] of [
    ['md5', 'when_required'],
    ['md5', 'when_supported'],
    ['crc32c', 'when_required'],
    ['sha256', 'when_required'],
  ] as const) {
    it(`sends a single PUT, Buffer parts and parts in pieces through the bucket (${algorithm}, ${mode})`, async () => {
      const options = { algorithm, mode };
      for (const [kind, size, partSizeBytes] of [
        ['single', 3 * MiB, 5 * MiB],
        ['buffered', 11 * MiB, 5 * MiB],
        ['pieces', 13 * MiB, 12 * MiB],
      ] as const) {
        const content = randomBytes(size);
        const bandwidth = await upload(`${algorithm}-${mode}-${kind}.bin`, content, {
          ...options,
          partSizeBytes,
        });
        assert.equal(bandwidth.taken, size, `${kind}: every byte went through the bucket, once`);
      }
    });
  }

  it('sends a part again through the bucket after a reset in its body', async () => {
    const fault = proxy.inject({
      fault: { type: 'reset', stage: 'during-body', afterBytes: MiB },
      method: 'PUT',
      bucket,
      query: ['partNumber', 'uploadId'],
      times: 1,
    });
    try {
      const content = randomBytes(11 * MiB);
      const bandwidth = await upload('reset.bin', content, {
        algorithm: 'md5',
        mode: 'when_required',
        partSizeBytes: 5 * MiB,
      });
      assert.equal(fault.hits, 1);
      assert.ok(bandwidth.taken >= content.length + MiB, `${bandwidth.taken} bytes taken`);
    } finally {
      fault.remove();
    }
  });
});
