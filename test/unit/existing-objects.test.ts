// What the engine tells the uploader about the object already at a file's key, on a real SQLite
// store with S3 played by a fake: the listing for files older than it, a HEAD for newer ones, and
// what a refused HEAD means for each if_exists.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { pino } from 'pino';
import type { FileTask, IfExists, Upload } from '../../src/domain/model.js';
import { ExistingObjects, ExistingObjectUnknownError } from '../../src/engine/existing-objects.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Store } from '../../src/store/store.js';
import { S3RequestError } from '../../src/transfer/errors.js';
import { FakeAuditor } from '../support/fake-auditor.js';
import { T0, keyFor, newUpload, observed, readyAt } from '../support/store-fixtures.js';
import { waitFor } from '../support/poll.js';

interface Fixture {
  store: Store;
  auditor: FakeAuditor;
  existing: ExistingObjects;
  warnings: string[];
}

async function setUp(t: TestContext, headFromBytes?: number): Promise<Fixture> {
  const root = await mkdtemp(path.join(tmpdir(), 'existing-objects-'));
  const store = openSqliteStore(path.join(root, 'state.db'));
  const auditor = new FakeAuditor();
  const warnings: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
  // The listing begins at T0 + 1000: the files of observed() were last modified at 1000.5 ms.
  const existing = new ExistingObjects({ store, auditor, logger, headFromBytes, now: () => T0 + 1000 });
  t.after(async () => {
    existing.stop();
    await store.close();
    await rm(root, { recursive: true, force: true });
  });
  return { store, auditor, existing, warnings };
}

/** An active upload with if_exists, its one task, and the upload as the store has it now. */
async function uploadWith(f: Fixture, ifExists: IfExists): Promise<{ upload: Upload; task: FileTask }> {
  await f.store.createUpload({ ...newUpload('u1'), destinationPrefix: 'key', ifExists }, T0);
  await f.store.activateUpload('u1', T0);
  await f.store.recordObservedFiles('u1', observed(1), keyFor, readyAt(T0), T0);
  const [task] = (await f.store.listTasks('u1', { limit: 10 })).items;
  const upload = await f.store.getUpload('u1');
  assert.ok(task && upload);
  return { upload, task };
}

const never = new AbortController().signal;

test('an older file is looked up in the listing, once it is complete; nothing is asked with overwrite', async (t) => {
  const f = await setUp(t);
  const { upload, task } = await uploadWith(f, 'skip_identical');
  f.auditor.putObject('bucket', task.objectKey, { size: 100, etag: 'e1' });
  f.existing.watch(upload);
  const found = await f.existing.lookup(upload, task, never);
  assert.deepEqual(found, { object: { size: 100, etag: 'e1' }, listed: true, ifExists: 'skip_identical' });
  assert.deepEqual(f.auditor.heads, [], 'no HEAD: the listing told');
  await waitFor(async () => (await f.store.getUpload('u1'))?.listedAt === T0 + 1000, {
    timeoutMs: 2000,
    message: 'listed_at recorded as the time the listing began',
  });
  // A task of a file this upload sent before, or an upload that overwrites, asks nothing.
  assert.equal(await f.existing.lookup(upload, { ...task, etag: 'sent' }, never), undefined);
  assert.equal(await f.existing.lookup({ ...upload, ifExists: 'overwrite' }, task, never), undefined);
});

test('a file modified since the listing began is asked with a HEAD, which brings the stored SHA-256', async (t) => {
  const f = await setUp(t);
  const { upload, task } = await uploadWith(f, 'skip_identical');
  const sha256 = 'ab'.repeat(32);
  f.auditor.putObject('bucket', task.objectKey, { size: 100, etag: 'e1', sha256 });
  f.existing.watch(upload);
  const newer = { ...task, mtimeMs: T0 + 5000 };
  const found = await f.existing.lookup(upload, newer, never);
  assert.deepEqual(found, {
    object: { size: 100, etag: 'e1', sha256 },
    listed: false,
    ifExists: 'skip_identical',
  });
  assert.deepEqual(f.auditor.heads, [`bucket/${task.objectKey}`]);
  // Nothing at the key: nothing to compare.
  f.auditor.objects.clear();
  assert.equal(await f.existing.lookup(upload, newer, never), undefined);
});

test('a small file the listing does not tell about is sent without a HEAD, unless with skip', async (t) => {
  const f = await setUp(t, 1000);
  const { upload, task } = await uploadWith(f, 'skip_identical');
  f.auditor.putObject('bucket', task.objectKey, { size: 100, etag: 'e1' });
  const newer = { ...task, mtimeMs: T0 + 5000 };
  assert.equal(await f.existing.lookup(upload, newer, never), undefined);
  assert.deepEqual(f.auditor.heads, [], 'a HEAD would cost what sending it costs');
  const large = { ...newer, size: 1000 };
  assert.equal((await f.existing.lookup(upload, large, never))?.listed, false);
  const skip = { ...upload, ifExists: 'skip' as const };
  assert.equal((await f.existing.lookup(skip, newer, never))?.ifExists, 'skip');
  assert.equal(f.auditor.heads.length, 2);
});

test('a refused HEAD: skip_identical sends the file (one warning), skip fails it with a message saying why', async (t) => {
  const f = await setUp(t);
  const { upload, task } = await uploadWith(f, 'skip_identical');
  f.auditor.failure = new S3RequestError(
    'HeadObject',
    { bucket: 'bucket', key: task.objectKey },
    1,
    Object.assign(new Error('Access Denied'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }),
  );
  const newer = { ...task, mtimeMs: T0 + 5000 };
  assert.equal(await f.existing.lookup(upload, newer, never), undefined);
  assert.equal(await f.existing.lookup(upload, newer, never), undefined);
  assert.equal(
    f.warnings.filter((line) => line.includes('HEAD refused')).length,
    1,
    'one warning per upload',
  );
  await assert.rejects(
    f.existing.lookup({ ...upload, ifExists: 'skip' }, newer, never),
    (error: unknown) =>
      error instanceof ExistingObjectUnknownError &&
      /cannot tell whether an object is already at the key/.test(error.message),
  );
});

test('a listing that fails leaves every file to a HEAD, and says why in the log', async (t) => {
  const f = await setUp(t);
  const { upload, task } = await uploadWith(f, 'skip_identical');
  f.auditor.failure = new Error('the listing broke');
  f.existing.watch(upload);
  await waitFor(
    () => f.warnings.some((line) => line.includes('could not list the objects already under the prefix')),
    {
      timeoutMs: 2000,
      message: 'the warning',
    },
  );
  f.auditor.failure = undefined;
  f.auditor.putObject('bucket', task.objectKey, { size: 100, etag: 'e1' });
  const found = await f.existing.lookup(upload, task, never);
  assert.deepEqual(found?.listed, false);
  assert.deepEqual(f.auditor.heads, [`bucket/${task.objectKey}`]);
});
