// S3 outages are waited out, not failed: with S3 refusing every connection for 30 s in the middle
// of an upload, no file is marked failed, nothing needs a retry call, and everything completes by
// itself once S3 is back, the multipart upload in flight resuming with its parts. And a restart
// after a configuration fix (the credentials) tries the failed files again at once.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { waitFor } from '../support/poll.js';
import {
  createTestBucket,
  deleteBucket,
  getObjectBytes,
  listMultipartUploads,
  testS3,
  testS3Client,
} from '../support/s3.js';
import { api, killAllServices, startService, type ServiceProcess } from '../support/service-process.js';
import { makeTempDir, removeTempDir, writeRandomFile } from '../support/temp-tree.js';
import { createUpload, fileItems, uploadDetails, waitForCompleted } from '../support/upload-api.js';

const MiB = 1024 * 1024;
/** How long S3 is down; OUTAGE_SECONDS shortens it for a quick local run. */
const OUTAGE_MS = Number(process.env.OUTAGE_SECONDS ?? 30) * 1000;
const md5 = (data: Buffer): string => createHash('md5').update(data).digest('hex');

interface Health {
  s3: { status: string; since: string; last_error: string | null };
}

let s3: S3Client;
let proxy: FaultProxy;
let work: string;

before(async () => {
  s3 = testS3Client();
  proxy = await startFaultProxy(testS3().endpoint);
  work = await makeTempDir('e2e-outage');
});

after(async () => {
  await proxy.close();
  await removeTempDir(work);
  s3.destroy();
});

afterEach(async () => {
  proxy.clearFaults();
  proxy.resetStats();
  assert.equal(await killAllServices(), 0, 'a test left a service process running');
});

function logsWith(service: ServiceProcess, message: string): Record<string, unknown>[] {
  return service.logs.filter((line) => line.msg === message);
}

describe('an S3 outage', () => {
  it('is waited out: nothing fails, and every file completes by itself once S3 is back', async () => {
    const bucket = await createTestBucket(s3, 'outage');
    const source = path.join(work, 'outage');
    const expected = new Map<string, string>();
    for (let i = 0; i < 20; i++) {
      expected.set(
        `small/f${i}.bin`,
        (await writeRandomFile(path.join(source, 'small', `f${i}.bin`), 64 * 1024)).md5,
      );
    }
    const partCount = 8;
    expected.set('big.bin', (await writeRandomFile(path.join(source, 'big.bin'), partCount * 5 * MiB)).md5);
    // Slow enough that the outage falls in the middle of the multipart upload and the small files.
    proxy.inject({ method: 'PUT', fault: { type: 'delay', ms: 300 } });

    const service = await startService({
      databaseFile: path.join(work, 'outage.db'),
      s3Endpoint: proxy.endpoint,
      env: {
        MULTIPART_THRESHOLD_BYTES: String(5 * MiB),
        PART_SIZE_BYTES: String(5 * MiB),
        MAX_CONCURRENT_FILES: '2',
        MAX_CONCURRENT_PARTS: '1',
        STREAM_GROWING_FILES: 'false',
      },
    });
    const uploadId = await createUpload(service, { source_folder: source, destination_bucket: bucket });
    const partsSent = (): number =>
      proxy.log.filter((r) => r.operation === 'UploadPart' && r.outcome === 200).length;
    await waitFor(async () => partsSent() >= 2 || undefined, {
      timeoutMs: 60_000,
      message: 'two parts of the large file uploaded',
    });

    await proxy.goDown();
    const downAt = Date.now();
    const statusesSeen = new Set<string>();
    let healthSaidUnreachable = false;
    let slowestHealthMs = 0;
    while (Date.now() - downAt < OUTAGE_MS) {
      for (const file of await fileItems(service, uploadId)) statusesSeen.add(file.status);
      const asked = Date.now();
      const health = await api<Health>(service, 'GET', '/');
      slowestHealthMs = Math.max(slowestHealthMs, Date.now() - asked);
      assert.equal(health.status, 200, 'an S3 outage does not make the service unhealthy');
      if (health.body.s3.status === 'unreachable') healthSaidUnreachable = true;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const partsBeforeReturn = partsSent();
    await proxy.comeBack();
    const backAt = Date.now();

    await waitForCompleted(service, uploadId, expected.size, 60_000);
    const secondsToComplete = (Date.now() - backAt) / 1000;
    for (const file of await fileItems(service, uploadId)) statusesSeen.add(file.status);
    console.log(
      `outage of ${OUTAGE_MS / 1000} s: every file completed ${secondsToComplete.toFixed(1)} s after S3 was back; ` +
        `slowest GET / during it ${slowestHealthMs} ms; ${partsBeforeReturn} of ${partCount} parts sent before it`,
    );

    assert.ok(!statusesSeen.has('failed'), `a file was marked failed: ${[...statusesSeen].join(', ')}`);
    assert.ok(healthSaidUnreachable, 'GET / said S3 was unreachable during the outage');
    const health = await api<Health>(service, 'GET', '/');
    assert.equal(health.body.s3.status, 'reachable');
    assert.equal(health.body.s3.last_error, null);
    // The outage is one line when it starts and one when it ends, not one per file.
    assert.equal(
      logsWith(
        service,
        'S3 cannot be reached: no upload starts until it answers; the files it interrupted wait and resume by themselves',
      ).length,
      1,
    );
    assert.equal(logsWith(service, 'S3 answers again: uploads resume').length, 1);
    assert.equal(
      service.logs.filter(
        (line) => line.msg === 'upload failed' || String(line.msg).startsWith('upload failed'),
      ).length,
      0,
    );

    // Nothing was counted against the files, no retry call was made, and the multipart upload
    // resumed: only the parts S3 did not have were sent after the outage.
    for (const file of await fileItems(service, uploadId)) {
      assert.equal(file.attempts, 1, `${file.relative_path} was attempted ${file.attempts} times`);
    }
    assert.equal(proxy.log.filter((r) => r.path.endsWith('/retry')).length, 0);
    const partsAfter = proxy.log.filter(
      (r) => r.operation === 'UploadPart' && r.outcome === 200 && r.receivedAt >= backAt,
    ).length;
    assert.ok(
      partsBeforeReturn >= 2 && partsAfter <= partCount - 2,
      `${partsAfter} parts sent after the outage`,
    );
    for (const [key, digest] of expected)
      assert.equal(md5(await getObjectBytes(s3, bucket, key)), digest, key);
    assert.deepEqual(await listMultipartUploads(s3, bucket), []);
    assert.equal((await uploadDetails(service, uploadId)).last_error, null);
    assert.equal(await service.stop(), 0);
    await deleteBucket(s3, bucket);
  });
});

describe('a configuration fixed by a restart', () => {
  it('tries the failed files again at once, and the upload forgets the old error', async () => {
    const bucket = await createTestBucket(s3, 'fixed');
    const source = path.join(work, 'fixed');
    const expected = new Map<string, string>();
    for (const name of ['a.bin', 'b.bin']) {
      expected.set(name, (await writeRandomFile(path.join(source, name), 4096)).md5);
    }
    const databaseFile = path.join(work, 'fixed.db');
    const wrongKey = await startService({
      databaseFile,
      env: { AWS_SECRET_ACCESS_KEY: `not-${testS3().secretAccessKey}` },
    });
    const uploadId = await createUpload(wrongKey, { source_folder: source, destination_bucket: bucket });
    const failed = await waitFor(
      async () => {
        const current = await uploadDetails(wrongKey, uploadId);
        return current.files.failed === 2 ? current : undefined;
      },
      { timeoutMs: 20_000, message: 'both files failed' },
    );
    assert.match(failed.last_error ?? '', /secret access key/);
    // A failure that needs a person waits for the requeue interval (an hour by default) ...
    for (const file of await fileItems(wrongKey, uploadId)) {
      const readyAt = Date.parse(file.ready_at ?? '');
      assert.ok(readyAt - Date.now() > 50 * 60_000, `${file.relative_path} is requeued at ${readyAt}`);
    }
    assert.equal(await wrongKey.stop(), 0);

    // ... or for the restart that says it is fixed.
    const fixed = await startService({ databaseFile });
    const startedAt = Date.now();
    const done = await waitForCompleted(fixed, uploadId, 2, 20_000);
    console.log(`failed files completed ${((Date.now() - startedAt) / 1000).toFixed(1)} s after the restart`);
    assert.equal(done.last_error, null);
    for (const [key, digest] of expected)
      assert.equal(md5(await getObjectBytes(s3, bucket, key)), digest, key);
    assert.equal(await fixed.stop(), 0);
    await deleteBucket(s3, bucket);
  });
});
