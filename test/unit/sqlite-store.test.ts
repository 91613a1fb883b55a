import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Sqlite from 'better-sqlite3';
import { openStore } from '../../src/store/open-store.js';
import { openDatabase } from '../../src/store/sqlite/connection.js';
import { MIGRATIONS } from '../../src/store/sqlite/migrations.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import {
  T0,
  activeRequestWith,
  allTasks,
  keyFor,
  multipartOf,
  newRequest,
  observed,
  readyAt,
  runRandomOperations,
} from './store-fixtures.js';
import { describeStoreContract } from './store-contract.js';

function tempFolder(): string {
  return mkdtempSync(path.join(tmpdir(), 'sqlite-store-'));
}

describeStoreContract('sqlite', async () => {
  const folder = tempFolder();
  const store = openSqliteStore(path.join(folder, 'store.db'));
  return {
    store,
    async cleanup() {
      await store.close();
      rmSync(folder, { recursive: true, force: true });
    },
  };
});

describe('SqliteStore', () => {
  let folder: string;
  let file: string;
  let store: SqliteStore;
  /** A second connection to the same file, to look at what the store wrote. */
  let inspector: Sqlite.Database | undefined;

  beforeEach(() => {
    folder = tempFolder();
    file = path.join(folder, 'nested', 'deeper', 'store.db');
    store = openSqliteStore(file);
  });
  afterEach(async () => {
    inspector?.close();
    inspector = undefined;
    await store.close();
    rmSync(folder, { recursive: true, force: true });
  });

  function inspect(): Sqlite.Database {
    inspector ??= new Sqlite(file, { readonly: true });
    return inspector;
  }

  it('creates its folder, uses WAL and is at the latest schema version', () => {
    assert.ok(existsSync(file));
    assert.equal(inspect().pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(inspect().pragma('user_version', { simple: true }), MIGRATIONS.length);
  });

  it('opens its connection with synchronous NORMAL, foreign keys and a busy timeout', () => {
    // These belong to the connection, so they are read on one that openDatabase made.
    const db = openDatabase(file);
    try {
      assert.equal(db.pragma('synchronous', { simple: true }), 1);
      assert.equal(db.pragma('foreign_keys', { simple: true }), 1);
      assert.equal(db.pragma('busy_timeout', { simple: true }), 5000);
    } finally {
      db.close();
    }
  });

  it('keeps everything across a restart, and migrating again changes nothing', async () => {
    const tasks = await activeRequestWith(store, 'r1', observed(5));
    const [done, failed, running] = tasks;
    assert.ok(done && failed && running);
    await store.claimReadyTasks(T0, 3);
    await store.completeTask(done.taskId, { etag: '"d"', validation: 'etag' }, T0 + 1);
    await store.failTask(failed.taskId, 'boom', T0 + 60, T0 + 1);
    await store.saveMultipart(multipartOf(running.taskId), T0);
    await store.recordPart(running.taskId, { partNumber: 1, etag: '"p1"', size: 5 });
    await store.setRequestError('r1', 'slow disk', T0 + 2);
    const before = {
      request: await store.getRequest('r1'),
      tasks: await allTasks(store, 'r1'),
      totals: await store.requestTotals('r1'),
      multipart: await store.getMultipart(running.taskId),
    };
    const schema = () => inspect().prepare('SELECT type, name, sql FROM sqlite_schema ORDER BY name').all();
    const schemaBefore = schema();
    inspector?.close();
    inspector = undefined;

    for (let restart = 0; restart < 2; restart += 1) {
      await store.close();
      store = openSqliteStore(file);
      assert.deepEqual(
        {
          request: await store.getRequest('r1'),
          tasks: await allTasks(store, 'r1'),
          totals: await store.requestTotals('r1'),
          multipart: await store.getMultipart(running.taskId),
        },
        before,
      );
    }
    assert.deepEqual(schema(), schemaBefore);
    assert.equal(inspect().pragma('user_version', { simple: true }), MIGRATIONS.length);
  });

  it('refuses a database written by a newer schema', async () => {
    await store.close();
    const db = new Sqlite(file);
    db.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    db.close();
    const newer = `schema version ${MIGRATIONS.length + 1}, but this build knows only up to ${MIGRATIONS.length}`;
    assert.throws(
      () => openSqliteStore(file),
      (error: Error) => error.message.includes(newer),
    );
    store = openSqliteStore(path.join(folder, 'fresh.db'));
  });

  it('keeps request_task_counts equal to a GROUP BY over file_tasks', async () => {
    const recount = inspect().prepare(`
      SELECT upload_id, status, COUNT(*) AS files, SUM(size) AS bytes_total, SUM(bytes_uploaded) AS bytes_uploaded
      FROM file_tasks GROUP BY upload_id, status ORDER BY upload_id, status`);
    const kept = inspect().prepare(`
      SELECT upload_id, status, files, bytes_total, bytes_uploaded
      FROM request_task_counts WHERE files <> 0 OR bytes_total <> 0 OR bytes_uploaded <> 0
      ORDER BY upload_id, status`);
    await runRandomOperations(store, ['r1', 'r2', 'r3'], 7, 500, async (step) => {
      assert.deepEqual(kept.all(), recount.all(), `after step ${step}`);
    });
  });

  it('never hands a task to two connections claiming in turn', async () => {
    await activeRequestWith(store, 'r1', observed(300));
    const second = openSqliteStore(file);
    try {
      const claimed: number[] = [];
      for (let round = 0; round < 40; round += 1) {
        for (const claimer of [store, second]) {
          claimed.push(...(await claimer.claimReadyTasks(T0, 4)).map((t) => t.taskId));
        }
      }
      assert.equal(claimed.length, 300);
      assert.equal(new Set(claimed).size, 300);
    } finally {
      await second.close();
    }
  });

  it('answers ping until closed, and closes twice without error', async () => {
    assert.equal(await store.ping(), true);
    await store.close();
    assert.equal(await store.ping(), false);
    await store.close();
  });

  it('records 100,000 files in batches of 1,000, then again unchanged', async (t) => {
    await store.createRequest(newRequest('big'), T0);
    const batches = Array.from({ length: 100 }, (_, i) => observed(1000, 100, i * 1000));
    const record = async () => {
      const started = performance.now();
      let changed = 0;
      for (const batch of batches)
        changed += await store.recordObservedFiles('big', batch, keyFor, readyAt(T0), T0);
      return { changed, ms: Math.round(performance.now() - started) };
    };
    const first = await record();
    const again = await record();
    t.diagnostic(`100,000 new files: ${first.ms} ms; the same files unchanged: ${again.ms} ms`);
    assert.equal(first.changed, 100_000);
    assert.equal(again.changed, 0);
    assert.deepEqual((await store.requestTotals('big')).files, {
      pending: 100_000,
      in_progress: 0,
      completed: 0,
      failed: 0,
      total: 100_000,
    });
  });
});

describe('openStore', () => {
  it('opens SQLite for a sqlite: URL', async () => {
    const folder = tempFolder();
    const store = openStore('sqlite:./data/uploads.db', path.join(folder, 'uploads.db'));
    try {
      assert.equal(await store.ping(), true);
      assert.ok(existsSync(path.join(folder, 'uploads.db')));
    } finally {
      await store.close();
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it('names the scheme it does not support', () => {
    assert.throws(
      () => openStore('postgres://db/uploads', '/unused.db'),
      /the scheme 'postgres:' is not implemented/,
    );
    assert.throws(() => openStore('uploads.db', '/unused.db'), /has no scheme/);
  });
});
