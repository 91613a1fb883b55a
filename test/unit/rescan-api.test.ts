// POST /uploads/{id}/rescan and `last_scan`, through inject() on a real engine whose monitors scan
// real folders. The engine is not started: nothing is uploaded, so no S3 is needed.
import assert from 'node:assert/strict';
import { appendFile, link, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { pino } from 'pino';
import { buildApp, type App } from '../../src/api/app.js';
import { Engine } from '../../src/engine/engine.js';
import { UploadService } from '../../src/service/upload-service.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Store } from '../../src/store/store.js';
import type { Uploader } from '../../src/transfer/types.js';
import { FakeAuditor } from '../support/fake-auditor.js';
import { waitFor } from '../support/poll.js';
import { RecordingLifecycle } from '../support/recording-lifecycle.js';
import { makeTempDir, removeTempDir } from '../support/temp-tree.js';

type Json = Record<string, unknown>;
type Reply = Awaited<ReturnType<App['inject']>>;

/** The engine is never started, so its dispatcher never asks for an upload. */
const noUploads: Uploader = {
  upload: () => Promise.reject(new Error('no upload is expected in this test')),
  abortMultipart: () => Promise.reject(new Error('no abort is expected in this test')),
  writeObject: () => Promise.reject(new Error('no object is written in this test')),
};

interface Fixture {
  root: string;
  folder: string;
  store: Store;
  app: App;
}

/** Three matching files and one that is not, in a folder; the API on a real engine. */
async function setUp(t: TestContext): Promise<Fixture> {
  const root = await makeTempDir('rescan-api');
  const folder = path.join(root, 'source');
  await mkdir(path.join(folder, 'sub'), { recursive: true });
  for (const name of ['a.txt', 'b.txt', 'sub/c.txt', 'notes.log']) {
    await writeFile(path.join(folder, name), name);
  }
  const store = openSqliteStore(path.join(root, 'state.db'));
  const engine = new Engine({
    store,
    uploader: noUploads,
    auditor: new FakeAuditor(),
    probeS3: async () => ({ reachable: true }),
    logger: pino({ level: 'silent' }),
    settleSeconds: 0,
    stream: undefined,
    rescanIntervalSeconds: 3600,
    failedRequeueIntervalSeconds: 3600,
    maxConcurrentFiles: 1,
  });
  const service = new UploadService({ store, lifecycle: engine, auditor: new FakeAuditor() });
  const app = await buildApp({ service, logger: false, version: '0' });
  t.after(async () => {
    await app.close();
    await engine.stop();
    await store.close();
    await removeTempDir(root);
  });
  return { root, folder, store, app };
}

function details(app: App, uploadId: string): Promise<Json> {
  return app.inject({ method: 'GET', url: `/uploads/${uploadId}` }).then((reply) => {
    assert.equal(reply.statusCode, 200, reply.body);
    return reply.json<Json>();
  });
}

/** Waits for a finished `last_scan` of this kind, and returns it. */
function finishedScan(app: App, uploadId: string, kind: 'initial' | 'rescan'): Promise<Json> {
  return waitFor(
    async () => {
      const scan = (await details(app, uploadId)).last_scan as Json | null;
      return scan?.kind === kind && scan.finished_at !== null ? scan : undefined;
    },
    { message: `a finished ${kind} scan of ${uploadId}` },
  );
}

function rescan(app: App, uploadId: string): Promise<Reply> {
  return app.inject({ method: 'POST', url: `/uploads/${uploadId}/rescan` });
}

function assertError(reply: Reply, status: number, code: string, messagePart: RegExp): void {
  assert.equal(reply.statusCode, status, reply.body);
  const body = reply.json<Json>();
  assert.equal(body.error, code, reply.body);
  assert.match(String(body.message), messagePart);
}

describe('POST /uploads/{id}/rescan and last_scan', () => {
  test('the initial scan shows in last_scan, with the files that match', async (t) => {
    const { folder, app } = await setUp(t);
    const created = await app.inject({
      method: 'POST',
      url: '/uploads',
      payload: { source_folder: folder, destination_bucket: 'bucket', pattern: '*.txt', upload_id: 'u1' },
    });
    assert.equal(created.statusCode, 201, created.body);

    const initial = await finishedScan(app, 'u1', 'initial');
    assert.deepEqual(Object.keys(initial).sort(), [
      'duration_ms',
      'error',
      'files_changed',
      'files_not_utf8',
      'files_seen',
      'finished_at',
      'kind',
      'started_at',
    ]);
    assert.equal(initial.files_seen, 3);
    assert.equal(initial.files_changed, 3);
    assert.equal(initial.files_not_utf8, 0);
    assert.equal(initial.error, null);
    assert.ok(Number.isInteger(initial.duration_ms) && (initial.duration_ms as number) >= 0);
    assert.ok(Date.parse(String(initial.finished_at)) >= Date.parse(String(initial.started_at)));

    const reply = await rescan(app, 'u1');
    assert.equal(reply.statusCode, 202, reply.body);
    assert.deepEqual(reply.json(), { upload_id: 'u1', rescan: 'started' });
    const again = await finishedScan(app, 'u1', 'rescan');
    assert.equal(again.files_seen, 3);
    assert.equal(again.files_changed, 0, 'nothing changed since the initial scan');
  });

  test('a rescan finds a change that file-system events missed', async (t) => {
    const { root, folder, app } = await setUp(t);
    await app.inject({
      method: 'POST',
      url: '/uploads',
      payload: { source_folder: folder, destination_bucket: 'bucket', upload_id: 'u1' },
    });
    await finishedScan(app, 'u1', 'initial');

    // Written through a hard link outside the folder: inotify tells the link's folder, not this one.
    const outside = path.join(root, 'a-link.txt');
    await link(path.join(folder, 'a.txt'), outside);
    await appendFile(outside, ' and more');

    assert.equal((await rescan(app, 'u1')).statusCode, 202);
    const scan = await finishedScan(app, 'u1', 'rescan');
    assert.equal(scan.files_seen, 4);
    assert.equal(scan.files_changed, 1);
    const files = await app.inject({ method: 'GET', url: '/uploads/u1/files?status=pending' });
    const item = files.json<{ items: Json[] }>().items.find((file) => file.relative_path === 'a.txt');
    assert.equal(item?.size, 'a.txt and more'.length);
  });

  test('an unknown id is a 404, a cancelled upload a 409, both in the error shape', async (t) => {
    const { folder, app } = await setUp(t);
    assertError(await rescan(app, 'nope'), 404, 'upload_not_found', /'nope'/);

    await app.inject({
      method: 'POST',
      url: '/uploads',
      payload: { source_folder: folder, destination_bucket: 'bucket', upload_id: 'u1' },
    });
    await finishedScan(app, 'u1', 'initial');
    assert.equal((await app.inject({ method: 'DELETE', url: '/uploads/u1' })).statusCode, 200);
    assertError(await rescan(app, 'u1'), 409, 'upload_not_watched', /cancelled/);
    assert.equal((await details(app, 'u1')).last_scan, null, 'a cancelled upload has no monitor');
  });

  test('a live upload the engine does not watch right now is a 409 that says to try again', async (t) => {
    const { folder, store, app } = await setUp(t);
    // Stored behind the engine's back, as if its monitor could not start yet.
    await store.createUpload(
      {
        uploadId: 'u2',
        sourceFolder: folder,
        destinationBucket: 'bucket',
        destinationPrefix: '',
        pattern: '**',
      },
      Date.now(),
    );
    assertError(await rescan(app, 'u2'), 409, 'upload_not_watched', /try again/);
    assert.equal((await details(app, 'u2')).last_scan, null);
  });
});

describe('the rescan answer', () => {
  test('says when a scan was already running', async (t) => {
    const root = await makeTempDir('rescan-answer');
    const store = openSqliteStore(path.join(root, 'state.db'));
    const lifecycle = new RecordingLifecycle();
    const app = await buildApp({
      service: new UploadService({ store, lifecycle, auditor: new FakeAuditor() }),
      logger: false,
      version: '0',
    });
    t.after(async () => {
      await app.close();
      await store.close();
      await removeTempDir(root);
    });
    await store.createUpload(
      {
        uploadId: 'u1',
        sourceFolder: root,
        destinationBucket: 'bucket',
        destinationPrefix: '',
        pattern: '**',
      },
      Date.now(),
    );
    lifecycle.rescanOutcome = 'already_running';
    const reply = await rescan(app, 'u1');
    assert.equal(reply.statusCode, 202, reply.body);
    assert.deepEqual(reply.json(), { upload_id: 'u1', rescan: 'already_running' });
    assert.deepEqual(lifecycle.rescans, ['u1']);
  });
});
