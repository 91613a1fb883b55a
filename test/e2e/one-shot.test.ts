// One-shot uploads (`"watch": false`), as `aws s3 sync` does it: the folder is scanned once, its
// files are uploaded, and the upload becomes completed; a file that appears afterwards is not
// uploaded, and a restart before the end finishes it. A real service against the test S3 server.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { openEventStream } from '../support/event-stream.js';
import { ACCESS_DENIED, startFaultProxy } from '../support/fault-proxy.js';
import { waitFor } from '../support/poll.js';
import { createTestBucket, deleteBucket, listKeys, testS3, testS3Client } from '../support/s3.js';
import { api, killAllServices, startService, type ServiceProcess } from '../support/service-process.js';
import { createUpload, fileItems, uploadDetails, waitForCompleted } from '../support/upload-api.js';
import { makeTempDir, removeTempDir, writeRandomFile } from '../support/temp-tree.js';

interface OneShotDetails {
  status: string;
  watch: boolean;
  completed_at: string | null;
  files: { completed: number; total: number };
  progress: { phase: string };
  last_scan: unknown;
}

let s3: S3Client;
let work: string;
const buckets: string[] = [];

before(async () => {
  s3 = testS3Client();
  work = await makeTempDir('e2e-one-shot');
});

after(async () => {
  for (const bucket of buckets) await deleteBucket(s3, bucket);
  await removeTempDir(work);
  s3.destroy();
});

afterEach(async () => {
  assert.equal(await killAllServices(), 0, 'a test left a service process running');
});

async function bucketFor(label: string): Promise<string> {
  const bucket = await createTestBucket(s3, label);
  buckets.push(bucket);
  return bucket;
}

async function folderWith(label: string, names: readonly string[]): Promise<string> {
  const folder = path.join(work, label);
  for (const name of names) await writeRandomFile(path.join(folder, name), 1000);
  return folder;
}

async function details(service: ServiceProcess, uploadId: string): Promise<OneShotDetails> {
  const response = await api<OneShotDetails>(service, 'GET', `/uploads/${uploadId}`);
  assert.equal(response.status, 200, JSON.stringify(response.body));
  return response.body;
}

function waitForStatus(service: ServiceProcess, uploadId: string, status: string): Promise<OneShotDetails> {
  return waitFor(
    async () => {
      const current = await details(service, uploadId);
      return current.status === status ? current : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 100, message: `${uploadId} ${status}` },
  );
}

describe('a one-shot upload', () => {
  it('ends completed with every object in the bucket; a file added afterwards is not uploaded', async () => {
    const bucket = await bucketFor('once');
    const source = await folderWith('once', ['a.txt', 'b.txt', 'sub/c.txt']);
    const service = await startService({ databaseFile: path.join(work, 'once.db') });
    const stream = await openEventStream(`${service.baseUrl}/events`);
    try {
      const once = await createUpload(service, {
        source_folder: source,
        destination_bucket: bucket,
        destination_prefix: 'once',
        watch: false,
      });
      // A watched upload of the same folder is the control: it shows when the late file has
      // settled and been rescanned, the moments the one-shot upload would have taken it.
      const watched = await createUpload(service, {
        source_folder: source,
        destination_bucket: bucket,
        destination_prefix: 'watched',
      });

      const completed = await waitForStatus(service, once, 'completed');
      assert.equal(completed.watch, false);
      assert.ok(completed.completed_at !== null, 'completed_at is set');
      assert.deepEqual(completed.files, { ...completed.files, completed: 3, total: 3 });
      assert.equal(completed.progress.phase, 'completed');
      assert.deepEqual(await listKeys(s3, bucket, 'once/'), ['once/a.txt', 'once/b.txt', 'once/sub/c.txt']);
      // The stream sends its events a flush interval (100 ms) after they happen: the status may come first.
      const ofOnce = await waitFor(
        () => {
          const events = stream.events.filter((event) => event.data.upload_id === once);
          return events.some((event) => event.event === 'upload.completed') && events;
        },
        { timeoutMs: 5000, message: 'upload.completed told' },
      );
      const phases = ofOnce
        .filter((event) => event.event === 'upload.phase')
        .map((event) => event.data.phase);
      assert.equal(phases.at(-1), 'completed');
      const listed = await api<Array<{ upload_id: string }>>(service, 'GET', '/uploads');
      assert.ok(
        listed.body.some((upload) => upload.upload_id === once),
        'listed by default',
      );

      await waitForCompleted(service, watched, 3);
      await writeRandomFile(path.join(source, 'late.txt'), 1000);
      // The control takes it once it has settled, then the next periodic rescan ends: by then the
      // one-shot upload has had every chance to see it.
      await waitForCompleted(service, watched, 4);
      const rescansBefore = stream.events.filter(
        (event) => event.event === 'upload.scanned' && event.data.upload_id === watched,
      ).length;
      await waitFor(
        () =>
          stream.events.filter(
            (event) => event.event === 'upload.scanned' && event.data.upload_id === watched,
          ).length > rescansBefore,
        { timeoutMs: 15_000, message: 'a rescan of the watched upload after the late file' },
      );
      assert.deepEqual(await listKeys(s3, bucket, 'once/'), ['once/a.txt', 'once/b.txt', 'once/sub/c.txt']);
      assert.equal((await fileItems(service, once)).length, 3, 'no task for the late file');
      assert.equal((await uploadDetails(service, once)).status, 'completed');

      // Nothing left to stop or scan.
      const rescan = await api<{ error: string }>(service, 'POST', `/uploads/${once}/rescan`);
      assert.deepEqual([rescan.status, rescan.body.error], [409, 'upload_not_watched']);
      const cancel = await api<{ status: string }>(service, 'DELETE', `/uploads/${once}`);
      assert.deepEqual([cancel.status, cancel.body.status], [200, 'completed']);
    } finally {
      stream.close();
    }
    assert.equal(await service.stop(), 0);
  });

  it('stays active while a file fails, and completes once the file is retried and uploaded', async () => {
    const bucket = await bucketFor('failing');
    const source = await folderWith('failing', ['ok.txt', 'refused.txt']);
    const proxy = await startFaultProxy(testS3().endpoint);
    try {
      const refusal = proxy.inject({ method: 'PUT', path: /\/refused\.txt$/, fault: ACCESS_DENIED });
      const service = await startService({
        databaseFile: path.join(work, 'failing.db'),
        s3Endpoint: proxy.endpoint,
        env: { FAILED_REQUEUE_INTERVAL_SECONDS: '3600' },
      });
      const uploadId = await createUpload(service, {
        source_folder: source,
        destination_bucket: bucket,
        watch: false,
      });
      const failed = await waitFor(
        async () => {
          const current = await details(service, uploadId);
          return current.progress.phase === 'failed' ? current : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 100, message: 'the phase failed' },
      );
      assert.equal(failed.status, 'active', 'a failed file keeps it active');
      assert.equal(failed.completed_at, null);

      refusal.remove();
      const retried = await api<{ requeued: number }>(service, 'POST', `/uploads/${uploadId}/retry`);
      assert.deepEqual([retried.status, retried.body.requeued], [200, 1]);
      const completed = await waitForStatus(service, uploadId, 'completed');
      assert.deepEqual([completed.files.completed, completed.files.total], [2, 2]);
      assert.deepEqual(await listKeys(s3, bucket), ['ok.txt', 'refused.txt']);
      assert.equal(await service.stop(), 0);
    } finally {
      await proxy.close();
    }
  });

  it('is resumed after a restart before it completed, and completed; a completed one is not scanned again', async () => {
    const bucket = await bucketFor('restart');
    const source = await folderWith('restart', ['a.txt', 'b.txt', 'c/d.txt', 'c/e.txt']);
    const databaseFile = path.join(work, 'restart.db');
    // Files are claimed only once settled: a kill right after the creation comes before any completes.
    const first = await startService({ databaseFile, env: { SETTLE_SECONDS: '2' } });
    const uploadId = await createUpload(first, {
      source_folder: source,
      destination_bucket: bucket,
      watch: false,
    });
    const before = await details(first, uploadId);
    assert.notEqual(before.status, 'completed');
    await first.kill();
    assert.deepEqual(await listKeys(s3, bucket), []);

    const second = await startService({ databaseFile });
    const completed = await waitForStatus(second, uploadId, 'completed');
    assert.deepEqual([completed.files.completed, completed.files.total], [4, 4]);
    assert.deepEqual(await listKeys(s3, bucket), ['a.txt', 'b.txt', 'c/d.txt', 'c/e.txt']);
    assert.equal(await second.stop(), 0);

    const third = await startService({ databaseFile });
    const scans = third.logs.filter((entry) => entry.msg === 'scan finished' && entry.uploadId === uploadId);
    assert.deepEqual(scans, [], 'a completed upload is not scanned at start');
    const after = await details(third, uploadId);
    assert.deepEqual([after.progress.phase, after.last_scan], ['completed', null]);
    assert.equal(await third.stop(), 0);
  });
});
