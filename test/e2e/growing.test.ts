// Files that are still being written: streamed part by part while they grow, appended to after an
// upload, rewritten or truncated mid-stream, a SIGKILL mid-stream, and an object changed in S3
// behind the service's back. The service runs as a child process; S3 is reached through a proxy
// that logs every request with its S3 operation, its times and its body bytes.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { appendFile, mkdir, open, truncate } from 'node:fs/promises';
import path from 'node:path';
import { after, afterEach, before, describe, it, type TestContext } from 'node:test';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { startFaultProxy, type FaultProxy, type RequestRecord } from '../support/fault-proxy.js';
import { hashFile, startGrowingWrite, type GrowingWriter } from '../support/growing-writer.js';
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
import { createUpload, fileItems, type FileItem } from '../support/upload-api.js';
import { makeTempDir, removeTempDir, writeRandomFile, type FileDigests } from '../support/temp-tree.js';

const MiB = 1024 * 1024;
const STREAM_PART = 8 * MiB;
/** The largest part the service may send in these tests: a bound on what a resend can cost. */
const PART = STREAM_PART;

/**
 * Small parts so that the tests stay small; a settle time of 2 s so that a writer held up by a busy
 * machine is not taken for a finished file.
 */
const STREAMING = {
  MULTIPART_THRESHOLD_BYTES: String(5 * MiB),
  STREAM_PART_SIZE_BYTES: String(STREAM_PART),
  PART_SIZE_BYTES: String(5 * MiB),
  SETTLE_SECONDS: '2',
};

/** A steady writer: 1 MiB every 125 ms, 8 MiB/s. */
const STEADY = { chunkBytes: MiB, intervalMs: 125 };

/** A file task as GET /uploads/{id}/files shows it, with the fields of the growing-files feature. */
interface Task extends FileItem {
  size: number;
  sha256: string | null;
  uploaded_size: number | null;
}

interface VerifyReply {
  checked: number;
  mismatches: { relative_path: string; object_key: string; reason: string }[];
  requeued: number;
}

/**
 * One test's world: its own bucket and folder, watched by one upload of a service. The tests
 * share one service (a start costs seconds), except the one that kills its own; every request goes
 * through one logging proxy, and each test reads only the requests of its own bucket.
 */
interface Rig {
  bucket: string;
  source: string;
  service: ServiceProcess;
  uploadId: string;
}

let s3: S3Client;
let proxy: FaultProxy;
let work: string;
let shared: ServiceProcess;
/** services a test started for itself; killed after it */
const ownServices: ServiceProcess[] = [];
const cleanups: (() => Promise<void>)[] = [];

before(async () => {
  s3 = testS3Client();
  work = await makeTempDir('e2e-growing');
  proxy = await startFaultProxy(testS3().endpoint);
  shared = await startOwnService('shared');
  ownServices.length = 0; // the shared one lives until after()
});

after(async () => {
  await shared.stop();
  await proxy.close();
  await removeTempDir(work);
  s3.destroy();
  assert.equal(await killAllServices(), 0, 'a service process was left running');
});

afterEach(async () => {
  for (const service of ownServices.splice(0)) await service.kill();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  assert.equal(shared.child.exitCode, null, 'the shared service process died during the test');
});

/** A service on its own database in the work folder, through the proxy; started again on the same name, it resumes. */
async function startOwnService(name: string): Promise<ServiceProcess> {
  const service = await startService({
    databaseFile: path.join(work, `${name}.db`),
    s3Endpoint: proxy.endpoint,
    env: STREAMING,
  });
  ownServices.push(service);
  return service;
}

async function setUp(label: string, service = shared): Promise<Rig> {
  const bucket = await createTestBucket(s3, label);
  cleanups.push(() => deleteBucket(s3, bucket));
  const source = path.join(work, label);
  await mkdir(source);
  const uploadId = await createUpload(service, { source_folder: source, destination_bucket: bucket });
  const rig: Rig = { bucket, source, service, uploadId };
  // Stop watching the folder, so that the shared service does nothing more for this test.
  cleanups.push(async () => {
    if (rig.service.child.exitCode === null && rig.service.child.signalCode === null)
      await api(rig.service, 'DELETE', `/uploads/${uploadId}`);
  });
  return rig;
}

/** Runs a test body; when it fails, prints the service's warnings and errors, which say why. */
async function withLogsOnFailure(t: TestContext, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    for (const [index, service] of [shared, ...ownServices].entries()) {
      const notable = service.logs.filter((entry) => typeof entry.level === 'number' && entry.level >= 40);
      t.diagnostic(`service #${index + 1}: ${notable.length} warnings and errors; the last ones:`);
      for (const entry of notable.slice(-15)) t.diagnostic(JSON.stringify(entry));
    }
    throw error;
  }
}

async function taskOf(rig: Rig, relativePath: string): Promise<Task | undefined> {
  const items = (await fileItems(rig.service, rig.uploadId)) as Task[];
  return items.find((task) => task.relative_path === relativePath);
}

/** Waits until the task of `relativePath` is completed with exactly these bytes. */
function waitForUploaded(
  rig: Rig,
  relativePath: string,
  expected: FileDigests,
  timeoutMs = 30_000,
): Promise<Task> {
  return waitFor(
    async () => {
      const task = await taskOf(rig, relativePath);
      if (task?.status === 'failed') throw new Error(`failed: ${task.last_error}`);
      const done =
        task?.status === 'completed' &&
        task.sha256 === expected.sha256 &&
        task.uploaded_size === expected.bytes;
      return done ? task : undefined;
    },
    { timeoutMs, intervalMs: 100, message: `${relativePath} uploaded as ${expected.bytes} bytes` },
  );
}

async function assertObjectEquals(rig: Rig, key: string, expected: FileDigests): Promise<void> {
  const body = await getObjectBytes(s3, rig.bucket, key);
  assert.equal(body.length, expected.bytes, `size of s3://${rig.bucket}/${key}`);
  assert.equal(createHash('sha256').update(body).digest('hex'), expected.sha256, `bytes of ${key}`);
}

function requestsFor(rig: Rig, key: string, operation: RequestRecord['operation']): RequestRecord[] {
  return proxy.log.filter((r) => r.operation === operation && r.path === `/${rig.bucket}/${key}`);
}

const stored = (record: RequestRecord): boolean => record.outcome === 200;

/** Bytes of a file's content sent to S3 (since `since`, a Date.now()): the bodies of its PutObjects and UploadParts. */
function contentBytesSent(rig: Rig, key: string, since = 0): number {
  return [...requestsFor(rig, key, 'PutObject'), ...requestsFor(rig, key, 'UploadPart')]
    .filter((record) => record.receivedAt >= since)
    .reduce((sum, record) => sum + record.bodyBytes, 0);
}

const mib = (bytes: number): string => `${(bytes / MiB).toFixed(1)} MiB`;

describe('a file written at a steady rate', () => {
  it('has its parts sent while it is written, and ends up byte for byte in S3', async (t) => {
    const rig = await setUp('steady');
    await withLogsOnFailure(t, async () => {
      const key = 'run/steady.bin';
      const writer = startGrowingWrite(path.join(rig.source, key), { totalBytes: 48 * MiB, ...STEADY });
      const written = await writer.done;
      const task = await waitForUploaded(rig, key, written);
      const completedAt = Date.now();

      const partsWhileWriting = requestsFor(rig, key, 'UploadPart').filter(
        (r) => stored(r) && r.answeredAt !== undefined && r.answeredAt <= written.lastWriteAt,
      );
      assert.ok(
        partsWhileWriting.length >= 2,
        `only ${partsWhileWriting.length} parts were stored before the last write`,
      );
      await assertObjectEquals(rig, key, written);
      assert.equal(task.sha256, written.sha256);
      assert.equal(task.uploaded_size, written.bytes);
      const sent = contentBytesSent(rig, key);
      assert.ok(sent >= written.bytes, `only ${mib(sent)} sent`);
      assert.ok(sent <= written.bytes + PART, `${mib(sent)} sent for ${mib(written.bytes)}`);
      assert.deepEqual(await listMultipartUploads(s3, rig.bucket), []);
      t.diagnostic(
        `${partsWhileWriting.length} parts stored while writing (${written.maxLagMs} ms worst writer lag); ` +
          `${mib(sent)} sent; completed at most ${completedAt - written.lastWriteAt} ms after the last write`,
      );
    });
  });
});

describe('a completed file that grows by appends', () => {
  it('is uploaded again by copying the object and sending only the new bytes', async (t) => {
    const rig = await setUp('append');
    await withLogsOnFailure(t, async () => {
      const key = 'log/append.bin';
      const file = path.join(rig.source, key);
      const first = await writeRandomFile(file, 24 * MiB);
      await waitForUploaded(rig, key, first);

      const appendedAt = Date.now();
      const added = 12 * MiB;
      await appendFile(file, randomBytes(added));
      const grown = await hashFile(file);
      const task = await waitForUploaded(rig, key, grown);

      await assertObjectEquals(rig, key, grown);
      assert.equal(task.sha256, grown.sha256);
      const sent = contentBytesSent(rig, key, appendedAt);
      assert.ok(sent <= added + PART, `${mib(sent)} sent for an append of ${mib(added)}`);
      const copies = requestsFor(rig, key, 'UploadPartCopy').filter(stored);
      assert.ok(copies.length >= 1, 'the existing object was copied with UploadPartCopy');
      assert.ok(
        copies.every((copy) => copy.bodyBytes === 0),
        'an UploadPartCopy carries no body',
      );
      assert.deepEqual(await listMultipartUploads(s3, rig.bucket), []);
      t.diagnostic(`${mib(sent)} sent for the append; ${copies.length} UploadPartCopy`);
    });
  });
});

describe('a file changed other than by appends while it is streamed', () => {
  it('ends up as the final file, rewritten in the middle or truncated, with no multipart upload left', async (t) => {
    const rig = await setUp('rewrite');
    await withLogsOnFailure(t, async () => {
      // Both writers go on until each file was changed and grew by a part after it (at most 20 s at
      // 8 MiB/s): the change lands while the file is still written, however slow the machine.
      const total = 160 * MiB;
      const rewrittenKey = 'rewritten.bin';
      const truncatedKey = 'truncated.bin';
      const rewrittenFile = path.join(rig.source, rewrittenKey);
      const truncatedFile = path.join(rig.source, truncatedKey);
      const rewritten = startGrowingWrite(rewrittenFile, { totalBytes: total, ...STEADY });
      const truncated = startGrowingWrite(truncatedFile, { totalBytes: total, ...STEADY });

      const firstPartStored = (key: string) =>
        waitFor(
          () =>
            requestsFor(rig, key, 'UploadPart').some((r) => stored(r) && r.query.get('partNumber') === '1'),
          { timeoutMs: 20_000, message: `part 1 of ${key} stored` },
        );
      const finishAfterAnotherPart = async (writer: GrowingWriter, key: string) => {
        const changedAt = writer.writtenBytes;
        assert.ok(changedAt < total, `${key} was changed while it was still being written`);
        await waitFor(() => writer.writtenBytes >= changedAt + PART, {
          timeoutMs: 20_000,
          message: `${key} grown by a part after the change`,
        });
        writer.finish();
      };
      await firstPartStored(rewrittenKey);
      // 1 MiB of other bytes at 1 MiB: inside part 1, which S3 already holds.
      const handle = await open(rewrittenFile, 'r+');
      try {
        await handle.write(randomBytes(MiB), 0, MiB, MiB);
      } finally {
        await handle.close();
      }
      const rewrittenFinished = finishAfterAnotherPart(rewritten, rewrittenKey);

      await firstPartStored(truncatedKey);
      await truncate(truncatedFile, 2 * MiB); // the writer appends on from here
      await finishAfterAnotherPart(truncated, truncatedKey);
      await rewrittenFinished;

      await Promise.all([rewritten.done, truncated.done]);
      const finalRewritten = await hashFile(rewrittenFile);
      const finalTruncated = await hashFile(truncatedFile);
      await waitForUploaded(rig, rewrittenKey, finalRewritten);
      await waitForUploaded(rig, truncatedKey, finalTruncated);
      await assertObjectEquals(rig, rewrittenKey, finalRewritten);
      await assertObjectEquals(rig, truncatedKey, finalTruncated);
      assert.deepEqual(await listMultipartUploads(s3, rig.bucket), [], 'no multipart upload left');
      const aborts = (key: string) => requestsFor(rig, key, 'AbortMultipartUpload').length;
      t.diagnostic(
        `aborts: ${aborts(rewrittenKey)} for the rewritten file, ${aborts(truncatedKey)} for the truncated one; ` +
          `${mib(contentBytesSent(rig, rewrittenKey) + contentBytesSent(rig, truncatedKey))} sent for ${mib(finalRewritten.bytes + finalTruncated.bytes)}`,
      );
    });
  });
});

describe('a SIGKILL while a growing file is streamed', () => {
  it('resumes after a restart on the same database and sends little more than the file', async (t) => {
    const rig = await setUp('kill', await startOwnService('kill'));
    await withLogsOnFailure(t, async () => {
      const key = 'growing.bin';
      const total = 48 * MiB;
      const writer = startGrowingWrite(path.join(rig.source, key), { totalBytes: total, ...STEADY });
      await waitFor(() => requestsFor(rig, key, 'UploadPart').some(stored), {
        timeoutMs: 20_000,
        message: `a part of ${key} stored`,
      });
      await rig.service.kill();
      const storedBeforeKill = requestsFor(rig, key, 'UploadPart').filter(stored).length;
      assert.ok(writer.writtenBytes < total, 'the service was killed while the file was still written');

      rig.service = await startOwnService('kill'); // the same database
      const written = await writer.done;
      await waitForUploaded(rig, key, written, 40_000);
      await assertObjectEquals(rig, key, written);
      const sent = contentBytesSent(rig, key);
      assert.ok(sent <= written.bytes + 2 * PART, `${mib(sent)} sent in all for ${mib(written.bytes)}`);
      assert.equal(
        requestsFor(rig, key, 'CreateMultipartUpload').length,
        1,
        'the multipart upload was resumed, not started again',
      );
      assert.deepEqual(await listMultipartUploads(s3, rig.bucket), []);
      t.diagnostic(`${storedBeforeKill} parts stored before the kill; ${mib(sent)} sent in all`);
      assert.equal(await rig.service.stop(), 0);
    });
  });
});

describe('POST /uploads/{id}/verify', () => {
  it('finds an object changed in S3 behind its back and uploads the file again', async (t) => {
    const rig = await setUp('verify');
    await withLogsOnFailure(t, async () => {
      const changedKey = 'a/changed.bin';
      const keptKey = 'a/kept.bin';
      const changed = await writeRandomFile(path.join(rig.source, changedKey), 256 * 1024);
      const kept = await writeRandomFile(path.join(rig.source, keptKey), 6 * MiB); // multipart
      await waitForUploaded(rig, changedKey, changed);
      await waitForUploaded(rig, keptKey, kept);

      await s3.send(
        new PutObjectCommand({ Bucket: rig.bucket, Key: changedKey, Body: randomBytes(changed.bytes) }),
      );
      const verified = await api<VerifyReply>(rig.service, 'POST', `/uploads/${rig.uploadId}/verify`);
      assert.equal(verified.status, 200, JSON.stringify(verified.body));
      assert.equal(verified.body.checked, 2);
      assert.equal(verified.body.mismatches.length, 1, JSON.stringify(verified.body.mismatches));
      const [mismatch] = verified.body.mismatches;
      assert.equal(mismatch?.relative_path, changedKey);
      assert.equal(mismatch?.object_key, changedKey);
      assert.equal(typeof mismatch?.reason, 'string');
      assert.equal(verified.body.requeued, 1);

      await waitFor(
        async () => {
          const body = await getObjectBytes(s3, rig.bucket, changedKey);
          return createHash('sha256').update(body).digest('hex') === changed.sha256;
        },
        { timeoutMs: 20_000, intervalMs: 100, message: `${changedKey} uploaded again` },
      );
      await waitForUploaded(rig, changedKey, changed);
      await assertObjectEquals(rig, keptKey, kept);
      const again = await api<VerifyReply>(rig.service, 'POST', `/uploads/${rig.uploadId}/verify`);
      assert.equal(again.status, 200);
      assert.deepEqual(again.body.mismatches, []);
      assert.equal(again.body.requeued, 0);
      assert.equal((await api(rig.service, 'POST', '/uploads/no-such-upload/verify')).status, 404);
    });
  });
});
