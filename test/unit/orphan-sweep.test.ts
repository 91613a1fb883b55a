// The orphan sweep on a real SQLite store, with S3 played by a fake: which uploads it aborts,
// which it leaves, how it lists each bucket once, and that a failure never stops it.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { pino } from 'pino';
import { objectKeyFor } from '../../src/domain/object-key.js';
import { commonPrefix, sweepOrphanUploads } from '../../src/engine/orphan-sweep.js';
import type { Logger } from '../../src/logger.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Store } from '../../src/store/store.js';
import { S3RequestError } from '../../src/transfer/errors.js';
import { FakeAuditor } from '../support/fake-auditor.js';
import { readyAt } from '../support/store-fixtures.js';

const STARTED_AT = Date.parse('2024-05-01T12:00:00Z');
const BEFORE = new Date(STARTED_AT - 60_000);
const AFTER = new Date(STARTED_AT + 1_000);

interface LogLine {
  level: number;
  msg: string;
  bucket?: string;
  key?: string;
  s3UploadId?: string;
  aborted?: number;
}

async function setUp(t: TestContext): Promise<{ store: Store; logger: Logger; lines: LogLine[] }> {
  const root = await mkdtemp(path.join(tmpdir(), 'orphan-sweep-'));
  const store = openSqliteStore(path.join(root, 'state.db'));
  const lines: LogLine[] = [];
  const logger = pino(
    { level: 'info' },
    { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) },
  );
  t.after(async () => {
    await store.close();
    await rm(root, { recursive: true, force: true });
  });
  return { store, logger, lines };
}

/** An upload with one task per path; `recorded` maps a path to the multipart upload its task records. */
async function upload(
  store: Store,
  uploadId: string,
  bucket: string,
  prefix: string,
  paths: string[],
  recorded: Record<string, string> = {},
): Promise<void> {
  await store.createUpload(
    { uploadId, sourceFolder: '/data', destinationBucket: bucket, destinationPrefix: prefix, pattern: '**' },
    STARTED_AT - 3_600_000,
  );
  const files = paths.map((relativePath) => ({
    relativePath,
    size: 100,
    mtimeMs: 1,
    ino: 1,
    ctimeMs: 1,
    observedAt: 1,
  }));
  const keyOf = (relativePath: string) => objectKeyFor(prefix, relativePath);
  await store.recordObservedFiles(uploadId, files, keyOf, readyAt(1), 1);
  for (const [relativePath, s3UploadId] of Object.entries(recorded)) {
    const task = await store.findTaskByPath(uploadId, relativePath);
    assert.ok(task);
    await store.saveMultipart(
      {
        taskId: task.taskId,
        s3UploadId,
        bucket,
        key: task.objectKey,
        size: 100,
        mtimeMs: 1,
        ino: 1,
        ctimeMs: 1,
        partSize: 5,
        streamed: false,
        copiedBytes: 0,
        copySourceEtag: null,
      },
      1,
    );
  }
}

test('aborts exactly the untracked uploads at our keys that are older than this start', async (t) => {
  const { store, logger, lines } = await setUp(t);
  await upload(store, 'r1', 'b1', 'runs/1', ['a.txt', 'b.txt'], { 'b.txt': 'tracked-1' });
  await upload(store, 'r2', 'b1', 'runs/2', ['a.txt']);
  // Another upload at the same keys as r1's: what it records is not an orphan either.
  await upload(store, 'r1-again', 'b1', 'runs/1', ['a.txt'], { 'a.txt': 'tracked-by-twin' });
  await upload(store, 'r3', 'b2', '', ['c.txt']);
  await store.cancelUpload('r3', STARTED_AT - 1);
  await upload(store, 'r4', 'gone', 'x', ['d.txt']);

  const auditor = new FakeAuditor();
  const open = (bucket: string, key: string, s3UploadId: string, initiated: Date | 'unknown' = BEFORE) =>
    auditor.openUpload(bucket, {
      key,
      s3UploadId,
      initiated: initiated === 'unknown' ? undefined : initiated,
    });
  open('b1', 'runs/1/a.txt', 'orphan-1');
  open('b1', 'runs/1/b.txt', 'tracked-1');
  open('b1', 'runs/1/b.txt', 'orphan-2');
  open('b1', 'runs/1/a.txt', 'tracked-by-twin');
  open('b1', 'runs/1/a.txt', 'created-since-start', AFTER);
  open('b1', 'runs/1/a.txt', 'no-creation-time', 'unknown');
  open('b1', 'runs/1/unknown.txt', 'foreign-path');
  open('b1', 'runs/1', 'foreign-prefix-itself');
  open('b1', 'runs/2/a.txt', 'orphan-3');
  open('b1', 'elsewhere/a.txt', 'foreign-key');
  open('b2', 'c.txt', 'orphan-4');
  auditor.failingBuckets.set(
    'gone',
    new S3RequestError(
      'ListMultipartUploads',
      { bucket: 'gone' },
      1,
      Object.assign(new Error('no'), { name: 'NoSuchBucket' }),
    ),
  );

  const summary = await sweepOrphanUploads({ store, auditor, logger, startedAt: STARTED_AT });

  assert.deepEqual(
    auditor.aborted.map((multipart) => `${multipart.bucket}/${multipart.key}#${multipart.s3UploadId}`).sort(),
    ['b1/runs/1/a.txt#orphan-1', 'b1/runs/1/b.txt#orphan-2', 'b1/runs/2/a.txt#orphan-3', 'b2/c.txt#orphan-4'],
  );
  assert.deepEqual(
    auditor.listings,
    [
      { bucket: 'b1', prefix: 'runs/' },
      { bucket: 'b2', prefix: '' },
    ],
    'each bucket listed once, under the common prefix of its uploads',
  );
  assert.deepEqual(summary, {
    buckets: 3,
    bucketsFailed: 1,
    uploadsAtOurKeys: 8,
    aborted: 4,
    abortsFailed: 0,
  });

  const abortLines = lines.filter((line) => line.level === 30 && /aborted a multipart upload/.test(line.msg));
  assert.deepEqual(
    abortLines.map((line) => `${line.bucket}/${line.key}#${line.s3UploadId}`).sort(),
    auditor.aborted.map((multipart) => `${multipart.bucket}/${multipart.key}#${multipart.s3UploadId}`).sort(),
  );
  const failed = lines.find((line) => line.level === 40 && line.bucket === 'gone');
  assert.ok(failed, 'the bucket that cannot be listed is logged');
  const last = lines.at(-1);
  assert.equal(last?.msg, 'orphan sweep done');
  assert.equal(last?.aborted, 4);
});

test('leaves the untracked upload at the key of a task in progress: a running instance may not have recorded it yet', async (t) => {
  const { store, logger } = await setUp(t);
  await upload(store, 'r1', 'b1', '', ['running.txt', 'idle.txt']);
  assert.equal(await store.activateUpload('r1', STARTED_AT - 1), true);
  const running = await store.findTaskByPath('r1', 'running.txt');
  assert.ok(running);
  const claimed = await store.claimReadyTasks(STARTED_AT, 10);
  assert.deepEqual(
    claimed.map((task) => task.relativePath),
    ['running.txt', 'idle.txt'],
  );
  await store.releaseTask(claimed[1]!.taskId, { ...claimed[1]!, readyAt: STARTED_AT }, null, STARTED_AT);
  const auditor = new FakeAuditor();
  auditor.openUpload('b1', { key: 'running.txt', s3UploadId: 'being-recorded', initiated: BEFORE });
  auditor.openUpload('b1', { key: 'idle.txt', s3UploadId: 'orphan', initiated: BEFORE });
  const summary = await sweepOrphanUploads({ store, auditor, logger, startedAt: STARTED_AT });
  assert.deepEqual(auditor.aborted, [{ bucket: 'b1', key: 'idle.txt', s3UploadId: 'orphan' }]);
  assert.equal(summary.uploadsAtOurKeys, 2);
});

test('an abort that fails is logged, and the sweep goes on', async (t) => {
  const { store, logger, lines } = await setUp(t);
  await upload(store, 'r1', 'b1', '', ['a.txt', 'b.txt']);
  const auditor = new FakeAuditor();
  auditor.openUpload('b1', { key: 'a.txt', s3UploadId: 'refused', initiated: BEFORE });
  auditor.openUpload('b1', { key: 'b.txt', s3UploadId: 'orphan', initiated: BEFORE });
  const abort = auditor.abortMultipartUpload.bind(auditor);
  auditor.abortMultipartUpload = async (bucket, key, s3UploadId) => {
    if (s3UploadId === 'refused') throw new Error('AccessDenied');
    await abort(bucket, key, s3UploadId);
  };
  const summary = await sweepOrphanUploads({ store, auditor, logger, startedAt: STARTED_AT });
  assert.deepEqual(auditor.aborted, [{ bucket: 'b1', key: 'b.txt', s3UploadId: 'orphan' }]);
  assert.equal(summary.abortsFailed, 1);
  assert.ok(lines.some((line) => line.level === 40 && line.s3UploadId === 'refused'));
});

test('never throws: S3 down or the database gone are logged', async (t) => {
  const { store, logger, lines } = await setUp(t);
  await upload(store, 'r1', 'b1', '', ['a.txt']);
  await upload(store, 'r2', 'b2', '', ['a.txt']);
  const auditor = new FakeAuditor();
  auditor.failure = new Error('connect ECONNREFUSED');
  const down = await sweepOrphanUploads({ store, auditor, logger, startedAt: STARTED_AT });
  assert.deepEqual([down.buckets, down.bucketsFailed], [2, 2], 'every bucket tried');

  await store.close();
  const closed = await sweepOrphanUploads({
    store,
    auditor: new FakeAuditor(),
    logger,
    startedAt: STARTED_AT,
  });
  assert.equal(closed.buckets, 0);
  assert.ok(lines.some((line) => line.level === 50 && /cannot read the uploads/.test(line.msg)));
});

test('the listing prefix is common to every upload of the bucket, never half a character', () => {
  assert.equal(commonPrefix(['runs/1/', 'runs/2/']), 'runs/');
  assert.equal(commonPrefix(['runs/1/', '']), '');
  assert.equal(commonPrefix(['a/']), 'a/');
  assert.equal(commonPrefix(['x\u{1F600}/', 'x\u{1F601}/']), 'x');
  assert.equal(commonPrefix([]), '');
});
