// Progress as a dashboard reads it: the phase, the throughput, the time left and the last
// completion, in GET /uploads/{id} and in every item of GET /uploads. A real service, a real S3
// reached through a proxy that slows the parts down, so that an upload is seen while it runs.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { waitFor } from '../support/poll.js';
import { createTestBucket, deleteBucket, testS3, testS3Client, uniqueBucketName } from '../support/s3.js';
import { api, killAllServices, startService, type ServiceProcess } from '../support/service-process.js';
import { createUpload, type UploadDetails } from '../support/upload-api.js';
import { makeTempDir, removeTempDir, writeRandomFile } from '../support/temp-tree.js';

const MiB = 1024 * 1024;

interface Progress {
  phase: string;
  bytes_per_second: number;
  eta_seconds: number | null;
  last_completed_at: string | null;
}

type WithProgress = UploadDetails & { progress: Progress };

let s3: S3Client;
let proxy: FaultProxy;
let work: string;

before(async () => {
  s3 = testS3Client();
  proxy = await startFaultProxy(testS3().endpoint);
  work = await makeTempDir('e2e-progress');
});

after(async () => {
  await proxy.close();
  await removeTempDir(work);
  s3.destroy();
});

afterEach(async () => {
  proxy.clearFaults();
  assert.equal(await killAllServices(), 0, 'a test left a service process running');
});

function start(label: string, env: Record<string, string> = {}): Promise<ServiceProcess> {
  return startService({ databaseFile: path.join(work, `${label}.db`), s3Endpoint: proxy.endpoint, env });
}

async function details(service: ServiceProcess, uploadId: string): Promise<WithProgress> {
  const response = await api<WithProgress>(service, 'GET', `/uploads/${uploadId}`);
  assert.equal(response.status, 200, JSON.stringify(response.body));
  return response.body;
}

async function listed(service: ServiceProcess, uploadId: string): Promise<Progress> {
  const response = await api<Array<{ upload_id: string; progress: Progress }>>(service, 'GET', '/uploads');
  assert.equal(response.status, 200, JSON.stringify(response.body));
  const item = response.body.find((upload) => upload.upload_id === uploadId);
  assert.ok(item, `${uploadId} is listed`);
  return item.progress;
}

describe('progress of an upload', () => {
  it('goes from uploading, with a throughput and a time left, to idle with its last completion', async () => {
    const bucket = await createTestBucket(s3, 'progress');
    const source = path.join(work, 'progress');
    await writeRandomFile(path.join(source, 'big.bin'), 30 * MiB); // 6 parts of 5 MiB
    // One part at a time, each held 400 ms: the file is in flight for seconds.
    proxy.inject({ method: 'PUT', query: ['partNumber'], fault: { type: 'delay', ms: 400 } });
    const service = await start('progress', {
      MULTIPART_THRESHOLD_BYTES: String(5 * MiB),
      PART_SIZE_BYTES: String(5 * MiB),
      MAX_CONCURRENT_PARTS: '1',
    });
    const uploadId = await createUpload(service, { source_folder: source, destination_bucket: bucket });

    const running = await waitFor(
      async () => {
        const current = await details(service, uploadId);
        const { phase, bytes_per_second, eta_seconds } = current.progress;
        return phase === 'uploading' && bytes_per_second > 0 && eta_seconds !== null ? current : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100, message: 'the upload shows a throughput and a time left' },
    );
    assert.ok(running.files.completed === 0, 'seen while the file was in flight');
    assert.ok(running.progress.eta_seconds !== null && running.progress.eta_seconds > 0);
    assert.equal(running.progress.last_completed_at, null);
    const inList = await listed(service, uploadId);
    assert.deepEqual(Object.keys(inList).sort(), [
      'bytes_per_second',
      'eta_seconds',
      'last_completed_at',
      'phase',
    ]);

    const done = await waitFor(
      async () => {
        const current = await details(service, uploadId);
        return current.progress.phase === 'idle' ? current : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 100, message: 'the upload is idle: every file completed' },
    );
    assert.equal(done.files.completed, 1);
    assert.equal(done.progress.eta_seconds, null, 'nothing is left');
    assert.ok(done.progress.last_completed_at !== null);
    assert.ok(Date.parse(done.progress.last_completed_at) <= Date.now());
    const doneInList = await listed(service, uploadId);
    assert.equal(doneInList.phase, 'idle');
    assert.equal(doneInList.last_completed_at, done.progress.last_completed_at);

    await api(service, 'DELETE', `/uploads/${uploadId}`);
    const cancelled = await details(service, uploadId);
    assert.deepEqual(
      [cancelled.progress.phase, cancelled.progress.bytes_per_second, cancelled.progress.eta_seconds],
      ['cancelled', 0, null],
    );
    await service.stop();
    await deleteBucket(s3, bucket);
  });

  it('is failed while its only files failed and wait for their requeue', async () => {
    const source = path.join(work, 'failing');
    await mkdir(source, { recursive: true });
    await writeFile(path.join(source, 'a.txt'), 'a');
    const service = await start('failing');
    const uploadId = await createUpload(service, {
      source_folder: source,
      destination_bucket: uniqueBucketName('missing'),
      check_bucket: false, // so that its file fails
    });
    const failed = await waitFor(
      async () => {
        const current = await details(service, uploadId);
        return current.files.failed === 1 ? current : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100, message: 'the file failed' },
    );
    assert.deepEqual(failed.progress, {
      phase: 'failed',
      bytes_per_second: 0,
      eta_seconds: null,
      last_completed_at: null,
    });
    assert.equal((await listed(service, uploadId)).phase, 'failed');
    await service.stop();
  });
});
