// UploadService on a real SQLite store in a temp folder, with a lifecycle that records what the
// engine would have been told.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { httpStatusOf } from '../../src/api/errors.js';
import { DomainError, type DomainErrorCode } from '../../src/domain/errors.js';
import type { Upload } from '../../src/domain/model.js';
import { UploadService } from '../../src/service/upload-service.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Store } from '../../src/store/store.js';
import { FakeAuditor } from '../support/fake-auditor.js';
import { RecordingLifecycle } from '../support/recording-lifecycle.js';
import { readyAt } from '../support/store-fixtures.js';
import { NO_OBJECT_PROPERTIES } from '../../src/domain/object-properties.js';

interface Fixture {
  root: string;
  folder: string;
  store: Store;
  lifecycle: RecordingLifecycle;
  auditor: FakeAuditor;
  service: UploadService;
  clock: { now: number };
}

async function setUp(t: TestContext): Promise<Fixture> {
  const root = await mkdtemp(path.join(tmpdir(), 'upload-service-'));
  const folder = path.join(root, 'source');
  await mkdir(folder);
  const store = openSqliteStore(path.join(root, 'state.db'));
  const lifecycle = new RecordingLifecycle();
  const clock = { now: Date.parse('2024-05-01T12:00:00Z') };
  let ids = 0;
  const auditor = new FakeAuditor();
  const service = new UploadService({
    store,
    lifecycle,
    auditor,
    now: () => clock.now,
    newUploadId: () => `generated-${++ids}`,
  });
  t.after(async () => {
    await store.close();
    await rm(root, { recursive: true, force: true });
  });
  return { root, folder, store, lifecycle, auditor, service, clock };
}

async function rejectsWith(
  promise: Promise<unknown>,
  code: DomainErrorCode,
  messagePart?: RegExp,
): Promise<DomainError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof DomainError, `expected a DomainError ${code}, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (messagePart) assert.match(error.message, messagePart);
    return error;
  }
  assert.fail(`expected the call to be refused with ${code}`);
}

/** Puts `count` failed tasks under an active upload, as the engine would after failed uploads. */
async function failTasks(f: Fixture, uploadId: string, count: number): Promise<void> {
  const files = Array.from({ length: count }, (_, i) => ({
    relativePath: `f${i}.txt`,
    size: 10,
    mtimeMs: 1,
    ino: 1,
    ctimeMs: 1,
    observedAt: 1,
  }));
  await f.store.activateUpload(uploadId, f.clock.now);
  await f.store.recordObservedFiles(uploadId, files, (p) => p, readyAt(f.clock.now), f.clock.now);
  for (const task of await f.store.claimReadyTasks(f.clock.now, count)) {
    assert.ok(
      await f.store.failTask(
        task.taskId,
        { message: 'boom', kind: 'transient', retryAt: f.clock.now + 3_600_000 },
        f.clock.now,
      ),
    );
  }
}

test('createUpload stores the normalised upload and tells the engine', async (t) => {
  const f = await setUp(t);
  await symlink(f.folder, path.join(f.root, 'link'));
  const { upload: created } = await f.service.createUpload({
    sourceFolder: path.join(f.root, 'link') + '/',
    destinationBucket: 'my-bucket',
    destinationPrefix: 'backups/2024/',
    pattern: '**/*.jpg',
    uploadId: 'photos-2024',
  });
  assert.deepEqual(created, {
    uploadId: 'photos-2024',
    sourceFolder: f.folder,
    destinationBucket: 'my-bucket',
    destinationPrefix: 'backups/2024',
    pattern: '**/*.jpg',
    status: 'pending',
    createdAt: f.clock.now,
    updatedAt: f.clock.now,
    lastError: null,
    lastCompletedAt: null,
    watch: true,
    completedAt: null,
    ifExists: 'skip_identical',
    listedAt: null,
    objectProperties: NO_OBJECT_PROPERTIES,
    watchedBy: null,
    completeMarkers: [],
    manifestKey: null,
    notifyUrl: null,
    scannedAt: null,
    arrival: null,
    manifest: null,
    notification: null,
  });
  assert.deepEqual(await f.store.getUpload('photos-2024'), created);
  assert.deepEqual(f.lifecycle.created, ['photos-2024']);
});

test('createUpload checks the bucket first: a refusal stores nothing, what cannot be checked is a warning', async (t) => {
  const f = await setUp(t);
  const base = { sourceFolder: f.folder, destinationPrefix: 'runs/42/' };
  const message = "bucket 'gone' does not exist (NoSuchBucket, HTTP 404) [ListObjectsV2 s3://gone]";
  f.auditor.bucketChecks.set('gone', { result: 'refused', problem: 'bucket_not_found', message });
  await rejectsWith(
    f.service.createUpload({ ...base, destinationBucket: 'gone', uploadId: 'a' }),
    'bucket_not_found',
    /destination_bucket 'gone' cannot be used: bucket 'gone' does not exist/,
  );
  assert.deepEqual(
    f.auditor.checkedBuckets,
    [{ bucket: 'gone', prefix: 'runs/42' }],
    'the normalised prefix',
  );
  assert.equal(await f.store.getUpload('a'), undefined, 'nothing stored');
  assert.deepEqual(f.lifecycle.created, []);

  f.auditor.bucketChecks.set('write-only', {
    result: 'unchecked',
    message: "access denied to bucket 'write-only' (AccessDenied, HTTP 403)",
  });
  const created = await f.service.createUpload({ ...base, destinationBucket: 'write-only', uploadId: 'b' });
  assert.equal(created.upload.uploadId, 'b');
  assert.deepEqual(created.warnings, [
    "destination_bucket 'write-only' was not checked: access denied to bucket 'write-only' (AccessDenied, HTTP 403)",
  ]);

  const unchecked = await f.service.createUpload({
    ...base,
    destinationBucket: 'gone',
    uploadId: 'c',
    checkBucket: false,
  });
  assert.deepEqual(unchecked.warnings, [], 'not asked, nothing to warn of');
  assert.equal(f.auditor.checkedBuckets.length, 2, 'check_bucket: false asks S3 nothing');
  assert.deepEqual(f.lifecycle.created, ['b', 'c']);
});

test('createUpload applies the defaults: a generated id, every file, no prefix', async (t) => {
  const f = await setUp(t);
  const { upload: created } = await f.service.createUpload({
    sourceFolder: f.folder,
    destinationBucket: 'my-bucket',
  });
  assert.equal(created.uploadId, 'generated-1');
  assert.equal(created.pattern, '**');
  assert.equal(created.destinationPrefix, '');
});

test('createUpload uses a random UUID when no id generator is given', async (t) => {
  const f = await setUp(t);
  const service = new UploadService({ store: f.store, lifecycle: f.lifecycle, auditor: new FakeAuditor() });
  const { upload: created } = await service.createUpload({
    sourceFolder: f.folder,
    destinationBucket: 'my-bucket',
  });
  assert.match(created.uploadId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});

test('createUpload refuses a bad source folder before anything is stored', async (t) => {
  const f = await setUp(t);
  const file = path.join(f.root, 'file.txt');
  await writeFile(file, 'x');
  const cases: [string, RegExp][] = [
    ['', /is empty/],
    ['relative/folder', /is a relative path/],
    [path.join(f.root, 'missing'), /does not exist/],
    [file, /is a file, not a folder/],
    [path.join(file, 'below'), /does not exist: a part of the path is a file/],
  ];
  for (const [sourceFolder, reason] of cases) {
    const error = await rejectsWith(
      f.service.createUpload({ sourceFolder, destinationBucket: 'my-bucket' }),
      'invalid_source_folder',
      reason,
    );
    assert.deepEqual(
      error.details?.map((d) => d.field),
      ['source_folder'],
    );
  }
  assert.deepEqual(await f.store.listUploads(['pending', 'active', 'cancelled']), []);
  assert.deepEqual(f.lifecycle.created, []);
});

test('createUpload refuses a bad bucket, pattern, prefix or upload id', async (t) => {
  const f = await setUp(t);
  const base = { sourceFolder: f.folder, destinationBucket: 'my-bucket' };
  await rejectsWith(
    f.service.createUpload({ ...base, destinationBucket: 'My_Bucket' }),
    'invalid_bucket_name',
    /My_Bucket/,
  );
  await rejectsWith(f.service.createUpload({ ...base, destinationBucket: 'ab' }), 'invalid_bucket_name');
  await rejectsWith(f.service.createUpload({ ...base, pattern: '' }), 'invalid_pattern', /empty/);
  await rejectsWith(f.service.createUpload({ ...base, pattern: 'logs/[a' }), 'invalid_pattern');
  await rejectsWith(
    f.service.createUpload({ ...base, destinationPrefix: 'a/../b' }),
    'invalid_destination_prefix',
  );
  await rejectsWith(
    f.service.createUpload({ ...base, uploadId: 'has space' }),
    'invalid_upload_id',
    /1 to 128/,
  );
  await rejectsWith(f.service.createUpload({ ...base, uploadId: 'x'.repeat(129) }), 'invalid_upload_id');
  await f.service.createUpload({ ...base, uploadId: `A-z0._~${'x'.repeat(121)}` });
  assert.equal(f.lifecycle.created.length, 1);
});

test('createUpload takes markers, a manifest and a notify_url, and refuses bad ones', async (t) => {
  const f = await setUp(t);
  const base = { sourceFolder: f.folder, destinationBucket: 'my-bucket', destinationPrefix: 'runs/42/' };
  await rejectsWith(
    f.service.createUpload({ ...base, completeMarkers: ['RTAComplete.txt/'] }),
    'invalid_complete_markers',
    /folder/,
  );
  await rejectsWith(
    f.service.createUpload({ ...base, completeMarkers: ['a.txt', 'a.txt'] }),
    'invalid_complete_markers',
    /listed twice/,
  );
  await rejectsWith(
    f.service.createUpload({ ...base, completeMarkers: Array.from({ length: 17 }, (_, i) => `m${i}`) }),
    'invalid_complete_markers',
    /at most 16/,
  );
  await rejectsWith(
    f.service.createUpload({ ...base, manifest: false, manifestKey: 'x.json' }),
    'invalid_manifest_key',
    /manifest is false/,
  );
  await rejectsWith(f.service.createUpload({ ...base, manifestKey: '' }), 'invalid_manifest_key', /empty/);
  await rejectsWith(f.service.createUpload({ ...base, notifyUrl: 'ftp://h/x' }), 'invalid_notify_url');
  const secret = f.service.createUpload({ ...base, notifyUrl: 'https://h/x?token=s3cr3t#frag' });
  const refused = await rejectsWith(secret, 'invalid_notify_url');
  assert.ok(!refused.message.includes('s3cr3t'), refused.message);
  assert.deepEqual(f.lifecycle.created, []);

  const { upload } = await f.service.createUpload({
    ...base,
    uploadId: 'run-42',
    completeMarkers: ['RTAComplete.txt', './CopyComplete.txt'],
    manifest: true,
    notifyUrl: 'https://hooks.example.org/run?token=s3cr3t',
  });
  assert.deepEqual(upload.completeMarkers, ['RTAComplete.txt', './CopyComplete.txt']);
  assert.equal(upload.manifestKey, 'runs/42/_manifest.json');
  assert.equal(upload.notifyUrl, 'https://hooks.example.org/run?token=s3cr3t');
  assert.deepEqual([upload.arrival, upload.manifest, upload.notification], [null, null, null]);
  const keyed = await f.service.createUpload({
    ...base,
    destinationBucket: 'other',
    manifestKey: 'lists/run-42.json',
  });
  assert.equal(keyed.upload.manifestKey, 'lists/run-42.json');
  const plain = await f.service.createUpload({ ...base, destinationBucket: 'third' });
  assert.deepEqual(
    [plain.upload.completeMarkers, plain.upload.manifestKey, plain.upload.notifyUrl],
    [[], null, null],
  );
});

test('createUpload refuses a notify_url whose host is not allowed', async (t) => {
  const f = await setUp(t);
  const service = new UploadService({
    store: f.store,
    lifecycle: f.lifecycle,
    auditor: f.auditor,
    notifyAllowedHosts: ['hooks.example.org', '*.lab.example.org'],
  });
  const base = { sourceFolder: f.folder, destinationBucket: 'my-bucket' };
  await rejectsWith(
    service.createUpload({ ...base, notifyUrl: 'https://evil.example.com/x' }),
    'invalid_notify_url',
    /not allowed by NOTIFY_ALLOWED_HOSTS/,
  );
  await service.createUpload({ ...base, notifyUrl: 'https://hooks.example.org/x' });
  await service.createUpload({
    ...base,
    destinationBucket: 'bucket-2',
    notifyUrl: 'https://ci.lab.example.org/x',
  });
  assert.equal(f.lifecycle.created.length, 2);
});

test('createUpload refuses an upload id that exists, whatever its status', async (t) => {
  const f = await setUp(t);
  const input = { sourceFolder: f.folder, destinationBucket: 'my-bucket', uploadId: 'once' };
  await f.service.createUpload(input);
  await f.service.cancelUpload('once');
  await rejectsWith(f.service.createUpload(input), 'upload_id_taken', /'once' already exists/);
  assert.deepEqual(f.lifecycle.created, ['once']);
});

test('createUpload refuses an upload writing the keys of a live one, naming it, whatever the folders', async (t) => {
  const f = await setUp(t);
  const other = path.join(f.root, 'other');
  const nested = path.join(f.folder, 'raw');
  await mkdir(other);
  await mkdir(nested);
  await f.service.createUpload({
    sourceFolder: f.folder,
    destinationBucket: 'shared',
    destinationPrefix: 'runs',
    uploadId: 'runs',
  });
  const overlapping: [folder: string, prefix: string][] = [
    [other, 'runs'],
    [other, 'runs/'],
    [other, 'runs/42'],
    [other, ''],
    [f.folder, 'runs'], // the same folder twice to the same place sends everything twice
    [nested, 'runs/42/raw'], // a folder inside the first: its keys are under the same prefix
  ];
  for (const [sourceFolder, destinationPrefix] of overlapping) {
    const error = await rejectsWith(
      f.service.createUpload({ sourceFolder, destinationBucket: 'shared', destinationPrefix }),
      'upload_overlaps',
      new RegExp(`'runs' \\(folder '${f.folder}', bucket 'shared', prefix 'runs'\\).*allow_overlap: true`),
    );
    assert.equal(httpStatusOf(error.code), 409);
    assert.deepEqual(
      error.details?.map((detail) => detail.field),
      ['destination_prefix'],
    );
  }
  assert.deepEqual(f.lifecycle.created, ['runs'], 'nothing else was stored or started');

  // The same folder elsewhere (two copies), a look-alike prefix, another bucket: no shared key.
  const apart: [folder: string, bucket: string, prefix: string][] = [
    [f.folder, 'shared', 'copies'],
    [other, 'shared', 'runs2'],
    [f.folder, 'elsewhere', 'runs'],
    [other, 'elsewhere2', ''],
  ];
  for (const [sourceFolder, destinationBucket, destinationPrefix] of apart) {
    await f.service.createUpload({ sourceFolder, destinationBucket, destinationPrefix });
  }
  assert.equal(f.lifecycle.created.length, 1 + apart.length);

  // An empty prefix overlaps every prefix of its bucket, and says so.
  await rejectsWith(
    f.service.createUpload({ sourceFolder: other, destinationBucket: 'elsewhere2', destinationPrefix: 'x' }),
    'upload_overlaps',
    /bucket 'elsewhere2', no prefix\)/,
  );
});

test('createUpload accepts an overlap when the upload says it is meant', async (t) => {
  const f = await setUp(t);
  const base = { sourceFolder: f.folder, destinationBucket: 'shared', destinationPrefix: 'runs' };
  await f.service.createUpload({ ...base, pattern: '*.csv', uploadId: 'csv' });
  await f.service.createUpload({ ...base, pattern: '*.json', uploadId: 'json', allowOverlap: true });
  await rejectsWith(f.service.createUpload({ ...base, allowOverlap: false }), 'upload_overlaps', /'csv'/);
  assert.deepEqual(f.lifecycle.created, ['csv', 'json']);
});

test('createUpload: cancelled uploads never overlap; a live one with the same id is upload_id_taken', async (t) => {
  const f = await setUp(t);
  const base = { sourceFolder: f.folder, destinationBucket: 'shared', destinationPrefix: 'runs' };
  await f.service.createUpload({ ...base, uploadId: 'first' });
  await rejectsWith(f.service.createUpload({ ...base, uploadId: 'first' }), 'upload_id_taken');
  await f.service.cancelUpload('first');
  await f.service.createUpload({ ...base, uploadId: 'second' });
  assert.deepEqual(f.lifecycle.created, ['first', 'second']);
});

/**
 * The same store, whose listUploads answers 50 ms after reading, as a store over a network
 * might: SQLite answers at once, which hides the race between checking and storing.
 */
function withSlowListing(store: Store): Store {
  return new Proxy(store, {
    get(target, property) {
      if (property === 'listUploads') {
        return async (...args: Parameters<Store['listUploads']>) => {
          const answer = await target.listUploads(...args);
          await new Promise((resolve) => setTimeout(resolve, 50));
          return answer;
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

test('createUpload: of uploads for the same keys sent together, exactly one is stored', async (t) => {
  const f = await setUp(t);
  const service = new UploadService({
    store: withSlowListing(f.store),
    lifecycle: f.lifecycle,
    auditor: new FakeAuditor(),
  });
  const folders = await Promise.all(
    Array.from({ length: 8 }, async (_, index) => {
      const folder = path.join(f.root, `concurrent-${index}`);
      await mkdir(folder);
      return folder;
    }),
  );
  const outcomes = await Promise.allSettled(
    folders.map((sourceFolder, index) =>
      service.createUpload({
        sourceFolder,
        destinationBucket: 'shared',
        destinationPrefix: index % 2 === 0 ? 'runs' : 'runs/42',
      }),
    ),
  );
  const stored = outcomes.filter((outcome) => outcome.status === 'fulfilled');
  assert.equal(stored.length, 1, JSON.stringify(outcomes));
  for (const outcome of outcomes) {
    if (outcome.status === 'rejected') {
      assert.ok(
        outcome.reason instanceof DomainError && outcome.reason.code === 'upload_overlaps',
        String(outcome.reason),
      );
    }
  }
  assert.equal((await f.store.listUploads(['pending', 'active'])).length, 1);

  // A refusal does not block the creations queued after it.
  await service.createUpload({ sourceFolder: f.folder, destinationBucket: 'other' });
});

test('listUploads shows live uploads by default, oldest first, and filters by status', async (t) => {
  const f = await setUp(t);
  for (const uploadId of ['a', 'b', 'c']) {
    const destination = { destinationBucket: 'my-bucket', destinationPrefix: uploadId };
    await f.service.createUpload({ sourceFolder: f.folder, ...destination, uploadId });
    f.clock.now += 1000;
  }
  await f.store.activateUpload('b', f.clock.now);
  await f.service.cancelUpload('c');
  const ids = (uploads: Upload[]): string[] => uploads.map((r) => r.uploadId);
  assert.deepEqual(ids(await f.service.listUploads()), ['a', 'b']);
  assert.deepEqual(ids(await f.service.listUploads('all')), ['a', 'b', 'c']);
  assert.deepEqual(ids(await f.service.listUploads('active')), ['b']);
  assert.deepEqual(ids(await f.service.listUploads('cancelled')), ['c']);
});

test('getUpload returns the upload with its totals; an unknown id is upload_not_found', async (t) => {
  const f = await setUp(t);
  await f.service.createUpload({ sourceFolder: f.folder, destinationBucket: 'my-bucket', uploadId: 'u' });
  await failTasks(f, 'u', 2);
  const { upload, totals } = await f.service.getUpload('u');
  assert.equal(upload.status, 'active');
  assert.deepEqual(totals.files, { pending: 0, in_progress: 0, completed: 0, failed: 2, total: 2 });
  assert.equal(totals.bytes.total, 20);
  await rejectsWith(f.service.getUpload('nope'), 'upload_not_found', /'nope'/);
});

test('listFiles pages with a cursor, filters by status, and refuses a bad cursor or unknown id', async (t) => {
  const f = await setUp(t);
  await f.service.createUpload({ sourceFolder: f.folder, destinationBucket: 'my-bucket', uploadId: 'u' });
  const files = ['a', 'b', 'c', 'd', 'e'].map((name) => ({
    relativePath: `${name}.txt`,
    size: 1,
    mtimeMs: 1,
    ino: 1,
    ctimeMs: 1,
    observedAt: 1,
  }));
  await f.store.recordObservedFiles('u', files, (p) => `k/${p}`, readyAt(f.clock.now), f.clock.now);

  const seen: string[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 10; page += 1) {
    const result = await f.service.listFiles('u', { limit: 2, cursor });
    seen.push(...result.items.map((task) => task.relativePath));
    if (result.nextCursor === null) break;
    cursor = result.nextCursor;
  }
  assert.deepEqual(seen, ['a.txt', 'b.txt', 'c.txt', 'd.txt', 'e.txt']);

  assert.equal((await f.service.listFiles('u', { limit: 10, status: 'pending' })).items.length, 5);
  assert.equal((await f.service.listFiles('u', { limit: 10, status: 'failed' })).items.length, 0);
  for (const bad of ['abc', '0', '-1', '1.5', '0012', '9'.repeat(16)]) {
    await rejectsWith(f.service.listFiles('u', { limit: 10, cursor: bad }), 'invalid_cursor');
  }
  await rejectsWith(f.service.listFiles('nope', { limit: 10 }), 'upload_not_found');
});

test('a one-shot upload: stored with watch false, listed by default once completed, not live, neither cancelled nor rescanned', async (t) => {
  const f = await setUp(t);
  const destination = { destinationBucket: 'my-bucket', destinationPrefix: 'runs/1' };
  const { upload: once } = await f.service.createUpload({
    sourceFolder: f.folder,
    ...destination,
    uploadId: 'once',
    watch: false,
  });
  assert.deepEqual([once.watch, once.status, once.completedAt], [false, 'pending', null]);
  const { upload: watched } = await f.service.createUpload({
    sourceFolder: f.folder,
    destinationBucket: 'other-bucket',
    uploadId: 'w',
  });
  assert.equal(watched.watch, true, 'watched by default');
  await f.store.activateUpload('once', f.clock.now);
  f.clock.now += 1000;
  assert.equal(await f.store.completeUpload('once', f.clock.now), true);

  const ids = (uploads: Upload[]): string[] => uploads.map((r) => r.uploadId);
  assert.deepEqual(ids(await f.service.listUploads()), ['once', 'w']);
  assert.deepEqual(ids(await f.service.listUploads('completed')), ['once']);
  const { upload, progress } = await f.service.getUpload('once');
  assert.deepEqual(
    [upload.status, upload.completedAt, progress.phase],
    ['completed', f.clock.now, 'completed'],
  );

  // A completed upload is not live: another one may write its keys.
  await f.service.createUpload({ sourceFolder: f.folder, ...destination, uploadId: 'again' });
  // Nothing to stop: cancelling answers the upload as it is.
  f.clock.now += 1000;
  assert.deepEqual(await f.service.cancelUpload('once'), upload);
  assert.deepEqual(f.lifecycle.cancelled, []);
  await rejectsWith(f.service.rescan('once'), 'upload_not_watched', /completed/);
  assert.deepEqual(f.lifecycle.rescans, []);
});

test('cancelUpload cancels, tells the engine every time, and is idempotent', async (t) => {
  const f = await setUp(t);
  await f.service.createUpload({ sourceFolder: f.folder, destinationBucket: 'my-bucket', uploadId: 'u' });
  f.clock.now += 5000;
  const first = await f.service.cancelUpload('u');
  assert.equal(first.status, 'cancelled');
  assert.equal(first.updatedAt, f.clock.now);
  f.clock.now += 5000;
  const second = await f.service.cancelUpload('u');
  assert.deepEqual(second, first);
  assert.deepEqual(f.lifecycle.cancelled, ['u', 'u']);
  await rejectsWith(f.service.cancelUpload('nope'), 'upload_not_found');
});

test('retryFailed requeues the failed files and wakes the engine only when there were some', async (t) => {
  const f = await setUp(t);
  await f.service.createUpload({ sourceFolder: f.folder, destinationBucket: 'my-bucket', uploadId: 'u' });
  assert.deepEqual(await f.service.retryFailed('u'), { requeued: 0 });
  assert.equal(f.lifecycle.requeueWakeUps, 0);

  await failTasks(f, 'u', 3);
  assert.deepEqual(await f.service.retryFailed('u'), { requeued: 3 });
  assert.equal(f.lifecycle.requeueWakeUps, 1);
  assert.equal((await f.service.getUpload('u')).totals.files.pending, 3);

  await f.service.cancelUpload('u');
  await rejectsWith(f.service.retryFailed('u'), 'upload_cancelled');
  await rejectsWith(f.service.retryFailed('nope'), 'upload_not_found');
});

test('health says whether the database answers', async (t) => {
  const f = await setUp(t);
  const s3 = f.lifecycle.s3;
  assert.deepEqual(await f.service.health(), { database: 'reachable', s3 });
  await f.store.close();
  assert.deepEqual(await f.service.health(), { database: 'unreachable', s3 });
});
