// A sequencer's run folder, as the service uploads it: its completion marker goes last, after every
// data file is in S3 (seen in the order of the requests at a proxy), even across a SIGKILL; the
// manifest, written before the marker, lists exactly the keys in S3; the notification reaches its
// receiver once, after a retry. A real service against the test S3 server.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { openEventStream } from '../support/event-stream.js';
import { startFaultProxy, type FaultProxy, type RequestRecord } from '../support/fault-proxy.js';
import { startGrowingWrite } from '../support/growing-writer.js';
import { waitFor } from '../support/poll.js';
import {
  createTestBucket,
  deleteBucket,
  getObjectBytes,
  listKeys,
  testS3,
  testS3Client,
} from '../support/s3.js';
import { api, killAllServices, startService, type ServiceProcess } from '../support/service-process.js';
import { createUpload, uploadDetails } from '../support/upload-api.js';
import { makeTempDir, removeTempDir, writeRandomFile } from '../support/temp-tree.js';

const MiB = 1024 * 1024;
const MARKER = 'RTAComplete.txt';

interface ArrivalDetails {
  status: string;
  files: { pending: number; in_progress: number; completed: number; failed: number; total: number };
  arrival: { at: string; files: number; bytes: number; marker_key: string | null } | null;
  last_manifest: { key: string; files: number; bytes: number; sha256: string; written_at: string } | null;
  notification: {
    status: string;
    attempts: number;
    last_error: string | null;
    delivered_at: string | null;
  } | null;
}

interface ManifestLine {
  key: string;
  size: number;
  sha256: string | null;
  etag: string | null;
  modified_at: string;
}

interface Manifest {
  upload_id: string;
  bucket: string;
  prefix: string;
  written_at: string;
  files: ManifestLine[];
  file_count: number;
  bytes: number;
}

let s3: S3Client;
let proxy: FaultProxy;
let work: string;
const buckets: string[] = [];

before(async () => {
  s3 = testS3Client();
  proxy = await startFaultProxy(testS3().endpoint);
  work = await makeTempDir('e2e-run-folder');
});

after(async () => {
  for (const bucket of buckets) await deleteBucket(s3, bucket);
  await proxy.close();
  await removeTempDir(work);
  s3.destroy();
});

afterEach(async () => {
  proxy.clearFaults();
  assert.equal(await killAllServices(), 0, 'a test left a service process running');
});

async function bucketFor(label: string): Promise<string> {
  const bucket = await createTestBucket(s3, label);
  buckets.push(bucket);
  return bucket;
}

function service(name: string, env: Record<string, string> = {}): Promise<ServiceProcess> {
  return startService({ databaseFile: path.join(work, `${name}.db`), s3Endpoint: proxy.endpoint, env });
}

async function details(svc: ServiceProcess, uploadId: string): Promise<ArrivalDetails> {
  const response = await api<ArrivalDetails>(svc, 'GET', `/uploads/${uploadId}`);
  assert.equal(response.status, 200, JSON.stringify(response.body));
  return response.body;
}

function waitForArrival(svc: ServiceProcess, uploadId: string, timeoutMs = 60_000): Promise<ArrivalDetails> {
  return waitFor(
    async () => {
      const current = await details(svc, uploadId);
      return current.arrival ? current : undefined;
    },
    { timeoutMs, intervalMs: 100, message: `the arrival of ${uploadId}` },
  );
}

/** The requests that wrote `key` in `bucket` and that S3 took: PutObjects and completed multipart uploads. */
function writesOf(bucket: string, key: string): RequestRecord[] {
  const objectPath = `/${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
  return proxy.log.filter(
    (r) =>
      r.path === objectPath &&
      r.outcome === 200 &&
      (r.operation === 'PutObject' || r.operation === 'CompleteMultipartUpload'),
  );
}

/** When the last write of any of these keys was answered. */
function lastWriteAnsweredAt(bucket: string, keys: readonly string[]): number {
  let latest = 0;
  for (const key of keys) {
    const writes = writesOf(bucket, key);
    assert.ok(writes.length > 0, `${key} was written`);
    for (const write of writes) latest = Math.max(latest, write.answeredAt ?? Infinity);
  }
  return latest;
}

const sha256Of = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** Reads the manifest and checks it against every object in the bucket, the marker and itself left out. */
async function assertManifestMatchesBucket(bucket: string, manifestKey: string, leftOut: string[]) {
  const manifestBytes = await getObjectBytes(s3, bucket, manifestKey);
  const manifest = JSON.parse(manifestBytes.toString('utf8')) as Manifest;
  const keys = (await listKeys(s3, bucket)).filter((key) => key !== manifestKey && !leftOut.includes(key));
  assert.deepEqual(
    manifest.files.map((line) => line.key).sort(),
    keys.sort(),
    'the manifest lists the keys in S3',
  );
  let bytes = 0;
  for (const line of manifest.files) {
    const body = await getObjectBytes(s3, bucket, line.key);
    assert.equal(line.size, body.length, `size of ${line.key}`);
    assert.equal(line.sha256, sha256Of(body), `SHA-256 of ${line.key}`);
    assert.match(line.etag ?? '', /^[0-9a-f]{32}(-\d+)?$/, `ETag of ${line.key}`);
    bytes += body.length;
  }
  assert.equal(manifest.file_count, keys.length);
  assert.equal(manifest.bytes, bytes);
  return { manifest, sha256: sha256Of(manifestBytes) };
}

describe('a run folder with a completion marker', () => {
  it('uploads the marker after the last data file, and the manifest before the marker', async (t) => {
    const bucket = await bucketFor('run-marker');
    const run = path.join(work, 'run-marker');
    await mkdir(path.join(run, 'Data'), { recursive: true });
    // The marker is there from the start, as when a run folder is copied in with it, and settled;
    // 200 small files have begun, and go on being written a chunk at a time (each changed again
    // after it could settle), and two large ones are streamed as they grow.
    await writeFile(path.join(run, MARKER), 'RTA 3.4.4\n');
    const smalls = Array.from({ length: 200 }, (_, i) => path.join(run, 'Data', `tile${i}.cbcl`));
    for (const file of smalls) await appendFile(file, Buffer.alloc(4096, 1));
    const growing = [0, 1].map((lane) =>
      startGrowingWrite(path.join(run, 'Data', `lane${lane}.bcl`), {
        totalBytes: 24 * MiB,
        chunkBytes: MiB,
        intervalMs: 150,
      }),
    );
    await waitFor(() => growing.every((writer) => writer.writtenBytes > 0), {
      timeoutMs: 10_000,
      message: 'the large files begun',
    });
    const svc = await service('run-marker');
    const uploadId = await createUpload(svc, {
      source_folder: run,
      destination_bucket: bucket,
      destination_prefix: 'runs/r1',
      complete_markers: [MARKER],
      manifest: true,
    });
    for (let round = 2; round <= 4; round++) {
      await new Promise((resolve) => setTimeout(resolve, 400));
      for (const file of smalls) await appendFile(file, Buffer.alloc(4096, round));
    }
    await Promise.all(growing.map((writer) => writer.done));

    const arrived = await waitForArrival(svc, uploadId);
    const markerKey = `runs/r1/${MARKER}`;
    const manifestKey = 'runs/r1/_manifest.json';
    const dataKeys = [...smalls, ...[0, 1].map((lane) => path.join(run, 'Data', `lane${lane}.bcl`))].map(
      (file) => `runs/r1/${path.relative(run, file)}`,
    );
    assert.equal(arrived.arrival?.marker_key, markerKey);
    assert.equal(arrived.arrival?.files, dataKeys.length, 'the marker waited for every data file');

    const markerWrites = writesOf(bucket, markerKey);
    assert.equal(markerWrites.length, 1, 'the marker was put once');
    const markerPut = markerWrites[0]!;
    const lastData = lastWriteAnsweredAt(bucket, dataKeys);
    assert.ok(
      markerPut.receivedAt >= lastData,
      `the marker's PutObject came ${lastData - markerPut.receivedAt} ms before the last data file was stored`,
    );
    const manifestWrites = writesOf(bucket, manifestKey);
    assert.equal(manifestWrites.length, 1, 'one manifest');
    assert.ok(
      manifestWrites[0]!.answeredAt! <= markerPut.receivedAt,
      'the manifest was stored before the marker',
    );
    const { manifest, sha256 } = await assertManifestMatchesBucket(bucket, manifestKey, [markerKey]);
    assert.equal(manifest.files.length, dataKeys.length);
    assert.equal(arrived.last_manifest?.sha256, sha256, 'the manifest SHA-256 shown is its bytes');
    assert.ok(
      svc.logs.some((line) => line.msg === 'manifest written' && line.sha256 === sha256),
      'the manifest SHA-256 is logged',
    );
    t.diagnostic(
      `the marker went ${markerPut.receivedAt - lastData} ms after the last data file was stored; ` +
        `the manifest of ${manifest.files.length} files before it`,
    );
    await api(svc, 'DELETE', `/uploads/${uploadId}`);
    assert.equal(await svc.stop(), 0);
  });

  it('still puts the marker last, once, when the service is killed between the last data file and the marker', async (t) => {
    const bucket = await bucketFor('run-kill');
    const run = path.join(work, 'run-kill');
    for (let i = 0; i < 20; i++) await writeRandomFile(path.join(run, 'Data', `tile${i}.cbcl`), 8192);
    await writeRandomFile(path.join(run, 'Data', 'last.cbcl'), 8192);
    await writeFile(path.join(run, MARKER), 'done\n');
    const lastKey = 'Data/last.cbcl';
    // S3 stores the last data file, but its answer never reaches the service: killed then, it has
    // not recorded the file, and the marker has not gone.
    const stall = proxy.inject({
      fault: { type: 'stall' },
      method: 'PUT',
      bucket,
      path: `/${bucket}/${lastKey}`,
    });
    const db = 'run-kill';
    let svc = await service(db);
    const uploadId = await createUpload(svc, {
      source_folder: run,
      destination_bucket: bucket,
      complete_markers: [MARKER],
      manifest: true,
      watch: false,
    });
    await waitFor(
      async () => {
        const current = await details(svc, uploadId);
        return stall.hits > 0 && current.files.completed === 20 ? current : undefined;
      },
      {
        timeoutMs: 30_000,
        intervalMs: 50,
        message: 'every data file but the last completed, the last one stalled',
      },
    );
    assert.equal(writesOf(bucket, MARKER).length, 0, 'no marker yet');
    await svc.kill();
    proxy.clearFaults();

    svc = await service(db);
    await waitFor(async () => ((await details(svc, uploadId)).status === 'completed' ? true : undefined), {
      timeoutMs: 30_000,
      intervalMs: 100,
      message: `${uploadId} completed after the restart`,
    });
    const markerWrites = writesOf(bucket, MARKER);
    assert.equal(markerWrites.length, 1, 'the marker was put once');
    // Every request about the last data file: its stalled PutObject (stored by S3, never answered to
    // the killed service), then after the restart a HEAD that found it, or a PutObject again.
    const lastFileRequests = proxy.log.filter((r) => r.path === `/${bucket}/${lastKey}`);
    const lastData = lastFileRequests.reduce(
      (latest, r) => Math.max(latest, r.answeredAt ?? r.receivedAt),
      0,
    );
    assert.ok(lastFileRequests.length >= 2, 'the last data file was looked at again after the restart');
    assert.ok(markerWrites[0]!.receivedAt >= lastData, 'the marker went last');
    const current = await details(svc, uploadId);
    assert.equal(current.arrival?.marker_key, MARKER);
    assert.equal(current.arrival?.files, 21);
    await assertManifestMatchesBucket(bucket, '_manifest.json', [MARKER]);
    t.diagnostic(
      `after the restart the last data file was ${
        lastFileRequests.filter((r) => r.operation === 'PutObject').length > 1
          ? 'sent again'
          : 'found in S3 and not sent again'
      }; the marker went ${markerWrites[0]!.receivedAt - lastData} ms after`,
    );
    assert.equal(await svc.stop(), 0);
  });
});

describe('a watched run folder after its marker went up', () => {
  it('uploads later files without the marker again, writes the manifest again once idle, and sends a changed marker', async () => {
    const bucket = await bucketFor('run-watched');
    const run = path.join(work, 'run-watched');
    for (let i = 0; i < 5; i++) await writeRandomFile(path.join(run, 'Data', `tile${i}.cbcl`), 4096);
    await writeFile(path.join(run, MARKER), 'first\n');
    const svc = await service('run-watched');
    const uploadId = await createUpload(svc, {
      source_folder: run,
      destination_bucket: bucket,
      complete_markers: [MARKER],
      manifest: true,
    });
    const first = await waitForArrival(svc, uploadId);
    assert.equal(first.arrival?.files, 5);

    // A file written after the run's marker: uploaded, the marker left alone, the manifest written
    // again once the upload is idle, now with the new file.
    await writeRandomFile(path.join(run, 'Logs', 'late.log'), 1000);
    const rewritten = await waitFor(
      async () => {
        const current = await details(svc, uploadId);
        return current.last_manifest?.files === 6 ? current : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100, message: 'the manifest written again with the late file' },
    );
    assert.equal(writesOf(bucket, MARKER).length, 1, 'the marker was not sent again');
    assert.equal(rewritten.arrival?.at, first.arrival?.at, 'no new arrival');
    await assertManifestMatchesBucket(bucket, '_manifest.json', [MARKER]);

    // The marker itself changes: it goes up again, after the manifest, as a new arrival.
    await writeFile(path.join(run, MARKER), 'second, after a requeue of the run\n');
    const second = await waitFor(
      async () => {
        const current = await details(svc, uploadId);
        return current.arrival && current.arrival.at !== first.arrival?.at ? current : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100, message: 'a second arrival' },
    );
    assert.equal(second.arrival?.files, 6);
    assert.equal(writesOf(bucket, MARKER).length, 2);
    assert.equal(
      (await getObjectBytes(s3, bucket, MARKER)).toString(),
      'second, after a requeue of the run\n',
    );
    await api(svc, 'DELETE', `/uploads/${uploadId}`);
    assert.equal(await svc.stop(), 0);
  });
});

describe('the notification of an arrival', () => {
  it('reaches the receiver once, after a retry of its first 500, and is recorded on the upload', async () => {
    const received: { status: number; body: string; headers: http.IncomingHttpHeaders }[] = [];
    const receiver = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const status = received.length === 0 ? 500 : 200;
        received.push({ status, body: Buffer.concat(chunks).toString('utf8'), headers: req.headers });
        res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 500 ? 'not now' : 'ok');
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = receiver.address() as AddressInfo;
      const bucket = await bucketFor('run-notify');
      const run = path.join(work, 'run-notify');
      for (let i = 0; i < 5; i++) await writeRandomFile(path.join(run, `f${i}.bin`), 1000);
      const svc = await service('run-notify', { NOTIFY_ALLOWED_HOSTS: '127.0.0.1' });
      const events = await openEventStream(`${svc.baseUrl}/events`);
      try {
        const uploadId = await createUpload(svc, {
          source_folder: run,
          destination_bucket: bucket,
          destination_prefix: 'runs/n1',
          manifest: true,
          notify_url: `http://127.0.0.1:${port}/hooks/run?token=s3cr3t`,
          watch: false,
        });
        const delivered = await waitFor(
          async () => {
            const current = await details(svc, uploadId);
            return current.notification?.status === 'delivered' ? current : undefined;
          },
          { timeoutMs: 30_000, intervalMs: 100, message: 'the notification delivered' },
        );
        assert.equal(delivered.notification?.attempts, 2);
        assert.equal(delivered.notification?.last_error, null);
        assert.deepEqual(
          received.map((request) => request.status),
          [500, 200],
        );
        const body = JSON.parse(received[1]!.body) as Record<string, unknown>;
        assert.deepEqual(body, {
          event: 'upload.arrived',
          upload_id: uploadId,
          bucket,
          prefix: 'runs/n1',
          files: 5,
          bytes: 5000,
          manifest_key: 'runs/n1/_manifest.json',
          marker_key: null,
          at: delivered.arrival?.at,
        });
        assert.equal(received[0]!.body, received[1]!.body, 'the retry sends the same document');
        assert.equal(received[1]!.headers['content-type'], 'application/json');
        assert.ok(received[1]!.headers['idempotency-key'], 'an idempotency key');
        const told = await waitFor(() => events.events.find((event) => event.event === 'upload.arrived'), {
          timeoutMs: 10_000,
          message: 'upload.arrived on the event stream',
        });
        assert.deepEqual(
          { event: 'upload.arrived', ...told.data },
          body,
          'the same fact on the event stream',
        );
        assert.equal(events.events.filter((event) => event.event === 'upload.arrived').length, 1);
        const shown = await api<{ notify_url: string }>(svc, 'GET', `/uploads/${uploadId}`);
        assert.equal(shown.body.notify_url, `http://127.0.0.1:${port}/hooks/run?token=***`);
        assert.ok(!svc.output.some((line) => line.includes('s3cr3t')), 'the token is never logged');
        // Once delivered, never again: a restart finds nothing pending.
        assert.equal(await svc.stop(), 0);
        const again = await service('run-notify', { NOTIFY_ALLOWED_HOSTS: '127.0.0.1' });
        await uploadDetails(again, uploadId);
        assert.equal(received.length, 2, 'delivered once');
        assert.equal(await again.stop(), 0);
      } finally {
        events.close();
      }
    } finally {
      await new Promise((resolve) => receiver.close(resolve));
    }
  });

  it('refuses a notify_url that is not http(s), or whose host is not allowed, with a 400', async () => {
    const svc = await service('run-refuse', { NOTIFY_ALLOWED_HOSTS: 'hooks.example.org' });
    const run = path.join(work, 'run-refuse');
    await mkdir(run, { recursive: true });
    const base = { source_folder: run, destination_bucket: 'any-bucket', check_bucket: false };
    for (const notify_url of ['ftp://hooks.example.org/x', 'https://elsewhere.example.org/x?token=s3cr3t']) {
      const response = await api<{ error: string; message: string }>(svc, 'POST', '/uploads', {
        ...base,
        notify_url,
      });
      assert.equal(response.status, 400, JSON.stringify(response.body));
      assert.equal(response.body.error, 'invalid_notify_url');
      assert.ok(!response.body.message.includes('s3cr3t'), response.body.message);
    }
    assert.equal(await svc.stop(), 0);
  });
});
