// What users rely on when things go wrong: a SIGKILL mid-upload, a missing bucket, a flaky S3,
// an S3 outage, a cancel, a restart, credentials fixed by a restart. Each test runs its own service process, S3 reached through a fault proxy.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { CreateBucketCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { INTERNAL_ERROR, SLOW_DOWN, startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { openEventStream } from '../support/event-stream.js';
import { waitFor } from '../support/poll.js';
import {
  createTestBucket,
  deleteBucket,
  getObjectBytes,
  listKeys,
  listMultipartUploads,
  testS3,
  testS3Client,
  uniqueBucketName,
} from '../support/s3.js';
import { api, killAllServices, startService, type ServiceProcess } from '../support/service-process.js';
import { createUpload, fileItems, uploadDetails, waitForCompleted } from '../support/upload-api.js';
import { makeTempDir, removeTempDir, writeRandomFile } from '../support/temp-tree.js';

const MiB = 1024 * 1024;
const md5 = (data: Buffer): string => createHash('md5').update(data).digest('hex');

let s3: S3Client;
let proxy: FaultProxy;
let work: string;

before(async () => {
  s3 = testS3Client();
  proxy = await startFaultProxy(testS3().endpoint);
  work = await makeTempDir('e2e-resilience');
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

/** Multipart from 5 MiB, in 5 MiB parts, so that tests stay small. */
const SMALL_PARTS = { MULTIPART_THRESHOLD_BYTES: String(5 * MiB), PART_SIZE_BYTES: String(5 * MiB) };

function start(label: string, env: Record<string, string> = {}): Promise<ServiceProcess> {
  return startService({
    databaseFile: path.join(work, `${label}.db`),
    s3Endpoint: proxy.endpoint,
    env,
  });
}

const isUploadPart = (record: { method: string; query: URLSearchParams }): boolean =>
  record.method === 'PUT' && record.query.has('partNumber');

describe('a SIGKILL in the middle of a multipart upload', () => {
  it('resumes after a restart without re-sending the parts S3 already has', async () => {
    const bucket = await createTestBucket(s3, 'crash');
    const source = path.join(work, 'crash');
    const file = path.join(source, 'run/big.bin');
    await writeRandomFile(file, 40 * MiB); // 8 parts of 5 MiB
    const env = { ...SMALL_PARTS, MAX_CONCURRENT_PARTS: '1' };
    // Slow parts, so that the kill lands in the middle.
    proxy.inject({ method: 'PUT', query: ['partNumber'], fault: { type: 'delay', ms: 300 } });

    let service = await start('crash', env);
    const uploadId = await createUpload(service, { source_folder: source, destination_bucket: bucket });
    const partsBeforeKill = await waitFor(
      () => {
        const stored = proxy.log.filter((record) => isUploadPart(record) && record.outcome === 200).length;
        return stored >= 3 ? stored : undefined;
      },
      { timeoutMs: 30_000, message: 'three parts stored before the kill' },
    );
    await service.kill();
    const storedBeforeRestart = proxy.log.filter((r) => isUploadPart(r) && r.outcome === 200).length;
    assert.ok(storedBeforeRestart >= partsBeforeKill);

    proxy.clearFaults();
    proxy.resetStats();
    service = await start('crash', env);
    await waitForCompleted(service, uploadId, 1);
    const sentAfterRestart = proxy.log.filter(isUploadPart).length;
    assert.ok(
      sentAfterRestart <= 8 - storedBeforeRestart,
      `${sentAfterRestart} parts sent after the restart; S3 already had ${storedBeforeRestart} of 8`,
    );
    assert.equal(
      proxy.log.filter((r) => r.method === 'POST' && r.query.has('uploads')).length,
      0,
      'no new multipart upload',
    );
    assert.equal(md5(await getObjectBytes(s3, bucket, 'run/big.bin')), md5(await readFile(file)));
    assert.deepEqual(await listMultipartUploads(s3, bucket), []);
    const [task] = await fileItems(service, uploadId);
    assert.equal(task?.status, 'completed');
    await service.stop();
    await deleteBucket(s3, bucket);
  });
});

describe('a SIGKILL while files complete', () => {
  it('keeps every completion it reported, and does not send again a file S3 got but the store had not recorded', async () => {
    const bucket = await createTestBucket(s3, 'kill-commits');
    const source = path.join(work, 'kill-commits');
    const files = 300;
    const digests = new Map<string, string>();
    for (let i = 0; i < files; i++) {
      const relativePath = `d${i % 10}/f${i}.bin`;
      digests.set(relativePath, (await writeRandomFile(path.join(source, relativePath), 2048)).md5);
    }
    digests.set('hold.bin', (await writeRandomFile(path.join(source, 'hold.bin'), 4096)).md5);
    // S3 stores hold.bin, and its answer never reaches the service: killed, it has not recorded it.
    proxy.inject({ method: 'PUT', path: /\/hold\.bin$/, fault: { type: 'stall' } });

    let service = await start('kill-commits');
    const events = await openEventStream(`${service.baseUrl}/events`);
    const uploadId = await createUpload(service, { source_folder: source, destination_bucket: bucket });
    const completedBefore = () =>
      events.events
        .filter((event) => event.event === 'file.completed')
        .map((event) => String(event.data.path));
    const isPut = (record: { method: string; path: string }, key: string) =>
      record.method === 'PUT' && record.path === `/${bucket}/${key}`;
    const holdInS3 = () =>
      s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'hold.bin' })).then(
        () => true,
        () => false,
      );
    await waitFor(async () => completedBefore().length >= 100 && (await holdInS3()), {
      timeoutMs: 30_000,
      message: 'hold.bin in S3 and 100 files reported completed',
    });
    await service.kill();
    events.close();
    const reported = new Set(completedBefore());
    assert.ok(!reported.has('hold.bin'));

    proxy.clearFaults();
    service = await start('kill-commits');
    await waitForCompleted(service, uploadId, files + 1);
    const items = new Map((await fileItems(service, uploadId)).map((item) => [item.relative_path, item]));
    for (const relativePath of reported) {
      assert.equal(items.get(relativePath)?.status, 'completed', `${relativePath}, reported before the kill`);
    }
    // Every file reached S3 once, over both runs: what was reported stayed recorded, and hold.bin,
    // in S3 but not recorded, was recognised by its SHA-256 after the restart.
    for (const [relativePath, md5] of digests) {
      // hold.bin's answer was held: it never got an outcome, yet S3 has it.
      const stored = proxy.log.filter(
        (record) => isPut(record, relativePath) && (record.outcome === 200 || relativePath === 'hold.bin'),
      );
      assert.equal(stored.length, 1, `${relativePath} stored ${stored.length} times`);
      assert.equal(items.get(relativePath)?.etag?.replaceAll('"', ''), md5, relativePath);
    }
    assert.equal(items.get('hold.bin')?.skipped, 'already in S3');
    assert.equal((await listKeys(s3, bucket)).length, files + 1);
    await service.stop();
    await deleteBucket(s3, bucket);
  });
});

describe('a write that lands while the file is in flight', () => {
  it('is uploaded once the upload in flight ends, without waiting for a rescan', async () => {
    const bucket = await createTestBucket(s3, 'in-flight');
    const source = path.join(work, 'in-flight');
    await mkdir(source, { recursive: true });
    // Held at the proxy after the file was read: the second write lands while the PUT is in flight.
    proxy.inject({ method: 'PUT', path: /\/late\.txt$/, fault: { type: 'delay', ms: 1500 }, times: 1 });
    const service = await start('in-flight', { RESCAN_INTERVAL_SECONDS: '3600' });
    const uploadId = await createUpload(service, { source_folder: source, destination_bucket: bucket });
    await writeFile(path.join(source, 'late.txt'), 'first');
    await waitFor(
      () => proxy.log.some((record) => record.method === 'PUT' && record.path.endsWith('/late.txt')),
      {
        message: 'the first PUT of late.txt sent',
      },
    );
    await writeFile(path.join(source, 'late.txt'), 'second, written while the first was in flight');
    await waitFor(
      async () =>
        (await getObjectBytes(s3, bucket, 'late.txt').catch(() => Buffer.from(''))).toString() ===
        'second, written while the first was in flight',
      { timeoutMs: 20_000, message: 'the second version in S3' },
    );
    await waitForCompleted(service, uploadId, 1);
    await service.stop();
    await deleteBucket(s3, bucket);
  });
});

describe('a missing bucket', () => {
  it('fails the files with the error, then requeues and completes them once the bucket exists', async () => {
    const bucket = uniqueBucketName('missing');
    const source = path.join(work, 'missing');
    await mkdir(source, { recursive: true });
    await writeFile(path.join(source, 'a.txt'), 'a');
    await writeFile(path.join(source, 'b.txt'), 'b');
    const service = await start('missing', { FAILED_REQUEUE_INTERVAL_SECONDS: '1' });
    // Not checked first: the bucket is meant to come later.
    const uploadId = await createUpload(service, {
      source_folder: source,
      destination_bucket: bucket,
      check_bucket: false,
    });

    const failed = await waitFor(
      async () => {
        const current = await uploadDetails(service, uploadId);
        return current.files.failed === 2 ? current : undefined;
      },
      { timeoutMs: 20_000, message: 'both files failed' },
    );
    assert.match(failed.last_error ?? '', /NoSuchBucket/);
    for (const task of await fileItems(service, uploadId)) {
      assert.equal(task.status, 'failed');
      assert.match(task.last_error ?? '', /does not exist.*NoSuchBucket/);
    }
    // A permanent error is not retried inside an attempt: one PUT per file per attempt.
    const putsPerAttempt = proxy.log.filter((r) => r.method === 'PUT').length;
    const attempts = (await fileItems(service, uploadId)).reduce((sum, task) => sum + task.attempts, 0);
    assert.equal(putsPerAttempt, attempts);

    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    await waitForCompleted(service, uploadId, 2);
    assert.deepEqual(await listKeys(s3, bucket), ['a.txt', 'b.txt']);
    assert.equal(await service.stop(), 0);
    await deleteBucket(s3, bucket);
  });
});

describe('transient S3 errors', () => {
  it('are retried until every file arrives intact', async () => {
    const bucket = await createTestBucket(s3, 'flaky');
    const source = path.join(work, 'flaky');
    const expected = new Map<string, string>();
    for (let i = 0; i < 12; i++) {
      expected.set(`f${i}.bin`, (await writeRandomFile(path.join(source, `f${i}.bin`), 64 * 1024 + i)).md5);
    }
    expected.set('big.bin', (await writeRandomFile(path.join(source, 'big.bin'), 12 * MiB)).md5);
    // Every other PUT (small files and parts) and the first Complete fail with a 5xx or a reset.
    proxy.inject({ method: 'PUT', times: 6, fault: SLOW_DOWN });
    proxy.inject({ method: 'PUT', skip: 3, times: 3, fault: INTERNAL_ERROR });
    proxy.inject({ method: 'PUT', skip: 6, times: 2, fault: { type: 'reset', stage: 'before-forward' } });
    proxy.inject({ method: 'POST', query: ['uploadId'], times: 1, fault: INTERNAL_ERROR });

    const service = await start('flaky', { ...SMALL_PARTS, RETRY_MAX_ATTEMPTS: '8' });
    const uploadId = await createUpload(service, { source_folder: source, destination_bucket: bucket });
    await waitForCompleted(service, uploadId, expected.size, 60_000);
    assert.ok(proxy.stats.faultsInjected >= 10, `only ${proxy.stats.faultsInjected} faults were injected`);
    for (const [key, digest] of expected)
      assert.equal(md5(await getObjectBytes(s3, bucket, key)), digest, key);
    for (const task of await fileItems(service, uploadId)) assert.equal(task.attempts, 1, task.relative_path);
    assert.deepEqual(await listMultipartUploads(s3, bucket), []);
    await service.stop();
    await deleteBucket(s3, bucket);
  });
});

describe('cancel', () => {
  it('stops watching, stops the upload in flight and aborts its multipart upload on S3', async () => {
    const bucket = await createTestBucket(s3, 'cancel');
    const source = path.join(work, 'cancel');
    await writeRandomFile(path.join(source, 'big.bin'), 30 * MiB);
    proxy.inject({ method: 'PUT', query: ['partNumber'], fault: { type: 'delay', ms: 300 } });
    const service = await start('cancel', { ...SMALL_PARTS, MAX_CONCURRENT_PARTS: '1' });
    const uploadId = await createUpload(service, { source_folder: source, destination_bucket: bucket });
    await waitFor(() => proxy.log.some((r) => isUploadPart(r) && r.outcome === 200), {
      timeoutMs: 20_000,
      message: 'a part stored',
    });

    const cancelled = await api<{ status: string }>(service, 'DELETE', `/uploads/${uploadId}`);
    assert.equal(cancelled.status, 200);
    assert.equal(cancelled.body.status, 'cancelled');
    assert.deepEqual(await listMultipartUploads(s3, bucket), [], 'the multipart upload was aborted');
    assert.equal(
      (await api(service, 'DELETE', `/uploads/${uploadId}`)).status,
      200,
      'cancelling twice is fine',
    );

    proxy.clearFaults();
    proxy.resetStats();
    await writeFile(path.join(source, 'after-cancel.txt'), 'not uploaded by the cancelled upload');
    // A second upload on the same folder proves the new file was seen; the cancelled one must not take it.
    const witnessBucket = await createTestBucket(s3, 'witness');
    const witness = await createUpload(service, {
      source_folder: source,
      destination_bucket: witnessBucket,
      pattern: 'after-cancel.txt',
    });
    await waitForCompleted(service, witness, 1);
    assert.deepEqual(await listKeys(s3, bucket), [], 'nothing uploaded for the cancelled upload');
    assert.equal((await uploadDetails(service, uploadId)).status, 'cancelled');
    const listed = await api<{ upload_id: string }[]>(service, 'GET', '/uploads?status=cancelled');
    assert.ok(listed.body.some((request) => request.upload_id === uploadId));
    await deleteBucket(s3, witnessBucket);
    assert.equal((await api(service, 'DELETE', '/uploads/no-such-upload')).status, 404);
    await service.stop();
    await deleteBucket(s3, bucket);
  });
});

describe('a restart', () => {
  it('uploads the files added while the service was stopped, and nothing twice', async () => {
    const bucket = await createTestBucket(s3, 'restart');
    const source = path.join(work, 'restart');
    await writeRandomFile(path.join(source, 'before/a.bin'), 2048);
    await writeRandomFile(path.join(source, 'before/b.bin'), 4096);
    let service = await start('restart');
    const uploadId = await createUpload(service, { source_folder: source, destination_bucket: bucket });
    await waitForCompleted(service, uploadId, 2);
    assert.equal(await service.stop('SIGTERM'), 0, 'a graceful stop exits 0');

    const added = await writeRandomFile(path.join(source, 'while-stopped/c.bin'), 8192);
    proxy.resetStats();
    service = await start('restart');
    await waitForCompleted(service, uploadId, 3);
    assert.equal(md5(await getObjectBytes(s3, bucket, 'while-stopped/c.bin')), added.md5);
    assert.equal(proxy.stats.requests.PUT, 1, 'only the new file was uploaded');
    assert.equal((await uploadDetails(service, uploadId)).status, 'active');
    assert.equal(await service.stop('SIGINT'), 0);
    await deleteBucket(s3, bucket);
  });
});

describe('SIGTERM during a multipart upload', () => {
  it('exits 0 within seconds, keeps the parts, and resumes them at the next start', async () => {
    const bucket = await createTestBucket(s3, 'sigterm');
    const source = path.join(work, 'sigterm');
    const file = path.join(source, 'big.bin');
    await writeRandomFile(file, 30 * MiB); // 6 parts of 5 MiB
    const env = { ...SMALL_PARTS, MAX_CONCURRENT_PARTS: '1' };
    proxy.inject({ method: 'PUT', query: ['partNumber'], fault: { type: 'delay', ms: 400 } });
    let service = await start('sigterm', env);
    const uploadId = await createUpload(service, { source_folder: source, destination_bucket: bucket });
    await waitFor(() => proxy.log.filter((r) => isUploadPart(r) && r.outcome === 200).length >= 2, {
      timeoutMs: 20_000,
      message: 'two parts stored',
    });
    const stopAsked = Date.now();
    assert.equal(await service.stop('SIGTERM'), 0);
    assert.ok(Date.now() - stopAsked < 8000, `stopping took ${Date.now() - stopAsked} ms`);
    const stored = proxy.log.filter((r) => isUploadPart(r) && r.outcome === 200).length;

    proxy.clearFaults();
    proxy.resetStats();
    service = await start('sigterm', env);
    await waitForCompleted(service, uploadId, 1);
    assert.ok(proxy.log.filter(isUploadPart).length <= 6 - stored, 'the stored parts were not sent again');
    assert.equal(md5(await getObjectBytes(s3, bucket, 'big.bin')), md5(await readFile(file)));
    await service.stop();
    await deleteBucket(s3, bucket);
  });
});

describe('a file that vanishes before its upload', () => {
  it('is dropped from the queue with a note, not retried', async () => {
    const bucket = await createTestBucket(s3, 'vanish');
    const source = path.join(work, 'vanish');
    await mkdir(source, { recursive: true });
    // A long settle time holds the new file in the queue while the test deletes it.
    const service = await start('vanish', { SETTLE_SECONDS: '3' });
    const uploadId = await createUpload(service, { source_folder: source, destination_bucket: bucket });
    await waitFor(async () => (await uploadDetails(service, uploadId)).status === 'active', {
      message: 'active',
    });
    const file = path.join(source, 'short-lived.tmp');
    await writeFile(file, 'gone soon');
    await waitFor(async () => (await uploadDetails(service, uploadId)).files.pending === 1, {
      message: 'the file is queued',
    });
    await rm(file);
    const after = await waitFor(
      async () => {
        const current = await uploadDetails(service, uploadId);
        return current.files.total === 0 ? current : undefined;
      },
      { timeoutMs: 20_000, message: 'the task is dropped' },
    );
    assert.match(after.last_error ?? '', /short-lived\.tmp vanished before it was uploaded/);
    assert.deepEqual(await listKeys(s3, bucket), []);
    assert.equal(proxy.stats.requests.PUT ?? 0, 0);
    await service.stop();
    await deleteBucket(s3, bucket);
  });
});

describe('a second instance on the same database', () => {
  it('refuses to start, saying why, and leaves the running one alone', async () => {
    const first = await start('shared-db');
    await assert.rejects(start('shared-db'), /is in use by another running instance/);
    assert.equal((await api(first, 'GET', '/')).status, 200);
    assert.equal(await first.stop(), 0);
  });
});

// S3 outages are waited out, not failed: with S3 refusing every connection for 30 s in the middle
// of an upload, no file is marked failed, nothing needs a retry call, and everything completes by
// itself once S3 is back, the multipart upload in flight resuming with its parts. And a restart
// after a configuration fix (the credentials) tries the failed files again at once.

/** How long S3 is down; OUTAGE_SECONDS shortens it for a quick local run. */
const OUTAGE_MS = Number(process.env.OUTAGE_SECONDS ?? 30) * 1000;

interface Health {
  s3: { status: string; since: string; last_error: string | null };
}

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

    const service = await start('outage', {
      ...SMALL_PARTS,
      MAX_CONCURRENT_FILES: '2',
      MAX_CONCURRENT_PARTS: '1',
      STREAM_GROWING_FILES: 'false',
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
    // Each retry during the outage names the file by our upload id, its path and its key, and S3's
    // multipart upload id by another name.
    const retries = service.logs.filter((line) => String(line.msg).endsWith('failed; retrying'));
    assert.ok(retries.length > 0, 'requests were retried during the outage');
    for (const line of retries) {
      assert.equal(line.uploadId, uploadId, JSON.stringify(line));
      assert.equal(typeof line.key, 'string', JSON.stringify(line));
      assert.equal(typeof line.path, 'string', JSON.stringify(line));
    }
    assert.equal(service.logs.filter((line) => String(line.msg).startsWith('upload failed')).length, 0);
    // The engine's own lines about a file use the same names: our upload id and the object key.
    const uploaded = service.logs.filter((line) => line.msg === 'file uploaded');
    assert.ok(uploaded.length > 0, 'files were logged as uploaded');
    for (const line of uploaded) {
      assert.equal(line.uploadId, uploadId, JSON.stringify(line));
      assert.equal(typeof line.key, 'string', JSON.stringify(line));
    }

    // Nothing was counted against the files (and the test made no retry call), and the multipart upload
    // resumed: only the parts S3 did not have were sent after the outage.
    for (const file of await fileItems(service, uploadId)) {
      assert.equal(file.attempts, 1, `${file.relative_path} was attempted ${file.attempts} times`);
    }
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
    const wrongKey = await start('fixed', { AWS_SECRET_ACCESS_KEY: `not-${testS3().secretAccessKey}` });
    // Unchecked, as if the key had been rotated after the upload was created: the files fail.
    const uploadId = await createUpload(wrongKey, {
      source_folder: source,
      destination_bucket: bucket,
      check_bucket: false,
    });
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
    const fixed = await start('fixed');
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
