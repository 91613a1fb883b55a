// A database that cannot be used right now (busy, full, read-only, failing) is a 503 with the
// cause, never a masked 500; and the connection waits for a lock before it reports busy.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import Sqlite from 'better-sqlite3';
import { buildApp } from '../../src/api/app.js';
import { UploadService } from '../../src/service/upload-service.js';
import { openDatabase } from '../../src/store/sqlite/connection.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { asDatabaseUnavailable, databaseUnavailableCause } from '../../src/store/sqlite/unavailable.js';
import type { Store } from '../../src/store/store.js';
import { FakeAuditor } from '../support/fake-auditor.js';
import { RecordingLifecycle } from '../support/recording-lifecycle.js';

type SqliteError = InstanceType<typeof Sqlite.SqliteError>;

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'db-unavailable-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A real SQLITE_BUSY: a second connection writes while the first holds the write lock. */
async function realBusyError(t: TestContext): Promise<SqliteError> {
  const file = path.join(await tempDir(t), 'busy.db');
  const holder = new Sqlite(file);
  const other = new Sqlite(file, { timeout: 0 });
  try {
    holder.exec('CREATE TABLE t (x); BEGIN IMMEDIATE; INSERT INTO t VALUES (1)');
    try {
      other.exec('INSERT INTO t VALUES (2)');
    } catch (error) {
      return error as SqliteError;
    }
    throw new Error('no SQLITE_BUSY');
  } finally {
    other.close();
    holder.close();
  }
}

/** A real SQLITE_READONLY: a write on a connection opened read-only. */
async function realReadOnlyError(t: TestContext): Promise<SqliteError> {
  const file = path.join(await tempDir(t), 'ro.db');
  new Sqlite(file).exec('CREATE TABLE t (x)').close();
  const readOnly = new Sqlite(file, { readonly: true });
  try {
    readOnly.exec('INSERT INTO t VALUES (1)');
    throw new Error('no SQLITE_READONLY');
  } catch (error) {
    return error as SqliteError;
  } finally {
    readOnly.close();
  }
}

test('the service connection waits 5 s for a lock before reporting SQLITE_BUSY', async (t) => {
  const db = openDatabase(path.join(await tempDir(t), 'state.db'));
  t.after(() => db.close());
  assert.equal(db.pragma('busy_timeout', { simple: true }), 5000);
  assert.equal(db.pragma('synchronous', { simple: true }), 1, 'NORMAL between synced commits');
});

test('busy, full, read-only and failing databases are told apart from other errors', async (t) => {
  const busy = await realBusyError(t);
  assert.equal(busy.code, 'SQLITE_BUSY');
  assert.equal(databaseUnavailableCause(busy), 'it is busy: another connection holds its lock (SQLITE_BUSY)');
  const readOnly = await realReadOnlyError(t);
  assert.match(
    databaseUnavailableCause(readOnly) ?? '',
    /^its file or disk is read-only \(SQLITE_READONLY\)$/,
  );
  const cases: Array<[string, RegExp | undefined]> = [
    ['SQLITE_FULL', /^the disk that holds it is full \(SQLITE_FULL\)$/],
    ['SQLITE_IOERR_WRITE', /input\/output error \(SQLITE_IOERR_WRITE\)$/],
    ['SQLITE_IOERR', /input\/output error \(SQLITE_IOERR\)$/],
    ['SQLITE_READONLY_DBMOVED', /moved or deleted .* restart the service \(SQLITE_READONLY_DBMOVED\)$/],
    ['SQLITE_BUSY_SNAPSHOT', /busy/],
    ['SQLITE_CANTOPEN_ISDIR', /cannot be opened/],
    ['SQLITE_CONSTRAINT_PRIMARYKEY', undefined],
    ['SQLITE_CORRUPT', undefined],
    ['SQLITE_FULLNESS', undefined],
  ];
  for (const [code, expected] of cases) {
    const cause = databaseUnavailableCause(new Sqlite.SqliteError('driver text', code));
    if (expected === undefined) assert.equal(cause, undefined, code);
    else assert.match(cause ?? '', expected, code);
  }
  // Only the driver's errors: a code on another error means nothing here.
  assert.equal(databaseUnavailableCause(Object.assign(new Error('x'), { code: 'SQLITE_FULL' })), undefined);
});

test('the API answers a busy or read-only database with a 503 database_unavailable, not a 500', async (t) => {
  const dir = await tempDir(t);
  const real = openSqliteStore(path.join(dir, 'state.db'));
  let failure: Error | undefined;
  // The real store, whose writes and reads throw `failure` while it is set.
  const store = new Proxy(real, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (failure && property !== 'close') return Promise.reject(failure);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  }) as Store;
  const service = new UploadService({
    store,
    lifecycle: new RecordingLifecycle(),
    auditor: new FakeAuditor(),
  });
  const app = await buildApp({ service, logger: false, version: '0.0.0' });
  t.after(async () => {
    await app.close();
    await real.close();
  });
  const create = () =>
    app.inject({
      method: 'POST',
      url: '/uploads',
      payload: { source_folder: dir, destination_bucket: 'a-bucket', upload_id: 'one' },
    });

  // Injected as the store throws them, wrapped in DatabaseUnavailableError.
  failure = asDatabaseUnavailable(await realBusyError(t)) as Error;
  for (const response of [await create(), await app.inject({ method: 'GET', url: '/uploads' })]) {
    assert.equal(response.statusCode, 503, response.body);
    assert.match(String(response.headers['content-type']), /^application\/json/);
    assert.deepEqual(response.json(), {
      error: 'database_unavailable',
      message:
        'The database cannot be used right now: it is busy: another connection holds its lock (SQLITE_BUSY). Nothing was changed; try again once it is fixed.',
    });
  }
  failure = asDatabaseUnavailable(await realReadOnlyError(t)) as Error;
  const readOnly = await create();
  assert.equal(readOnly.statusCode, 503);
  assert.match(readOnly.json<{ message: string }>().message, /read-only \(SQLITE_READONLY\)/);
  // Any other driver error stays a masked 500.
  failure = new Sqlite.SqliteError('database disk image is malformed', 'SQLITE_CORRUPT');
  const corrupt = await create();
  assert.equal(corrupt.statusCode, 500);
  assert.doesNotMatch(corrupt.body, /malformed/);

  failure = undefined;
  assert.equal((await create()).statusCode, 201, 'the same request succeeds once the database answers');
});
