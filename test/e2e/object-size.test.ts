// A file over S3's 5 TiB object limit, end to end: the service as a child process, a real S3 behind
// a recording proxy. The file (sparse: no disk used) fails at once with a message that says why, no
// request about it reaches S3, it is not requeued, and the other files of the request go on.
import assert from 'node:assert/strict';
import { mkdir, truncate, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { waitFor } from '../support/poll.js';
import { createTestBucket, deleteBucket, getObjectBytes, testS3, testS3Client } from '../support/s3.js';
import { startService, type ServiceProcess } from '../support/service-process.js';
import { createUpload, fileItems, uploadDetails, type FileItem } from '../support/upload-api.js';
import { makeTempDir, removeTempDir } from '../support/temp-tree.js';

const MAX_OBJECT_SIZE = 5 * 1024 ** 4;

interface FailedItem extends FileItem {
  ready_at: string | null;
}

describe('a file over 5 TiB', () => {
  const s3 = testS3Client();
  let work: string;
  let proxy: FaultProxy;
  let service: ServiceProcess;
  let bucket: string;

  before(async () => {
    work = await makeTempDir('e2e-object-size');
    proxy = await startFaultProxy(testS3().endpoint);
    bucket = await createTestBucket(s3, 'object-size');
    service = await startService({
      databaseFile: path.join(work, 'db', 'uploads.db'),
      s3Endpoint: proxy.endpoint,
      // A requeue would come within a second: none must.
      env: { FAILED_REQUEUE_INTERVAL_SECONDS: '1', STREAM_GROWING_FILES: 'false' },
    });
  });

  after(async () => {
    await service.stop();
    await proxy.close();
    await deleteBucket(s3, bucket).catch(() => undefined);
    await removeTempDir(work);
    s3.destroy();
  });

  it('fails at once for good, with the reason, and nothing about it reaches S3', async () => {
    const source = path.join(work, 'source');
    await mkdir(source, { recursive: true });
    const huge = path.join(source, 'huge.bin');
    await writeFile(huge, '');
    await truncate(huge, MAX_OBJECT_SIZE + 1); // sparse
    await writeFile(path.join(source, 'small.txt'), 'small and fine\n');

    const uploadId = await createUpload(service, {
      source_folder: source,
      destination_bucket: bucket,
      destination_prefix: 'sizes',
    });
    const failed = await waitFor(
      async () => {
        const items = await fileItems(service, uploadId);
        const small = items.find((item) => item.relative_path === 'small.txt');
        const big = items.find((item) => item.relative_path === 'huge.bin');
        return small?.status === 'completed' && big?.status === 'failed' ? (big as FailedItem) : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100, message: 'small.txt completed and huge.bin failed' },
    );
    assert.equal(
      failed.last_error,
      `${huge} is 5497558138881 bytes; S3 stores objects of at most 5 TiB (5,497,558,138,880 bytes); ` +
        'it is not retried automatically, only once the file changes or on POST retry',
    );
    assert.equal(failed.ready_at, null, 'no automatic requeue');
    assert.equal(failed.bytes_uploaded, 0);
    assert.match(
      (await uploadDetails(service, uploadId)).last_error ?? '',
      /^huge\.bin: .* is 5497558138881 bytes/,
    );
    assert.equal((await getObjectBytes(s3, bucket, 'sizes/small.txt')).toString(), 'small and fine\n');

    // Watched over several requeue intervals: still failed, after its one attempt.
    const attempts = failed.attempts;
    for (const until = Date.now() + 3000; Date.now() < until; await sleep(200)) {
      const big = (await fileItems(service, uploadId)).find((item) => item.relative_path === 'huge.bin');
      assert.equal(big?.status, 'failed');
      assert.equal(big.attempts, attempts, 'not tried again');
    }
    const aboutHuge = proxy.log.filter((request) => request.path.includes('huge.bin'));
    assert.deepEqual(
      aboutHuge.map((request) => `${request.method} ${request.operation}`),
      [],
      'no request about huge.bin reached S3',
    );
    assert.ok(
      proxy.log.some((request) => request.operation === 'PutObject'),
      'small.txt went through the proxy',
    );
  });
});
