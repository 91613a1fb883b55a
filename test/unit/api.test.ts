// The HTTP API through inject(): a real UploadService on a real SQLite store in a temp folder,
// with a lifecycle that records what the engine would have been told.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { buildApp, type App } from '../../src/api/app.js';
import { UploadService } from '../../src/service/upload-service.js';
import type { Logger } from '../../src/logger.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Store } from '../../src/store/store.js';
import { S3RequestError } from '../../src/transfer/errors.js';
import { FakeAuditor } from '../support/fake-auditor.js';
import { RecordingLifecycle } from '../support/recording-lifecycle.js';
import { identityOf, readyAt, versionHeld } from '../support/store-fixtures.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const UPLOAD_FIELDS = [
  'upload_id',
  'source_folder',
  'destination_bucket',
  'destination_prefix',
  'pattern',
  'status',
  'created_at',
  'updated_at',
  'last_error',
  'watch',
  'completed_at',
  'if_exists',
  'listed_at',
  'object_properties',
  'complete_markers',
  'manifest',
  'manifest_key',
  'notify_url',
  'arrival',
  'last_manifest',
  'notification',
];

interface Fixture {
  root: string;
  folder: string;
  store: Store;
  lifecycle: RecordingLifecycle;
  auditor: FakeAuditor;
  app: App;
}

async function setUp(t: TestContext, logger: Logger | false = false): Promise<Fixture> {
  const root = await mkdtemp(path.join(tmpdir(), 'api-test-'));
  const folder = path.join(root, 'source');
  await mkdir(folder);
  const store = openSqliteStore(path.join(root, 'state.db'));
  const lifecycle = new RecordingLifecycle();
  const auditor = new FakeAuditor();
  const service = new UploadService({ store, lifecycle, auditor });
  const app = await buildApp({ service, logger, version: '9.8.7' });
  t.after(async () => {
    await app.close();
    await store.close();
    await rm(root, { recursive: true, force: true });
  });
  return { root, folder, store, lifecycle, auditor, app };
}

type Reply = Awaited<ReturnType<App['inject']>>;
type Json = Record<string, unknown>;

function jsonOf(reply: Reply): Json {
  assert.match(String(reply.headers['content-type']), /^application\/json/, `not JSON: ${reply.body}`);
  return reply.json<Json>();
}

/** The reply is the API's error shape with this status and code. */
function assertError(reply: Reply, status: number, code: string, messagePart?: RegExp): Json {
  assert.equal(reply.statusCode, status, reply.body);
  const body = jsonOf(reply);
  assert.equal(body.error, code, reply.body);
  assert.equal(typeof body.message, 'string');
  assert.ok((body.message as string).length > 0);
  if (messagePart) assert.match(body.message as string, messagePart);
  assert.deepEqual(
    Object.keys(body).filter((key) => !['error', 'message', 'details'].includes(key)),
    [],
    `unexpected fields in ${reply.body}`,
  );
  return body;
}

function detailFields(body: Json): string[] {
  return (body.details as { field: string }[]).map((detail) => detail.field);
}

function createUpload(app: App, payload: Json): Promise<Reply> {
  return app.inject({ method: 'POST', url: '/uploads', payload });
}

/** Puts failed tasks under an active request, as the engine would after failed uploads. */
async function failTasks(store: Store, uploadId: string, names: string[]): Promise<void> {
  const now = Date.now();
  await store.activateUpload(uploadId, now);
  const files = names.map((relativePath) => ({
    relativePath,
    size: 100,
    mtimeMs: 1_700_000_000_000,
    ino: 1,
    ctimeMs: 1_700_000_000_000,
    observedAt: 1_700_000_000_000,
  }));
  await store.recordObservedFiles(uploadId, files, (p) => `prefix/${p}`, readyAt(now), now);
  for (const task of await store.claimReadyTasks(now, names.length)) {
    await store.failTask(
      task.taskId,
      { message: 'S3 said no', kind: 'transient', retryAt: now + 60_000 },
      now,
    );
  }
}

describe('happy paths', () => {
  test('GET / reports the version, a reachable database and whether S3 answers', async (t) => {
    const { app, lifecycle } = await setUp(t);
    const reply = await app.inject({ method: 'GET', url: '/' });
    assert.equal(reply.statusCode, 200);
    const s3 = { status: 'reachable', since: '1970-01-01T00:00:00.000Z', last_error: null };
    assert.deepEqual(jsonOf(reply), { status: 'ok', version: '9.8.7', database: 'reachable', s3 });

    // An S3 outage is shown, but the service itself works: still 200.
    lifecycle.s3 = { status: 'unreachable', since: Date.UTC(2026, 0, 2), lastError: 'refused' };
    const during = await app.inject({ method: 'GET', url: '/' });
    assert.equal(during.statusCode, 200);
    assert.deepEqual(jsonOf(during).s3, {
      status: 'unreachable',
      since: '2026-01-02T00:00:00.000Z',
      last_error: 'refused',
    });
  });

  test('GET / is degraded with 503 when the database is unreachable', async (t) => {
    const { app, store } = await setUp(t);
    await store.close();
    const reply = await app.inject({ method: 'GET', url: '/' });
    assert.equal(reply.statusCode, 503);
    const { status, version, database } = jsonOf(reply) as Record<string, unknown>;
    assert.deepEqual(
      { status, version, database },
      { status: 'degraded', version: '9.8.7', database: 'unreachable' },
    );
  });

  test('POST /uploads creates an upload, tells the engine, and answers 201 with it', async (t) => {
    const { app, folder, lifecycle } = await setUp(t);
    const reply = await createUpload(app, {
      source_folder: `${folder}/`,
      destination_bucket: 'my-bucket',
      pattern: '**/*.jpg',
      destination_prefix: 'backups/2024/',
      upload_id: 'photos-2024',
    });
    assert.equal(reply.statusCode, 201, reply.body);
    const body = jsonOf(reply);
    assert.deepEqual(Object.keys(body).sort(), [...UPLOAD_FIELDS, 'warnings'].sort());
    assert.deepEqual(body.warnings, [], 'the bucket was checked');
    assert.equal(body.upload_id, 'photos-2024');
    assert.equal(body.source_folder, folder);
    assert.equal(body.destination_bucket, 'my-bucket');
    assert.equal(body.destination_prefix, 'backups/2024');
    assert.equal(body.pattern, '**/*.jpg');
    assert.equal(body.status, 'pending');
    assert.match(body.created_at as string, ISO_TIME);
    assert.match(body.updated_at as string, ISO_TIME);
    assert.equal(body.last_error, null);
    assert.deepEqual(lifecycle.created, ['photos-2024']);
  });

  test('POST /uploads answers 422 when the bucket check refuses, and 201 with a warning when it cannot tell', async (t) => {
    const { app, folder, lifecycle, auditor } = await setUp(t);
    const message = "bucket 'gone' does not exist (NoSuchBucket, HTTP 404) [ListObjectsV2 s3://gone]";
    auditor.bucketChecks.set('gone', { result: 'refused', problem: 'bucket_not_found', message });
    const refused = await createUpload(app, { source_folder: folder, destination_bucket: 'gone' });
    assert.equal(refused.statusCode, 422, refused.body);
    assert.deepEqual(jsonOf(refused), {
      error: 'bucket_not_found',
      message: `destination_bucket 'gone' cannot be used: ${message}`,
      details: [{ field: 'destination_bucket', message }],
    });
    assert.deepEqual(lifecycle.created, []);

    auditor.bucketChecks.set('denied', { result: 'unchecked', message: 'access denied' });
    const warned = await createUpload(app, { source_folder: folder, destination_bucket: 'denied' });
    assert.equal(warned.statusCode, 201, warned.body);
    assert.deepEqual(jsonOf(warned).warnings, ["destination_bucket 'denied' was not checked: access denied"]);
  });

  test('POST /uploads without optional fields generates an id and takes every file', async (t) => {
    const { app, folder } = await setUp(t);
    const reply = await createUpload(app, { source_folder: folder, destination_bucket: 'my-bucket' });
    assert.equal(reply.statusCode, 201, reply.body);
    const body = jsonOf(reply);
    assert.match(body.upload_id as string, /^[0-9a-f-]{36}$/);
    assert.equal(body.pattern, '**');
    assert.equal(body.destination_prefix, '');
  });

  test('GET /uploads lists live uploads by default and filters by status', async (t) => {
    const { app, folder } = await setUp(t);
    for (const upload_id of ['first', 'second', 'third']) {
      const destination = { destination_bucket: 'my-bucket', destination_prefix: upload_id };
      await createUpload(app, { source_folder: folder, ...destination, upload_id });
    }
    await app.inject({ method: 'DELETE', url: '/uploads/second' });
    const ids = async (url: string): Promise<unknown[]> => {
      const reply = await app.inject({ method: 'GET', url });
      assert.equal(reply.statusCode, 200, reply.body);
      const list = reply.json<Json[]>();
      for (const item of list) {
        assert.deepEqual(Object.keys(item).sort(), [...UPLOAD_FIELDS, 'files', 'bytes', 'progress'].sort());
      }
      return list.map((item) => item.upload_id);
    };
    assert.deepEqual(await ids('/uploads'), ['first', 'third']);
    assert.deepEqual(await ids('/uploads?status=pending'), ['first', 'third']);
    assert.deepEqual(await ids('/uploads?status=active'), []);
    assert.deepEqual(await ids('/uploads?status=cancelled'), ['second']);
    assert.deepEqual(await ids('/uploads?status=all'), ['first', 'second', 'third']);
  });

  test('GET /uploads/{id} and each item of GET /uploads add file counts and bytes', async (t) => {
    const { app, folder, store } = await setUp(t);
    await createUpload(app, { source_folder: folder, destination_bucket: 'my-bucket', upload_id: 'u1' });
    await failTasks(store, 'u1', ['a.txt', 'b.txt']);
    await store.recordObservedFiles(
      'u1',
      [{ relativePath: 'c.txt', size: 50, mtimeMs: 1, ino: 1, ctimeMs: 1, observedAt: 1 }],
      (p) => p,
      readyAt(0),
      0,
    );
    const reply = await app.inject({ method: 'GET', url: '/uploads/u1' });
    assert.equal(reply.statusCode, 200, reply.body);
    const body = jsonOf(reply);
    assert.deepEqual(
      Object.keys(body).sort(),
      [...UPLOAD_FIELDS, 'last_scan', 'files', 'bytes', 'progress', 'watched_by'].sort(),
    );
    assert.equal(body.last_scan, null);
    assert.equal(body.status, 'active');
    assert.deepEqual(body.files, { pending: 1, in_progress: 0, completed: 0, failed: 2, total: 3 });
    assert.deepEqual(body.bytes, { total: 250, uploaded: 0 });
    // Pending files come before failed ones; nothing moved, so there is no estimate.
    assert.deepEqual(body.progress, {
      phase: 'uploading',
      bytes_per_second: 0,
      eta_seconds: null,
      last_completed_at: null,
    });
    // The list carries the same counts, so one call draws every upload's bars.
    const [item] = (await app.inject({ method: 'GET', url: '/uploads' })).json<Json[]>();
    assert.deepEqual([item?.files, item?.bytes], [body.files, body.bytes]);
  });

  test('GET /uploads and GET /uploads/{id} show the same progress: phase, throughput, time left', async (t) => {
    const { app, folder, store, lifecycle } = await setUp(t);
    await createUpload(app, { source_folder: folder, destination_bucket: 'my-bucket', upload_id: 'u1' });
    await store.recordObservedFiles(
      'u1',
      [{ relativePath: 'c.txt', size: 5000, mtimeMs: 1, ino: 1, ctimeMs: 1, observedAt: 1 }],
      (p) => p,
      readyAt(0),
      0,
    );
    lifecycle.activity.set('u1', { initialScanRunning: false, bytesPerSecond: 1000 });
    const expected = { phase: 'uploading', bytes_per_second: 1000, eta_seconds: 5, last_completed_at: null };
    const details = await app.inject({ method: 'GET', url: '/uploads/u1' });
    assert.deepEqual(jsonOf(details).progress, expected);
    const list = await app.inject({ method: 'GET', url: '/uploads' });
    assert.deepEqual(
      list.json<Json[]>().map((item) => item.progress),
      [expected],
    );
    lifecycle.activity.set('u1', { initialScanRunning: true, bytesPerSecond: 0 });
    assert.equal(
      (jsonOf(await app.inject({ method: 'GET', url: '/uploads/u1' })).progress as Json).phase,
      'scanning',
    );
    await app.inject({ method: 'DELETE', url: '/uploads/u1' });
    const cancelled = await app.inject({ method: 'GET', url: '/uploads?status=cancelled' });
    assert.deepEqual(
      cancelled.json<Json[]>().map((item) => item.progress),
      [{ phase: 'cancelled', bytes_per_second: 0, eta_seconds: null, last_completed_at: null }],
    );
  });

  test('GET /uploads/{id}/files pages through the files with their whole state', async (t) => {
    const { app, folder, store } = await setUp(t);
    await createUpload(app, { source_folder: folder, destination_bucket: 'my-bucket', upload_id: 'u1' });
    await failTasks(store, 'u1', ['a.txt', 'sub/b.txt', 'c.txt']);

    const first = await app.inject({ method: 'GET', url: '/uploads/u1/files?limit=2' });
    assert.equal(first.statusCode, 200, first.body);
    const page1 = jsonOf(first) as { items: Json[]; next_cursor: string | null };
    assert.equal(page1.items.length, 2);
    assert.equal(typeof page1.next_cursor, 'string');
    const item = page1.items[0] as Json;
    assert.deepEqual(Object.keys(item).sort(), [
      'attempts',
      'bytes_uploaded',
      'completed_at',
      'created_at',
      'etag',
      'failed_at',
      'instance',
      'last_error',
      'marker',
      'modified_at',
      'object_key',
      'ready_at',
      'relative_path',
      'sha256',
      'size',
      'skipped',
      'status',
      'task_id',
      'updated_at',
      'uploaded_size',
      'validation',
    ]);
    assert.equal(item.relative_path, 'a.txt');
    assert.equal(item.object_key, 'prefix/a.txt');
    assert.equal(item.size, 100);
    assert.equal(item.status, 'failed');
    assert.equal(item.attempts, 1);
    assert.equal(item.last_error, 'S3 said no');
    assert.equal(item.etag, null);
    assert.equal(item.validation, null);
    assert.equal(item.sha256, null);
    assert.equal(item.uploaded_size, null);
    assert.equal(item.completed_at, null);
    assert.equal(item.modified_at, new Date(1_700_000_000_000).toISOString());
    for (const key of ['failed_at', 'ready_at', 'created_at', 'updated_at'])
      assert.match(item[key] as string, ISO_TIME);

    const second = await app.inject({
      method: 'GET',
      url: `/uploads/u1/files?limit=2&cursor=${page1.next_cursor}`,
    });
    const page2 = jsonOf(second) as { items: Json[]; next_cursor: string | null };
    assert.deepEqual(
      page2.items.map((i) => i.relative_path),
      ['c.txt'],
    );
    assert.equal(page2.next_cursor, null);

    const all = jsonOf(await app.inject({ method: 'GET', url: '/uploads/u1/files' })) as { items: Json[] };
    assert.equal(all.items.length, 3, 'the default page holds all three');
    const pending = jsonOf(await app.inject({ method: 'GET', url: '/uploads/u1/files?status=pending' }));
    assert.deepEqual(pending, { items: [], next_cursor: null });
  });

  test('DELETE /uploads/{id} cancels, and cancelling twice is fine', async (t) => {
    const { app, folder, lifecycle } = await setUp(t);
    await createUpload(app, { source_folder: folder, destination_bucket: 'my-bucket', upload_id: 'u1' });
    const first = await app.inject({ method: 'DELETE', url: '/uploads/u1' });
    assert.equal(first.statusCode, 200, first.body);
    assert.equal(jsonOf(first).status, 'cancelled');
    // Some clients send a JSON content type with every request, bodiless ones included.
    const second = await app.inject({
      method: 'DELETE',
      url: '/uploads/u1',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(second.statusCode, 200, second.body);
    assert.deepEqual(jsonOf(second), jsonOf(first));
    assert.deepEqual(lifecycle.cancelled, ['u1', 'u1']);
  });

  test('POST /uploads/{id}/retry requeues the failed files', async (t) => {
    const { app, folder, store, lifecycle } = await setUp(t);
    await createUpload(app, { source_folder: folder, destination_bucket: 'my-bucket', upload_id: 'u1' });
    await failTasks(store, 'u1', ['a.txt', 'b.txt']);
    const reply = await app.inject({ method: 'POST', url: '/uploads/u1/retry' });
    assert.equal(reply.statusCode, 200, reply.body);
    assert.deepEqual(jsonOf(reply), { upload_id: 'u1', requeued: 2 });
    assert.equal(lifecycle.requeueWakeUps, 1);
    const again = await app.inject({ method: 'POST', url: '/uploads/u1/retry' });
    assert.deepEqual(jsonOf(again), { upload_id: 'u1', requeued: 0 });
  });
});

const MTIME = 1_700_000_000_000;
const SHA = 'ab'.repeat(32);

/** The ETag the fake S3 holds for a file's object, and the upload recorded. */
function etagOf(name: string): string {
  return Buffer.from(name.padEnd(16, '.')).subarray(0, 16).toString('hex');
}

/**
 * Writes each file (`size` bytes) in the folder and completes its task, as the engine would after
 * uploading it; the fake S3 holds the matching object unless `inS3` is false.
 */
async function completeTasks(
  f: Fixture,
  uploadId: string,
  files: { name: string; size: number; inS3?: boolean }[],
): Promise<void> {
  const now = Date.now();
  await f.store.activateUpload(uploadId, now);
  for (const file of files) {
    await mkdir(path.dirname(path.join(f.folder, file.name)), { recursive: true });
    await writeFile(path.join(f.folder, file.name), Buffer.alloc(file.size, 1));
  }
  const observed = await Promise.all(
    files.map(async ({ name, size }) => ({
      relativePath: name,
      size,
      mtimeMs: MTIME,
      ...(await identityOf(path.join(f.folder, name))),
      observedAt: now,
    })),
  );
  await f.store.recordObservedFiles(uploadId, observed, (p) => `prefix/${p}`, readyAt(now), now);
  for (const task of await f.store.claimReadyTasks(now, files.length)) {
    const etag = etagOf(task.relativePath);
    const upload = { etag, validation: 'etag' as const, sha256: SHA, ...versionHeld(task) };
    assert.equal(await f.store.completeTask(task.taskId, upload, now), true);
    const file = files.find((candidate) => candidate.name === task.relativePath);
    if (file?.inS3 !== false) f.auditor.putObject('my-bucket', task.objectKey, { size: task.size, etag });
  }
}

async function taskByPath(store: Store, uploadId: string, relativePath: string) {
  const task = await store.findTaskByPath(uploadId, relativePath);
  assert.ok(task, `no task for ${relativePath}`);
  return task;
}

describe('GET /instances', () => {
  test('shows this instance with what it uploads, and each file in progress names it', async (t) => {
    const { app, store, folder } = await setUp(t);
    assert.deepEqual(jsonOf(await app.inject({ method: 'GET', url: '/instances' })), []);
    await store.registerInstance({ host: 'box', pid: 12, version: '9.8.7', sourceRoots: [folder] });
    const created = await createUpload(app, { source_folder: folder, destination_bucket: 'bucket' });
    const uploadId = String(jsonOf(created).upload_id);
    const now = Date.now();
    await store.activateUpload(uploadId, now);
    const files = ['a.txt', 'b.txt'].map((relativePath) => ({
      relativePath,
      size: 100,
      mtimeMs: now,
      ino: 1,
      ctimeMs: now,
      observedAt: now,
    }));
    await store.recordObservedFiles(uploadId, files, (p) => p, readyAt(now), now);
    const [running] = await store.claimReadyTasks(now, 1);
    assert.ok(running);
    await store.recordProgress(running.taskId, 40, now);

    const reply = await app.inject({ method: 'GET', url: '/instances' });
    assert.equal(reply.statusCode, 200);
    const [instance, ...others] = reply.json<Json[]>();
    assert.deepEqual(others, []);
    assert.ok(instance);
    assert.match(String(instance.started_at), /^\d{4}-\d\d-\d\dT.*Z$/);
    assert.match(String(instance.heartbeat_at), /^\d{4}-\d\d-\d\dT.*Z$/);
    assert.deepEqual(
      { ...instance, started_at: '', heartbeat_at: '' },
      {
        instance_id: store.instanceId,
        host: 'box',
        pid: 12,
        version: '9.8.7',
        started_at: '',
        heartbeat_at: '',
        lease_seconds: 30,
        source_roots: [folder],
        work: { files: 1, bytes: 100, bytes_uploaded: 40, upload_ids: [uploadId] },
      },
    );
    const page = jsonOf(await app.inject({ method: 'GET', url: `/uploads/${uploadId}/files` }));
    assert.deepEqual(
      (page.items as Json[]).map((item) => [item.relative_path, item.status, item.instance]),
      [
        ['a.txt', 'in_progress', store.instanceId],
        ['b.txt', 'pending', null],
      ],
    );
  });
});

describe('POST /uploads/{id}/verify', () => {
  test('names every mismatch with its reason and requeues those there is a file for', async (t) => {
    const f = await setUp(t);
    await createUpload(f.app, { source_folder: f.folder, destination_bucket: 'my-bucket', upload_id: 'u1' });
    await completeTasks(f, 'u1', [
      { name: 'good.txt', size: 10 },
      { name: 'missing-in-s3.txt', size: 20, inS3: false },
      { name: 'sub/resized.txt', size: 30 },
      { name: 'retagged.txt', size: 40 },
      { name: 'gone-locally.txt', size: 50 },
      { name: 'grown-locally.txt', size: 60 },
    ]);
    f.auditor.putObject('my-bucket', 'prefix/sub/resized.txt', { size: 31, etag: etagOf('other') });
    f.auditor.putObject('my-bucket', 'prefix/retagged.txt', { size: 40, etag: 'ffff' });
    await rm(path.join(f.folder, 'gone-locally.txt'));
    await writeFile(path.join(f.folder, 'grown-locally.txt'), Buffer.alloc(61));

    const reply = await f.app.inject({ method: 'POST', url: '/uploads/u1/verify' });
    assert.equal(reply.statusCode, 200, reply.body);
    const expectedMismatches = [
      ['missing-in-s3.txt', 'the object is missing in S3'],
      [
        'sub/resized.txt',
        `S3 holds 31 bytes, 30 were uploaded; S3's ETag is ${etagOf('other')}, the upload recorded ${etagOf('sub/resized.txt')}`,
      ],
      ['retagged.txt', `S3's ETag is ffff, the upload recorded ${etagOf('retagged.txt')}`],
      ['gone-locally.txt', 'the local file is missing'],
      ['grown-locally.txt', 'the local file holds 61 bytes, 60 were uploaded'],
    ];
    assert.deepEqual(jsonOf(reply), {
      checked: 6,
      mismatched: 5,
      mismatches: expectedMismatches.map(([relativePath, reason]) => ({
        relative_path: relativePath,
        object_key: `prefix/${relativePath}`,
        reason,
      })),
      requeued: 4,
    });
    assert.equal(f.lifecycle.requeueWakeUps, 1);
    assert.equal(f.auditor.heads.length, 6);

    // Requeued: pending now, with the reason; the last upload is forgotten when the object changed.
    for (const [relativePath, reason] of expectedMismatches.slice(0, 3)) {
      const task = await taskByPath(f.store, 'u1', relativePath ?? '');
      assert.deepEqual(
        [task.status, task.lastError, task.etag, task.validation, task.sha256, task.uploadedSize],
        ['pending', reason, null, null, null, null],
        relativePath,
      );
      assert.equal(task.bytesUploaded, 0);
      assert.ok(task.readyAt !== null && task.readyAt <= Date.now());
    }
    // Only the local file differs: the object is still the last upload, which stays.
    const grown = await taskByPath(f.store, 'u1', 'grown-locally.txt');
    assert.deepEqual(
      [grown.status, grown.etag, grown.sha256, grown.uploadedSize],
      ['pending', etagOf('grown-locally.txt'), SHA, 60],
    );
    // Nothing to upload: named, not requeued.
    assert.equal((await taskByPath(f.store, 'u1', 'gone-locally.txt')).status, 'completed');
    assert.equal((await taskByPath(f.store, 'u1', 'good.txt')).status, 'completed');

    const files = jsonOf(await f.app.inject({ method: 'GET', url: '/uploads/u1/files?status=completed' }));
    const good = (files.items as Json[]).find((item) => item.relative_path === 'good.txt');
    assert.deepEqual([good?.sha256, good?.uploaded_size, good?.etag], [SHA, 10, etagOf('good.txt')]);

    const again = jsonOf(await f.app.inject({ method: 'POST', url: '/uploads/u1/verify' }));
    assert.deepEqual(again, {
      checked: 2,
      mismatched: 1,
      mismatches: [
        {
          relative_path: 'gone-locally.txt',
          object_key: 'prefix/gone-locally.txt',
          reason: 'the local file is missing',
        },
      ],
      requeued: 0,
    });
    assert.equal(f.lifecycle.requeueWakeUps, 1, 'nothing requeued: the dispatcher is not woken');
  });

  test('takes no body, an empty one, or an empty JSON one', async (t) => {
    const f = await setUp(t);
    await createUpload(f.app, { source_folder: f.folder, destination_bucket: 'my-bucket', upload_id: 'u1' });
    const empty = { checked: 0, mismatched: 0, mismatches: [], requeued: 0 };
    const replies = [
      await f.app.inject({ method: 'POST', url: '/uploads/u1/verify' }),
      await f.app.inject({
        method: 'POST',
        url: '/uploads/u1/verify',
        headers: { 'content-type': 'application/json' },
      }),
      await f.app.inject({
        method: 'POST',
        url: '/uploads/u1/verify',
        headers: { 'content-type': 'application/json' },
        payload: '  ',
      }),
    ];
    for (const reply of replies) {
      assert.equal(reply.statusCode, 200, reply.body);
      assert.deepEqual(jsonOf(reply), empty);
    }
    const notJson = await f.app.inject({
      method: 'POST',
      url: '/uploads/u1/verify',
      headers: { 'content-type': 'text/plain' },
      payload: 'please',
    });
    assertError(notJson, 415, 'unsupported_media_type');
  });

  test('reports on a cancelled upload but requeues nothing', async (t) => {
    const f = await setUp(t);
    await createUpload(f.app, { source_folder: f.folder, destination_bucket: 'my-bucket', upload_id: 'u1' });
    await completeTasks(f, 'u1', [{ name: 'a.txt', size: 5, inS3: false }]);
    await f.app.inject({ method: 'DELETE', url: '/uploads/u1' });
    const reply = await f.app.inject({ method: 'POST', url: '/uploads/u1/verify' });
    assert.equal(reply.statusCode, 200, reply.body);
    assert.deepEqual(jsonOf(reply), {
      checked: 1,
      mismatched: 1,
      mismatches: [
        { relative_path: 'a.txt', object_key: 'prefix/a.txt', reason: 'the object is missing in S3' },
      ],
      requeued: 0,
    });
    const task = await taskByPath(f.store, 'u1', 'a.txt');
    assert.deepEqual([task.status, task.etag], ['completed', etagOf('a.txt')]);
    assert.equal(f.lifecycle.requeueWakeUps, 0);
  });

  test('is a 503 s3_unavailable when S3 cannot be reached, and requeues nothing', async (t) => {
    const f = await setUp(t);
    await createUpload(f.app, { source_folder: f.folder, destination_bucket: 'my-bucket', upload_id: 'u1' });
    await completeTasks(f, 'u1', [{ name: 'a.txt', size: 5, inS3: false }]);
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
    f.auditor.failure = new S3RequestError(
      'HeadObject',
      { bucket: 'my-bucket', key: 'prefix/a.txt' },
      5,
      refused,
    );
    const reply = await f.app.inject({ method: 'POST', url: '/uploads/u1/verify' });
    assertError(reply, 503, 's3_unavailable', /the S3 endpoint refused the connection/);
    assert.equal((await taskByPath(f.store, 'u1', 'a.txt')).status, 'completed');
    assert.equal(f.lifecycle.requeueWakeUps, 0);
  });
});

describe('bad source folders are refused with a 400 that says why', () => {
  test('relative, missing, a file, or below a file', async (t) => {
    const { app, root, store } = await setUp(t);
    const file = path.join(root, 'notes.txt');
    await writeFile(file, 'x');
    const cases: [string, RegExp][] = [
      ['data/photos', /is a relative path/],
      ['', /is empty/],
      [path.join(root, 'missing'), /does not exist/],
      [file, /is a file, not a folder/],
      [path.join(file, 'deeper'), /does not exist/],
    ];
    for (const [source_folder, reason] of cases) {
      const reply = await createUpload(app, { source_folder, destination_bucket: 'my-bucket' });
      const body = assertError(reply, 400, 'invalid_source_folder', reason);
      assert.deepEqual(detailFields(body), ['source_folder']);
    }
    assert.deepEqual(await store.listUploads(['pending', 'active', 'cancelled']), []);
  });

  test('a folder the service cannot read', async (t) => {
    const { root } = await setUp(t);
    const locked = path.join(root, 'locked');
    await mkdir(locked);
    await chmod(locked, 0o000);
    let reply: { statusCode: number; body: string };
    try {
      reply = await postAsUnprivilegedUser(root, { source_folder: locked, destination_bucket: 'my-bucket' });
    } finally {
      await chmod(locked, 0o755);
    }
    assert.equal(reply.statusCode, 400, reply.body);
    const body = JSON.parse(reply.body) as Json;
    assert.equal(body.error, 'invalid_source_folder');
    assert.match(body.message as string, /cannot be read: permission denied/);
  });
});

/**
 * POST /uploads from a process that permission checks apply to. Root passes both access() and
 * opendir() whatever the mode bits say, so when the tests run as root the request is made by a
 * child process running as 'nobody' (uid 65534); otherwise the check already applies here.
 */
async function postAsUnprivilegedUser(
  root: string,
  payload: Json,
): Promise<{ statusCode: number; body: string }> {
  if (process.getuid?.() !== 0) {
    const store = openSqliteStore(path.join(root, 'unprivileged.db'));
    const app = await buildApp({
      service: new UploadService({ store, lifecycle: new RecordingLifecycle(), auditor: new FakeAuditor() }),
      logger: false,
      version: '0',
    });
    try {
      const reply = await createUpload(app, payload);
      return { statusCode: reply.statusCode, body: reply.body };
    } finally {
      await app.close();
      await store.close();
    }
  }
  await chmod(root, 0o755); // mkdtemp makes it private to root; nobody must reach the folder inside
  const script = `
    const { buildApp } = await import(process.env.APP_MODULE);
    const { UploadService } = await import(process.env.SERVICE_MODULE);
    const refuse = () => { throw new Error('the folder check let an unreadable folder through to the store'); };
    const store = new Proxy({}, { get: () => refuse });
    const lifecycle = { uploadCreated: refuse, uploadCancelled: refuse, tasksRequeued: refuse };
    const app = await buildApp({ service: new UploadService({ store, lifecycle }), logger: false, version: '0' });
    const reply = await app.inject({ method: 'POST', url: '/uploads', payload: JSON.parse(process.env.PAYLOAD) });
    process.stdout.write(JSON.stringify({ statusCode: reply.statusCode, body: reply.body }));
    await app.close();
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', script], {
    cwd: REPO_ROOT,
    uid: 65534,
    gid: 65534,
    env: {
      PATH: process.env.PATH,
      APP_MODULE: pathToFileURL(path.join(REPO_ROOT, 'src/api/app.ts')).href,
      SERVICE_MODULE: pathToFileURL(path.join(REPO_ROOT, 'src/service/upload-service.ts')).href,
      PAYLOAD: JSON.stringify(payload),
    },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  assert.equal(exitCode, 0, `the unprivileged child failed: ${stderr}`);
  return JSON.parse(stdout) as { statusCode: number; body: string };
}

describe('bad inputs get a 4xx with a JSON message', () => {
  test('invalid bucket names', async (t) => {
    const { app, folder } = await setUp(t);
    for (const name of [
      '',
      'ab',
      'My-Bucket',
      'my_bucket',
      '-bucket',
      'bucket-',
      'a..b',
      '192.168.1.1',
      'x'.repeat(64),
    ]) {
      const reply = await createUpload(app, { source_folder: folder, destination_bucket: name });
      const body = assertError(reply, 400, 'invalid_bucket_name', /not a valid bucket name/);
      assert.deepEqual(detailFields(body), ['destination_bucket']);
    }
  });

  test('invalid patterns and prefixes', async (t) => {
    const { app, folder } = await setUp(t);
    for (const pattern of ['', '/abs/*.txt', '!*.tmp', 'logs/[a', '{a,b']) {
      const reply = await createUpload(app, {
        source_folder: folder,
        destination_bucket: 'my-bucket',
        pattern,
      });
      assertError(reply, 400, 'invalid_pattern', /not a valid pattern/);
    }
    const reversed = await createUpload(app, {
      source_folder: folder,
      destination_bucket: 'my-bucket',
      pattern: 'logs/[z-a]*.txt',
    });
    assertError(
      reversed,
      400,
      'invalid_pattern',
      /'\[z-a\]' at position 6 is a reversed range: 'z' comes after 'a'; write \[a-z\]/,
    );
    const reply = await createUpload(app, {
      source_folder: folder,
      destination_bucket: 'my-bucket',
      destination_prefix: 'a/../b',
    });
    assertError(reply, 400, 'invalid_destination_prefix');
  });

  test('malformed JSON', async (t) => {
    const { app } = await setUp(t);
    const reply = await app.inject({
      method: 'POST',
      url: '/uploads',
      headers: { 'content-type': 'application/json' },
      payload: '{"source_folder": "/tmp",',
    });
    assertError(reply, 400, 'invalid_json');
  });

  test('a body that is not an object, or missing', async (t) => {
    const { app } = await setUp(t);
    for (const payload of ['[]', '"text"', '42', 'null', '']) {
      const reply = await app.inject({
        method: 'POST',
        url: '/uploads',
        headers: { 'content-type': 'application/json' },
        payload,
      });
      const body = assertError(reply, 400, 'validation_error', /request body/);
      assert.ok(Array.isArray(body.details));
    }
  });

  test('unknown fields are named', async (t) => {
    const { app, folder } = await setUp(t);
    const reply = await createUpload(app, {
      source_folder: folder,
      destination_bucket: 'my-bucket',
      sourceFolder: folder,
      extra: 1,
    });
    const body = assertError(reply, 400, 'validation_error', /sourceFolder is not a known field/);
    assert.deepEqual(detailFields(body).sort(), ['extra', 'sourceFolder']);
  });

  test('missing and wrongly typed fields are named, and nothing is coerced', async (t) => {
    const { app, folder } = await setUp(t);
    const missing = assertError(await createUpload(app, { pattern: '*' }), 400, 'validation_error');
    assert.deepEqual(detailFields(missing).sort(), ['destination_bucket', 'source_folder']);
    assert.match(missing.message as string, /source_folder is required/);

    const wrongTypes: [Json, string][] = [
      [{ source_folder: 42, destination_bucket: 'my-bucket' }, 'source_folder'],
      [{ source_folder: folder, destination_bucket: ['my-bucket'] }, 'destination_bucket'],
      [{ source_folder: folder, destination_bucket: 'my-bucket', pattern: true }, 'pattern'],
      [
        { source_folder: folder, destination_bucket: 'my-bucket', destination_prefix: null },
        'destination_prefix',
      ],
      [{ source_folder: folder, destination_bucket: 'my-bucket', upload_id: 12345 }, 'upload_id'],
    ];
    for (const [payload, field] of wrongTypes) {
      const body = assertError(await createUpload(app, payload), 400, 'validation_error', /must be a string/);
      assert.deepEqual(body.details, [{ field, message: 'must be a string' }]);
    }
  });

  test('an upload_id outside the allowed characters or length', async (t) => {
    const { app, folder } = await setUp(t);
    for (const upload_id of ['', 'with space', 'slash/y', 'é', 'x'.repeat(129)]) {
      const reply = await createUpload(app, {
        source_folder: folder,
        destination_bucket: 'my-bucket',
        upload_id,
      });
      const body = assertError(reply, 400, 'validation_error', /1 to 128 characters of A-Z, a-z, 0-9/);
      assert.deepEqual(detailFields(body), ['upload_id']);
    }
    const longest = 'x'.repeat(128);
    const reply = await createUpload(app, {
      source_folder: folder,
      destination_bucket: 'my-bucket',
      upload_id: longest,
    });
    assert.equal(reply.statusCode, 201, reply.body);
    assert.equal((await app.inject({ method: 'GET', url: `/uploads/${longest}` })).statusCode, 200);
  });

  test('a duplicate upload_id is a 409', async (t) => {
    const { app, folder } = await setUp(t);
    const payload = { source_folder: folder, destination_bucket: 'my-bucket', upload_id: 'same' };
    assert.equal((await createUpload(app, payload)).statusCode, 201);
    assertError(await createUpload(app, payload), 409, 'upload_id_taken', /'same' already exists/);
  });

  test('an upload writing the keys of a live one is a 409 naming it, unless allow_overlap is true', async (t) => {
    const { app, root, folder } = await setUp(t);
    const other = path.join(root, 'other');
    await mkdir(other);
    const first = { source_folder: folder, destination_bucket: 'my-bucket', destination_prefix: 'runs' };
    assert.equal((await createUpload(app, { ...first, upload_id: 'first' })).statusCode, 201);

    const second = { source_folder: other, destination_bucket: 'my-bucket', destination_prefix: 'runs/42' };
    const body = assertError(
      await createUpload(app, second),
      409,
      'upload_overlaps',
      /'first' \(folder '.*\/source', bucket 'my-bucket', prefix 'runs'\).*allow_overlap: true/,
    );
    assert.deepEqual(detailFields(body), ['destination_prefix']);
    assertError(
      await createUpload(app, { ...second, allow_overlap: 'yes' }),
      400,
      'validation_error',
      /allow_overlap/,
    );
    const meant = await createUpload(app, { ...second, allow_overlap: true });
    assert.equal(meant.statusCode, 201, meant.body);
    assert.equal(
      'allow_overlap' in jsonOf(meant),
      false,
      'a choice made at creation, not a field of the request',
    );

    // The same folder to another prefix is two copies, not an overlap; a cancelled upload holds no keys.
    const copy = await createUpload(app, { ...first, destination_prefix: 'runs2' });
    assert.equal(copy.statusCode, 201, copy.body);
    await app.inject({ method: 'DELETE', url: '/uploads/first' });
    const again = await createUpload(app, { ...first, destination_prefix: 'runs/41' });
    assert.equal(again.statusCode, 201, again.body);
  });

  test('bad status filters, limits, cursors and unknown query parameters', async (t) => {
    const { app, folder } = await setUp(t);
    await createUpload(app, { source_folder: folder, destination_bucket: 'my-bucket', upload_id: 'u1' });
    const cases: [string, string, string][] = [
      ['/uploads?status=done', 'validation_error', 'status'],
      ['/uploads?status=', 'validation_error', 'status'],
      ['/uploads?status=active&status=pending', 'validation_error', 'status'],
      ['/uploads?state=active', 'validation_error', 'state'],
      ['/uploads/u1/files?status=cancelled', 'validation_error', 'status'],
      ['/uploads/u1/files?limit=0', 'validation_error', 'limit'],
      ['/uploads/u1/files?limit=1001', 'validation_error', 'limit'],
      ['/uploads/u1/files?limit=ten', 'validation_error', 'limit'],
      ['/uploads/u1/files?limit=5.5', 'validation_error', 'limit'],
      ['/uploads/u1/files?limit=', 'validation_error', 'limit'],
      ['/uploads/u1/files?cursor=abc', 'invalid_cursor', 'cursor'],
      ['/uploads/u1/files?cursor=-1', 'invalid_cursor', 'cursor'],
      ['/uploads/u1/files?cursor=', 'invalid_cursor', 'cursor'],
    ];
    for (const [url, code, field] of cases) {
      const body = assertError(await app.inject({ method: 'GET', url }), 400, code);
      assert.deepEqual(detailFields(body), [field], url);
    }
    const limits = jsonOf(await app.inject({ method: 'GET', url: '/uploads/u1/files?limit=1000' }));
    assert.deepEqual(limits, { items: [], next_cursor: null });
  });

  test('an unknown upload_id is a 404 on every route', async (t) => {
    const { app } = await setUp(t);
    const tooLongForAnId = 'y'.repeat(200);
    for (const id of ['nope', tooLongForAnId]) {
      const routes: [string, string][] = [
        ['GET', `/uploads/${id}`],
        ['GET', `/uploads/${id}/files`],
        ['DELETE', `/uploads/${id}`],
        ['POST', `/uploads/${id}/retry`],
        ['POST', `/uploads/${id}/verify`],
      ];
      for (const [method, url] of routes) {
        const reply = await app.inject({ method: method as 'GET', url });
        assertError(reply, 404, 'upload_not_found', new RegExp(`'${id}'`));
      }
    }
  });

  test('retrying a cancelled upload is a 409', async (t) => {
    const { app, folder } = await setUp(t);
    await createUpload(app, { source_folder: folder, destination_bucket: 'my-bucket', upload_id: 'u1' });
    await app.inject({ method: 'DELETE', url: '/uploads/u1' });
    assertError(await app.inject({ method: 'POST', url: '/uploads/u1/retry' }), 409, 'upload_cancelled');
  });
});

describe('errors raised by the framework keep the same shape', () => {
  test('an unknown route is a JSON 404', async (t) => {
    const { app } = await setUp(t);
    assertError(
      await app.inject({ method: 'GET', url: '/nothing/here' }),
      404,
      'route_not_found',
      /GET \/nothing\/here/,
    );
    assertError(await app.inject({ method: 'PUT', url: '/uploads/' }), 404, 'route_not_found');
  });

  test('a known path asked with another method is a 405 whose Allow header lists its methods', async (t) => {
    const { app } = await setUp(t);
    const cases: [method: 'PUT' | 'PATCH' | 'DELETE' | 'POST', url: string, allow: string][] = [
      ['PUT', '/uploads', 'GET, HEAD, POST'],
      ['PATCH', '/uploads/u1', 'GET, HEAD, DELETE'],
      ['DELETE', '/uploads/u1/files?limit=5', 'GET, HEAD'],
      ['PUT', '/uploads/u1/retry', 'POST'],
      ['DELETE', '/', 'GET, HEAD'],
      ['POST', '/openapi.json', 'GET, HEAD'],
    ];
    for (const [method, url, allow] of cases) {
      const reply = await app.inject({ method, url });
      assertError(reply, 405, 'method_not_allowed', new RegExp(`does not take ${method}: it takes ${allow}`));
      assert.equal(reply.headers.allow, allow, `${method} ${url}`);
    }
  });

  test('a body that is not JSON is a 415', async (t) => {
    const { app, folder } = await setUp(t);
    for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
      const reply = await app.inject({
        method: 'POST',
        url: '/uploads',
        headers: { 'content-type': contentType },
        payload: `source_folder=${folder}`,
      });
      assertError(reply, 415, 'unsupported_media_type', /application\/json/);
    }
  });

  test('a JSON body that declares a charset other than UTF-8 is a 415, not read as UTF-8', async (t) => {
    const { app, folder } = await setUp(t);
    const body = { source_folder: folder, destination_bucket: 'my-bucket' };
    for (const [contentType, charset] of [
      ['application/json; charset=utf-16', 'utf-16'],
      ['application/json;charset=UTF-16LE', 'UTF-16LE'],
      ['application/json; charset="utf-16"', 'utf-16'],
      ['application/json; charset=iso-8859-1', 'iso-8859-1'],
      ['Application/JSON; Charset=nonsense', 'nonsense'],
    ] as const) {
      const reply = await app.inject({
        method: 'POST',
        url: '/uploads',
        headers: { 'content-type': contentType },
        payload: Buffer.from(
          JSON.stringify(body),
          charset.toLowerCase().startsWith('utf-16') ? 'utf16le' : 'latin1',
        ),
      });
      assertError(reply, 415, 'unsupported_media_type', new RegExp(`UTF-8 \\(got charset '${charset}'\\)`));
    }
    assert.deepEqual(
      (await app.inject({ method: 'GET', url: '/uploads' })).json(),
      [],
      'nothing was created',
    );

    // UTF-8 however it is written: any case, quoted or not, or one of its other labels.
    for (const [index, contentType] of [
      'application/json; charset=utf-8',
      'application/json;charset=UTF-8',
      'application/json; charset="utf-8"',
      'application/json; charset=utf8',
    ].entries()) {
      const reply = await app.inject({
        method: 'POST',
        url: '/uploads',
        headers: { 'content-type': contentType },
        payload: JSON.stringify({ ...body, destination_prefix: `été-${index}` }),
      });
      assert.equal(reply.statusCode, 201, `${contentType}: ${reply.body}`);
      assert.equal(jsonOf(reply).destination_prefix, `été-${index}`, 'read as UTF-8');
    }
  });

  test('a body over the limit is a 413', async (t) => {
    const { app, folder } = await setUp(t);
    const reply = await createUpload(app, {
      source_folder: folder,
      destination_bucket: 'my-bucket',
      pattern: 'x'.repeat(200_000),
    });
    assertError(reply, 413, 'payload_too_large', /bytes/);
  });

  test('a malformed URL is a 400', async (t) => {
    const { app } = await setUp(t);
    assertError(await app.inject({ method: 'GET', url: '/uploads/%E0%A4%A' }), 400, 'bad_request');
  });

  test('a malformed HTTP request gets a JSON 400 on the socket', async (t) => {
    const { app } = await setUp(t);
    await app.listen({ port: 0, host: '127.0.0.1' });
    const address = app.server.address();
    assert.ok(address !== null && typeof address === 'object');
    const raw = await new Promise<string>((resolve, reject) => {
      let received = '';
      const socket = connect(address.port, '127.0.0.1', () =>
        socket.write('NOT-A-METHOD / HTTP/1.1\r\nHost: x\r\n\r\n'),
      );
      socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
      socket.on('close', () => resolve(received));
      socket.on('error', reject);
    });
    const [head = '', body = ''] = raw.split('\r\n\r\n');
    assert.match(head, /^HTTP\/1\.1 400 /);
    assert.match(head, /content-type: application\/json/i);
    assert.equal((JSON.parse(body) as Json).error, 'bad_request');
  });

  test('an unexpected error is a masked 500, logged with the request context', async (t) => {
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    const { app, store } = await setUp(t, logger);
    await store.close(); // every query now throws the driver's own error
    const reply = await app.inject({ method: 'GET', url: '/uploads?status=all' });
    const body = assertError(reply, 500, 'internal_error');
    assert.doesNotMatch(reply.body, /database|connection|sqlite|at .*\.ts/i);
    assert.equal(body.details, undefined);

    const logged = lines.map((line) => JSON.parse(line) as Json).find((entry) => entry.level === 50);
    assert.ok(logged, `no error was logged: ${lines.join('')}`);
    assert.equal(logged.url, '/uploads?status=all');
    assert.equal(logged.method, 'GET');
    assert.equal(logged.status, 500);
    assert.equal(logged.error, 'internal_error');
    assert.ok(logged.reqId, 'the log line carries the request id');
    assert.match(String((logged.err as Json).message), /database connection is not open/);
    assert.match(body.message as string, new RegExp(String(logged.reqId)));
  });
});
