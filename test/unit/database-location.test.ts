// The database is where it says it is: a file removed or replaced under the open store is seen
// within seconds, and from then on the store refuses everything (the API answers 503); the lock on
// the database's path holds even once the file is gone.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rename, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { buildApp } from '../../src/api/app.js';
import { DatabaseLostError, DatabaseUnavailableError } from '../../src/domain/errors.js';
import type { NewUpload } from '../../src/domain/model.js';
import { Dispatcher } from '../../src/engine/dispatcher.js';
import { UploadService } from '../../src/service/upload-service.js';
import { createLogger } from '../../src/logger.js';
import { openStore } from '../../src/store/open-store.js';
import type { DatabaseLoss } from '../../src/store/sqlite/location-check.js';
import { lockDatabasePath } from '../../src/store/sqlite/path-lock.js';
import { openSqliteStore, type SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { DatabaseInUseError } from '../../src/store/store.js';
import { FakeAuditor } from '../support/fake-auditor.js';
import { waitFor } from '../support/poll.js';
import { RecordingLifecycle } from '../support/recording-lifecycle.js';

const T0 = 1_700_000_000_000;

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'db-location-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function request(uploadId: string): NewUpload {
  return { uploadId, sourceFolder: '/data', destinationBucket: 'b', destinationPrefix: '', pattern: '**' };
}

/** A store on dir/state.db holding one upload, and the losses it reported. */
async function storeWithRequest(
  t: TestContext,
  dir: string,
): Promise<{ store: SqliteStore; file: string; losses: DatabaseLoss[] }> {
  const file = path.join(dir, 'state.db');
  const losses: DatabaseLoss[] = [];
  const store = openSqliteStore(file, { lost: (loss) => losses.push(loss) });
  t.after(() => store.close());
  await store.createUpload(request('before'), T0);
  assert.equal(await store.health(), 'reachable');
  return { store, file, losses };
}

/** Waits (up to 5 s, as users are promised) until the store reports `health`. */
async function waitForHealth(store: SqliteStore, health: string): Promise<void> {
  await waitFor(async () => (await store.health()) === health, {
    timeoutMs: 5000,
    message: `the store reports '${health}'`,
  });
}

async function assertRefused(call: Promise<unknown>, reason: RegExp): Promise<void> {
  await assert.rejects(call, (error: unknown) => {
    assert.ok(error instanceof DatabaseLostError, String(error));
    assert.ok(error instanceof DatabaseUnavailableError);
    assert.match(error.reason, reason);
    return true;
  });
}

test('a removed database file and log are seen within 5 s, and every call is refused after', async (t) => {
  const { store, file, losses } = await storeWithRequest(t, await tempDir(t));
  await rm(file);
  await rm(`${file}-wal`);
  await waitForHealth(store, 'missing');
  assert.equal(losses.length, 1);
  assert.deepEqual({ kind: losses[0]?.kind, file: losses[0]?.file }, { kind: 'missing', file });
  const reason = new RegExp(
    `^its file ${file} was removed while the service ran; nothing more is written to it.*stop the service, put the file back from a backup or remove what is left of it \\(${file}-wal\\), and start it again$`,
  );
  assert.match(losses[0]?.reason ?? '', reason);
  await assertRefused(store.getUpload('before'), reason);
  await assertRefused(store.createUpload(request('after'), T0), reason);
  await assertRefused(store.claimReadyTasks(T0, 10), reason);
  assert.equal(existsSync(file), false, 'nothing re-creates the file');
  assert.equal(losses.length, 1, 'the loss is reported once');
});

test('a database file replaced by another one is seen the same way', async (t) => {
  const dir = await tempDir(t);
  const { store, file, losses } = await storeWithRequest(t, dir);
  const other = openSqliteStore(path.join(dir, 'other.db'));
  await other.close();
  await rename(path.join(dir, 'other.db'), file);
  await waitForHealth(store, 'replaced');
  assert.equal(losses[0]?.kind, 'replaced');
  await assertRefused(
    store.listUploads(['pending']),
    /its file .* was replaced by another file while the service ran/,
  );
});

test('a removed log alone is seen, and a graceful close keeps what it held', async (t) => {
  const dir = await tempDir(t);
  const { store, file, losses } = await storeWithRequest(t, dir);
  await rm(`${file}-wal`);
  await waitForHealth(store, 'missing');
  assert.equal(losses[0]?.file, `${file}-wal`);
  const reason =
    /^its write-ahead log .*state\.db-wal was removed while the service ran; nothing more is written: stop the service gracefully \(SIGTERM, not SIGKILL\), which copies what the log held into .*state\.db, and start it again$/;
  assert.match(losses[0]?.reason ?? '', reason);
  await assertRefused(store.getUpload('before'), reason);
  // What the message promises: closing checkpoints the log, still open, into the intact file.
  await store.close();
  const reopened = openSqliteStore(file);
  t.after(() => reopened.close());
  assert.equal((await reopened.getUpload('before'))?.uploadId, 'before');
});

test('an upload created after the file was removed is refused at once, not only after the next check', async (t) => {
  const { store, file, losses } = await storeWithRequest(t, await tempDir(t));
  await rm(file);
  // The background check looks once a second; creating an upload looks again after its commit.
  await assertRefused(store.createUpload(request('late'), T0), /was removed while the service ran/);
  assert.equal(losses.length, 1);
  assert.equal(await store.health(), 'missing');
});

test('the API answers 503: GET / says missing, writes and reads are database_unavailable', async (t) => {
  const { store, file } = await storeWithRequest(t, await tempDir(t));
  const service = new UploadService({
    store,
    lifecycle: new RecordingLifecycle(),
    auditor: new FakeAuditor(),
  });
  const app = await buildApp({ service, logger: false, version: '0.0.0' });
  t.after(() => app.close());
  await rm(file);
  await rm(`${file}-wal`);
  await waitForHealth(store, 'missing');
  const health = await app.inject({ method: 'GET', url: '/' });
  assert.equal(health.statusCode, 503);
  const { status, version, database } = health.json<Record<string, unknown>>();
  assert.deepEqual(
    { status, version, database },
    { status: 'degraded', version: '0.0.0', database: 'missing' },
  );
  for (const response of [
    await app.inject({
      method: 'POST',
      url: '/uploads',
      payload: { source_folder: path.dirname(file), destination_bucket: 'a-bucket' },
    }),
    await app.inject({ method: 'GET', url: '/uploads/before' }),
  ]) {
    assert.equal(response.statusCode, 503, response.body);
    const body = response.json<{ error: string; message: string }>();
    assert.equal(body.error, 'database_unavailable');
    assert.match(
      body.message,
      /^The database cannot be used right now: its file .* was removed while the service ran;/,
    );
  }
});

test('the dispatcher logs a lost database once, not at every pass', async (t) => {
  const { store, file } = await storeWithRequest(t, await tempDir(t));
  const lines: Array<{ level: number; msg: string }> = [];
  const logger = createLogger('info', {
    destination: { write: (line: string) => void lines.push(JSON.parse(line) as (typeof lines)[0]) },
  });
  // Each pass starts with requeueDueFailedTasks, which throws: it counts the passes.
  let passes = 0;
  const counted = new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'requeueDueFailedTasks') passes++;
      return Reflect.get(target, property, receiver) as unknown;
    },
  });
  await rm(file);
  await waitForHealth(store, 'missing');
  const dispatcher = new Dispatcher({
    store: counted,
    maxConcurrentFiles: 2,
    runTask: async () => {},
    logger,
  });
  dispatcher.start();
  t.after(() => dispatcher.stop());
  await waitFor(() => passes >= 3, { timeoutMs: 10_000, message: 'three passes of the dispatcher' });
  const errors = lines.filter((line) => line.level >= 50);
  assert.equal(errors.length, 1, JSON.stringify(lines));
  assert.match(
    errors[0]?.msg ?? '',
    /could not claim tasks; retrying every second, logged again only if the error changes/,
  );
});

test('the path stays locked for its holder after the file is deleted, and is free once released', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'state.db');
  const first = await openStore(`sqlite:${file}`, file);
  await rm(file);
  await rm(`${file}-wal`);
  await assert.rejects(openStore(`sqlite:${file}`, file), (error: unknown) => {
    assert.ok(error instanceof DatabaseInUseError, String(error));
    assert.match(error.message, /is in use by another running instance of the service/);
    return true;
  });
  assert.equal(existsSync(file), false, 'the refused instance does not create the file');
  // The same file through a symbolic link to its folder is the same path.
  const link = path.join(await tempDir(t), 'link');
  await symlink(dir, link);
  await assert.rejects(lockDatabasePath(path.join(link, 'state.db')), DatabaseInUseError);
  await first.close();
  const lock = await lockDatabasePath(file);
  await lock.release();
});
