// Verify and the orphan sweep against the real S3 server: objects put there, then changed or
// deleted behind the service's back, must be named and requeued; multipart uploads left open at
// our keys must be aborted, and only those.
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.js';
import { httpStatusOf } from '../../src/api/errors.js';
import { DomainError } from '../../src/domain/errors.js';
import { objectKeyFor } from '../../src/domain/object-key.js';
import { sweepOrphanUploads } from '../../src/engine/orphan-sweep.js';
import { UploadService } from '../../src/service/upload-service.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Store } from '../../src/store/store.js';
import { normalizeEtag } from '../../src/transfer/checksums.js';
import {
  createObjectAuditor,
  type ObjectAuditor,
  type OpenMultipartUpload,
} from '../../src/transfer/object-audit.js';
import { createS3Client } from '../../src/transfer/s3-client.js';
import { RecordingLifecycle } from '../support/recording-lifecycle.js';
import {
  createTestBucket,
  deleteBucket,
  listMultipartUploads,
  testS3Client,
  testS3Settings,
  uniqueBucketName,
} from '../support/s3.js';
import { identityOf, readyAt, versionHeld } from '../support/store-fixtures.js';

const MiB = 1024 * 1024;
const PREFIX = 'runs/7';
const transfer = loadConfig({ RETRY_MAX_ATTEMPTS: '2', RETRY_BASE_DELAY_MS: '10' }).transfer;
const silent = pino({ level: 'silent' });

describe('verify and the orphan sweep against S3', () => {
  const checkClient = testS3Client();
  const client = createS3Client(testS3Settings(), { maxSockets: 8 });
  const auditor: ObjectAuditor = createObjectAuditor(client, transfer, silent);
  let bucket: string;
  let root: string;
  let folder: string;
  let store: Store;
  const stores: Store[] = [];

  before(async () => {
    bucket = await createTestBucket(checkClient, 'verify');
    root = await mkdtemp(path.join(tmpdir(), 'verify-sweep-'));
    folder = path.join(root, 'source');
    await mkdir(folder);
  });

  // A database per test, so that one test's pending tasks are never claimed by another.
  beforeEach(() => {
    store = openSqliteStore(path.join(root, `state-${stores.length}.db`));
    stores.push(store);
  });

  after(async () => {
    for (const opened of stores) await opened.close();
    await deleteBucket(checkClient, bucket);
    await rm(root, { recursive: true, force: true });
    client.destroy();
    checkClient.destroy();
  });

  /** An upload over `folder` whose tasks are the given paths, pending. */
  async function createUpload(uploadId: string, paths: string[], bucketName = bucket): Promise<void> {
    const now = Date.now();
    await store.createUpload(
      {
        uploadId,
        sourceFolder: folder,
        destinationBucket: bucketName,
        destinationPrefix: PREFIX,
        pattern: '**',
      },
      now,
    );
    await store.activateUpload(uploadId, now);
    const files = paths.map((relativePath) => ({
      relativePath,
      size: 1,
      mtimeMs: 1,
      ino: 1,
      ctimeMs: 1,
      observedAt: now,
    }));
    await store.recordObservedFiles(uploadId, files, (p) => objectKeyFor(PREFIX, p), readyAt(now), now);
  }

  /** Writes the file, puts it in S3 (in parts when `partSize` is given) and completes its task. */
  async function uploaded(uploadId: string, relativePath: string, content: Buffer, partSize?: number) {
    const key = objectKeyFor(PREFIX, relativePath);
    await writeFile(path.join(folder, relativePath), content);
    const etag =
      partSize === undefined ? await putObject(key, content) : await putInParts(key, content, partSize);
    const now = Date.now();
    await store.recordObservedFiles(
      uploadId,
      [
        {
          relativePath,
          size: content.length,
          mtimeMs: 1000,
          ...(await identityOf(path.join(folder, relativePath))),
          observedAt: now,
        },
      ],
      (p) => objectKeyFor(PREFIX, p),
      readyAt(now),
      now,
    );
    const task = await store.findTaskByPath(uploadId, relativePath);
    assert.ok(task);
    const [claimed] = await store.claimReadyTasks(now, 1);
    assert.equal(claimed?.taskId, task.taskId);
    const sha256 = createHash('sha256').update(content).digest('hex');
    const upload = { etag, validation: 'etag' as const, sha256, ...versionHeld(task) };
    assert.equal(await store.completeTask(task.taskId, upload, now), true);
  }

  async function putObject(key: string, content: Buffer): Promise<string> {
    const put = await checkClient.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: content }));
    assert.ok(put.ETag);
    return normalizeEtag(put.ETag);
  }

  async function putInParts(key: string, content: Buffer, partSize: number): Promise<string> {
    const created = await checkClient.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    const parts = [];
    for (let offset = 0, number = 1; offset < content.length; offset += partSize, number++) {
      const part = await checkClient.send(
        new UploadPartCommand({
          Bucket: bucket,
          Key: key,
          UploadId: created.UploadId,
          PartNumber: number,
          Body: content.subarray(offset, offset + partSize),
        }),
      );
      parts.push({ PartNumber: number, ETag: part.ETag });
    }
    const completed = await checkClient.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId: created.UploadId,
        MultipartUpload: { Parts: parts },
      }),
    );
    assert.ok(completed.ETag);
    return normalizeEtag(completed.ETag);
  }

  async function openUpload(key: string): Promise<string> {
    const created = await checkClient.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    assert.ok(created.UploadId);
    return created.UploadId;
  }

  it('names the objects changed or deleted behind its back, and requeues them', async () => {
    await createUpload('v1', []);
    await uploaded('v1', 'same.txt', Buffer.from('unchanged'));
    await uploaded('v1', 'changed.txt', Buffer.from('the first version'));
    await uploaded('v1', 'deleted.txt', Buffer.from('soon gone'));
    await uploaded('v1', 'parts.bin', Buffer.alloc(5 * MiB + 7, 3), 5 * MiB);
    await uploaded('v1', 'local-gone.txt', Buffer.from('still in S3'));
    const changedEtag = await putObject(
      objectKeyFor(PREFIX, 'changed.txt'),
      Buffer.from('another, longer version'),
    );
    await checkClient.send(
      new DeleteObjectCommand({ Bucket: bucket, Key: objectKeyFor(PREFIX, 'deleted.txt') }),
    );
    await rm(path.join(folder, 'local-gone.txt'));

    const recordedEtag = (await store.findTaskByPath('v1', 'changed.txt'))?.etag;
    const lifecycle = new RecordingLifecycle();
    const service = new UploadService({ store, lifecycle, auditor });
    const report = await service.verify('v1');
    assert.deepEqual(report, {
      checked: 5,
      mismatched: 3,
      mismatches: [
        {
          relativePath: 'changed.txt',
          objectKey: `${PREFIX}/changed.txt`,
          reason: `S3 holds 23 bytes, 17 were uploaded; S3's ETag is ${changedEtag}, the upload recorded ${recordedEtag}`,
        },
        {
          relativePath: 'deleted.txt',
          objectKey: `${PREFIX}/deleted.txt`,
          reason: 'the object is missing in S3',
        },
        {
          relativePath: 'local-gone.txt',
          objectKey: `${PREFIX}/local-gone.txt`,
          reason: 'the local file is missing',
        },
      ],
      requeued: 2,
    });
    assert.equal(lifecycle.requeueWakeUps, 1);
    for (const relativePath of ['changed.txt', 'deleted.txt']) {
      const task = await store.findTaskByPath('v1', relativePath);
      assert.deepEqual(
        [task?.status, task?.etag, task?.sha256, task?.uploadedSize],
        ['pending', null, null, null],
        relativePath,
      );
    }
    for (const relativePath of ['same.txt', 'parts.bin', 'local-gone.txt']) {
      assert.equal((await store.findTaskByPath('v1', relativePath))?.status, 'completed', relativePath);
    }
  });

  it('is s3_unavailable when S3 cannot be reached', async (t) => {
    await createUpload('v2', []);
    await uploaded('v2', 'x.txt', Buffer.from('x'));
    const unreachable = createS3Client(testS3Settings('http://127.0.0.1:1'), { maxSockets: 1 });
    t.after(() => unreachable.destroy());
    const service = new UploadService({
      store,
      lifecycle: new RecordingLifecycle(),
      auditor: createObjectAuditor(unreachable, transfer, silent),
    });
    await assert.rejects(service.verify('v2'), (error: unknown) => {
      assert.ok(error instanceof DomainError);
      assert.equal(error.code, 's3_unavailable');
      assert.equal(httpStatusOf(error.code), 503);
      return true;
    });
    assert.equal((await store.findTaskByPath('v2', 'x.txt'))?.status, 'completed');
  });

  it('aborts exactly the multipart uploads at our keys that no task records', async () => {
    // An upload in a bucket that does not exist comes first: its failure must not stop the sweep.
    await createUpload('s0', ['a.txt'], uniqueBucketName('missing'));
    await createUpload('s1', ['tracked.bin', 'untracked.bin']);
    const tracked = await openUpload(`${PREFIX}/tracked.bin`);
    const untracked = await openUpload(`${PREFIX}/untracked.bin`);
    const foreignPath = await openUpload(`${PREFIX}/not-a-task.bin`);
    const foreignKey = await openUpload('elsewhere/untracked.bin');
    const trackedTask = await store.findTaskByPath('s1', 'tracked.bin');
    assert.ok(trackedTask);
    await store.saveMultipart(
      {
        taskId: trackedTask.taskId,
        s3UploadId: tracked,
        bucket,
        key: trackedTask.objectKey,
        size: 1,
        mtimeMs: 1,
        ino: 1,
        ctimeMs: 1,
        partSize: 5 * MiB,
        streamed: false,
        copiedBytes: 0,
        copySourceEtag: null,
      },
      Date.now(),
    );
    const openIds = async () =>
      (await listMultipartUploads(checkClient, bucket)).map((u) => u.UploadId).sort();
    const allFour = [tracked, untracked, foreignPath, foreignKey].sort();
    assert.deepEqual(await openIds(), allFour);

    // Started before they were created: they may be this run's own, so none is touched.
    const early = await sweepOrphanUploads({
      store,
      auditor,
      logger: silent,
      startedAt: Date.now() - 3_600_000,
    });
    assert.equal(early.aborted, 0);
    assert.deepEqual(await openIds(), allFour);

    // Every page of the listing is read: one upload per page here.
    const listed: OpenMultipartUpload[] = [];
    const paging = createObjectAuditor(client, transfer, silent, { listPageSize: 1 });
    for await (const upload of paging.listMultipartUploads(bucket, `${PREFIX}/`)) listed.push(upload);
    assert.deepEqual(
      listed.map((upload) => upload.s3UploadId).sort(),
      [tracked, untracked, foreignPath].sort(),
    );
    assert.ok(listed.every((upload) => upload.initiated instanceof Date));

    const lines: { msg: string; key?: string; s3UploadId?: string; bucket?: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    // S3 may round its creation times to the second: a start well after them.
    const summary = await sweepOrphanUploads({ store, auditor, logger, startedAt: Date.now() + 2_000 });
    assert.deepEqual(
      [summary.aborted, summary.bucketsFailed, summary.abortsFailed],
      [1, 1, 0],
      JSON.stringify(summary),
    );
    assert.deepEqual(await openIds(), [tracked, foreignPath, foreignKey].sort());
    const aborted = lines.filter((line) => /aborted a multipart upload/.test(line.msg));
    assert.deepEqual(
      aborted.map((line) => [line.bucket, line.key, line.s3UploadId]),
      [[bucket, `${PREFIX}/untracked.bin`, untracked]],
    );
  });
});
