import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Sqlite from 'better-sqlite3';
import type { Database } from 'better-sqlite3';
import { openStore } from '../../src/store/open-store.js';
import { ARRIVAL_SCANS } from '../../src/store/sqlite/arrivals.js';
import { openDatabase } from '../../src/store/sqlite/connection.js';
import { MIGRATIONS } from '../../src/store/sqlite/migrations.js';
import { QUEUE_SCANS } from '../../src/store/sqlite/queue.js';
import { SqliteStore, openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { DatabaseInUseError } from '../../src/store/store.js';
import {
  T0,
  activeRequestWith,
  allTasks,
  keyFor,
  multipartOf,
  newUpload,
  observed,
  readyAt,
  runRandomOperations,
  taskOf,
  uploadOf,
} from '../support/store-fixtures.js';
import { describeStoreContract } from '../support/store-contract.js';

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

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * Another instance of the service, as far as the database is concerned: a child process that
 * opens the store at `file`, creates the upload `uploadId` in it, and holds it open until killed.
 */
async function startHolder(file: string, uploadId: string): Promise<ChildProcess> {
  const program = `
    const { openSqliteStore } = await import('./src/store/sqlite/sqlite-store.ts');
    const store = openSqliteStore(process.argv[1]);
    await store.createUpload({ uploadId: process.argv[2], sourceFolder: '/data', destinationBucket: 'b',
                                destinationPrefix: '', pattern: '**' }, Date.now());
    process.stdout.write('READY\\n');
    setInterval(() => {}, 60_000);`;
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', program, file, uploadId],
    {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const stderr: string[] = [];
  child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the holder did not say READY within 15 s')), 15_000);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the holder exited with code ${code} before READY`));
      });
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (line !== 'READY') return;
        clearTimeout(timer);
        resolve();
      });
    });
  } catch (error) {
    child.kill('SIGKILL');
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`${reason}; its stderr: ${stderr.join('')}`, { cause: error });
  }
  return child;
}

async function killHard(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

describe('SqliteStore', () => {
  let folder: string;
  let file: string;
  /** The store's own connection, to look at what it wrote: no other connection may open the file. */
  let db: Database;
  let store: SqliteStore;

  function open(at: string): void {
    db = openDatabase(at);
    store = new SqliteStore(db);
  }

  beforeEach(() => {
    folder = tempFolder();
    file = path.join(folder, 'nested', 'deeper', 'store.db');
    open(file);
  });
  afterEach(async () => {
    await store.close();
    rmSync(folder, { recursive: true, force: true });
  });

  it('creates its folder, uses WAL with its index in memory, and is at the latest schema version', () => {
    assert.ok(existsSync(file));
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(db.pragma('locking_mode', { simple: true }), 'exclusive');
    // EXCLUSIVE was set before WAL was first used: the WAL index lives in this process's heap.
    assert.equal(existsSync(`${file}-shm`), false);
    assert.equal(db.pragma('user_version', { simple: true }), MIGRATIONS.length);
  });

  it('opens its connection with synchronous NORMAL, foreign keys and a busy timeout', () => {
    assert.equal(db.pragma('synchronous', { simple: true }), 1);
    assert.equal(db.pragma('foreign_keys', { simple: true }), 1);
    assert.equal(db.pragma('busy_timeout', { simple: true }), 5000);
  });

  it('keeps everything across a restart, and migrating again changes nothing', async () => {
    const tasks = await activeRequestWith(store, 'r1', observed(5));
    const [done, failed, running] = tasks;
    assert.ok(done && failed && running);
    await store.claimReadyTasks(T0, 3);
    await store.completeTask(done.taskId, uploadOf(done, '"d"'), T0 + 1);
    await store.failTask(failed.taskId, { message: 'boom', kind: 'transient', retryAt: T0 + 60 }, T0 + 1);
    await store.saveMultipart(multipartOf(running.taskId), T0);
    await store.recordPart(running.taskId, { partNumber: 1, etag: '"p1"', size: 5 });
    await store.setUploadError('r1', 'slow disk', T0 + 2);
    await activeRequestWith(store, 'r2', observed(2));
    await store.cancelUpload('r2', T0 + 3);
    const snapshot = async () => ({
      requests: await store.listUploads(['pending', 'active', 'cancelled']),
      // Each start is a new instance, which holds the tasks in progress.
      tasks: [...(await allTasks(store, 'r1')), ...(await allTasks(store, 'r2'))].map((task) => ({
        ...task,
        claimedBy: task.claimedBy === store.instanceId ? 'this instance' : task.claimedBy,
      })),
      totals: [await store.uploadTotals('r1'), await store.uploadTotals('r2')],
      multipart: await store.getMultipart(running.taskId),
    });
    const before = await snapshot();
    const schema = () => db.prepare('SELECT type, name, sql FROM sqlite_schema ORDER BY name').all();
    const schemaBefore = schema();

    for (let restart = 0; restart < 2; restart += 1) {
      await store.close();
      open(file);
      assert.deepEqual(await snapshot(), before);
    }
    assert.deepEqual(schema(), schemaBefore);
    assert.equal(db.pragma('user_version', { simple: true }), MIGRATIONS.length);
  });

  it('refuses a database written by a newer schema', async () => {
    await store.close();
    const raw = new Sqlite(file);
    raw.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    raw.close();
    const newer = `schema version ${MIGRATIONS.length + 1}, but this build knows only up to ${MIGRATIONS.length}`;
    assert.throws(
      () => openSqliteStore(file),
      (error: Error) => error.message.includes(newer),
    );
    open(path.join(folder, 'fresh.db'));
  });

  it('upgrades a database written before inode numbers and ctimes without uploading any file again', async () => {
    await store.close();
    const older = path.join(folder, 'older.db');
    const raw = new Sqlite(older);
    // The schema as it was before file versions had an inode number and a ctime (migrations 1-2).
    for (const migration of MIGRATIONS.slice(0, 2)) raw.exec(migration);
    raw.pragma('user_version = 2');
    raw.exec(`
      INSERT INTO upload_requests VALUES ('r1', '/src', 'b', '', '**', 'active', ${T0}, ${T0}, NULL);
      INSERT INTO file_tasks (upload_id, relative_path, object_key, size, mtime_ms, status, bytes_uploaded,
                              attempts, ready_at, observed_at, etag, validation, sha256, uploaded_size,
                              created_at, updated_at, completed_at)
      VALUES ('r1', 'a.txt', 'a.txt', 100, 1000.5, 'completed', 100, 1, ${T0}, ${T0}, 'e', 'etag',
              '${'ab'.repeat(32)}', 100, ${T0}, ${T0}, ${T0});`);
    raw.close();
    open(older);
    const [before] = await allTasks(store, 'r1');
    assert.ok(before);
    assert.deepEqual([before.ino, before.ctimeMs, before.hashFirst], [null, null, false]);
    const seen = [
      { relativePath: 'a.txt', size: 100, mtimeMs: 1000.5, ino: 77, ctimeMs: 1500, observedAt: T0 + 9 },
    ];
    assert.equal(await store.recordObservedFiles('r1', seen, keyFor, readyAt(T0 + 9), T0 + 9), 0);
    assert.deepEqual(await taskOf(store, before.taskId), { ...before, ino: 77, ctimeMs: 1500 });
  });

  it('upgrades a database whose tables still had the old names: its upload is listed, counted and claimed from', async () => {
    await store.close();
    const older = path.join(folder, 'old-words.db');
    const raw = new Sqlite(older);
    // Up to the file identity migration: the uploads table was upload_requests, its counts request_task_counts.
    const before = MIGRATIONS.findIndex((migration) => migration.includes('RENAME TO uploads'));
    for (const migration of MIGRATIONS.slice(0, before)) raw.exec(migration);
    raw.pragma(`user_version = ${before}`);
    raw.exec(`
      INSERT INTO upload_requests (upload_id, source_folder, destination_bucket, destination_prefix, pattern,
                                   status, created_at, updated_at)
      VALUES ('r1', '/src', 'b', '', '**', 'active', ${T0}, ${T0});
      INSERT INTO file_tasks (upload_id, relative_path, object_key, size, mtime_ms, status, bytes_uploaded,
                              attempts, ready_at, observed_at, created_at, updated_at)
      VALUES ('r1', 'a.txt', 'a.txt', 100, 1000.5, 'pending', 0, 0, ${T0}, ${T0}, ${T0}, ${T0});`);
    raw.close();
    open(older);
    assert.deepEqual(
      (await store.listUploads(['active'])).map((upload) => upload.uploadId),
      ['r1'],
    );
    assert.deepEqual((await store.uploadTotals('r1')).files, {
      pending: 1,
      in_progress: 0,
      completed: 0,
      failed: 0,
      total: 1,
    });
    const [claimed] = await store.claimReadyTasks(T0 + 1, 1);
    assert.equal(claimed?.relativePath, 'a.txt');
    // The counts kept by triggers follow the renamed table.
    const after = await store.uploadTotals('r1');
    assert.deepEqual([after.files.in_progress, after.files.pending, after.bytes.total], [1, 0, 100]);
    const tables = db
      .prepare<[], { name: string }>(`SELECT name FROM sqlite_schema WHERE name LIKE '%request%'`)
      .all();
    assert.deepEqual(tables, []);
  });

  it("upgrades a database with completed files: each upload's last completion is taken from its files", async () => {
    await store.close();
    const older = path.join(folder, 'before-last-completed.db');
    const raw = new Sqlite(older);
    const before = MIGRATIONS.findIndex((migration) => migration.includes('last_completed_at'));
    for (const migration of MIGRATIONS.slice(0, before)) raw.exec(migration);
    raw.pragma(`user_version = ${before}`);
    raw.exec(`
      INSERT INTO uploads (upload_id, source_folder, destination_bucket, destination_prefix, pattern,
                           status, created_at, updated_at)
      VALUES ('done', '/src', 'b', '', '**', 'active', ${T0}, ${T0}),
             ('none', '/src2', 'b', '', '**', 'active', ${T0}, ${T0});
      INSERT INTO file_tasks (upload_id, relative_path, object_key, size, mtime_ms, status, bytes_uploaded,
                              attempts, ready_at, observed_at, created_at, updated_at, completed_at)
      VALUES ('done', 'a.txt', 'a.txt', 1, 1, 'completed', 1, 1, NULL, ${T0}, ${T0}, ${T0}, ${T0 + 7}),
             ('done', 'b.txt', 'b.txt', 1, 1, 'completed', 1, 1, NULL, ${T0}, ${T0}, ${T0}, ${T0 + 3}),
             ('none', 'c.txt', 'c.txt', 1, 1, 'pending', 0, 0, ${T0}, ${T0}, ${T0}, ${T0}, NULL);`);
    raw.close();
    open(older);
    assert.equal((await store.getUpload('done'))?.lastCompletedAt, T0 + 7);
    assert.equal((await store.getUpload('none'))?.lastCompletedAt, null);
  });

  it('upgrades a database from before one-shot uploads: every upload, task and count is kept, and watched', async () => {
    await store.close();
    const older = path.join(folder, 'before-one-shot.db');
    const raw = new Sqlite(older);
    raw.pragma('foreign_keys = ON');
    const before = MIGRATIONS.findIndex((migration) => migration.includes('uploads_new'));
    for (const migration of MIGRATIONS.slice(0, before)) raw.exec(migration);
    raw.pragma(`user_version = ${before}`);
    raw.exec(`
      INSERT INTO uploads (upload_id, source_folder, destination_bucket, destination_prefix, pattern,
                           status, created_at, updated_at, last_completed_at)
      VALUES ('live', '/src', 'b', '', '**', 'active', ${T0}, ${T0}, ${T0 + 7}),
             ('gone', '/src2', 'b', 'p/', '*.txt', 'cancelled', ${T0}, ${T0 + 1}, NULL);
      INSERT INTO file_tasks (upload_id, relative_path, object_key, size, mtime_ms, status, bytes_uploaded,
                              attempts, ready_at, observed_at, created_at, updated_at, completed_at)
      VALUES ('live', 'a.txt', 'a.txt', 10, 1, 'completed', 10, 1, ${T0}, ${T0}, ${T0}, ${T0}, ${T0 + 7}),
             ('live', 'b.txt', 'b.txt', 5, 1, 'pending', 0, 0, ${T0}, ${T0}, ${T0}, ${T0}, NULL),
             ('gone', 'c.txt', 'p/c.txt', 1, 1, 'pending', 0, 0, NULL, ${T0}, ${T0}, ${T0}, NULL);`);
    raw.close();
    open(older);
    const live = await store.getUpload('live');
    assert.deepEqual(
      [live?.status, live?.watch, live?.completedAt, live?.lastCompletedAt],
      ['active', true, null, T0 + 7],
    );
    assert.deepEqual(
      (await store.listUploads(['cancelled'])).map((upload) => upload.uploadId),
      ['gone'],
    );
    assert.deepEqual((await store.uploadTotals('live')).files, {
      pending: 1,
      in_progress: 0,
      completed: 1,
      failed: 0,
      total: 2,
    });
    // The counts' triggers and the queue's index of active uploads were made again.
    const [claimed] = await store.claimReadyTasks(T0 + 1, 5);
    assert.equal(claimed?.relativePath, 'b.txt');
    assert.equal((await store.uploadTotals('live')).files.in_progress, 1);
    assert.equal(db.pragma('foreign_keys', { simple: true }), 1, 'foreign keys are on again');
    assert.deepEqual(db.pragma('foreign_key_check'), []);
    // The new status is accepted, and only with its time.
    await store.createUpload({ ...newUpload('once'), watch: false }, T0);
    assert.throws(() => db.exec(`UPDATE uploads SET status = 'completed' WHERE upload_id = 'once'`), /CHECK/);
  });

  it('keeps upload_task_counts equal to a GROUP BY over file_tasks', async () => {
    const recount = db.prepare(`
      SELECT upload_id, status, COUNT(*) AS files, SUM(size) AS bytes_total, SUM(bytes_uploaded) AS bytes_uploaded
      FROM file_tasks GROUP BY upload_id, status ORDER BY upload_id, status`);
    const kept = db.prepare(`
      SELECT upload_id, status, files, bytes_total, bytes_uploaded
      FROM upload_task_counts WHERE files <> 0 OR bytes_total <> 0 OR bytes_uploaded <> 0
      ORDER BY upload_id, status`);
    let requests = 0;
    await runRandomOperations(store, ['r1', 'r2', 'r3'], 7, 500, async (step, uploadIds) => {
      assert.deepEqual(kept.all(), recount.all(), `after step ${step}`);
      requests = uploadIds.length;
    });
    assert.ok(requests > 3, 'the sequence should cancel some requests');
  });

  it('is held by one process at a time, and a killed holder leaves it free at once', async () => {
    const shared = path.join(folder, 'shared.db');
    const holder = await startHolder(shared, 'from-holder');
    try {
      const refusedAt = performance.now();
      assert.throws(
        () => openSqliteStore(shared),
        (error: unknown) => {
          assert.ok(error instanceof DatabaseInUseError, String(error));
          assert.equal(error.location, shared);
          assert.match(error.message, /in use by another running instance/);
          return true;
        },
      );
      assert.ok(performance.now() - refusedAt < 1000, 'the refusal must not wait on a busy timeout');
    } finally {
      await killHard(holder);
    }
    const started = performance.now();
    const successor = openSqliteStore(shared);
    try {
      assert.ok(performance.now() - started < 1000, 'opening must not wait for the dead holder');
      assert.equal((await successor.getUpload('from-holder'))?.uploadId, 'from-holder');
    } finally {
      await successor.close();
    }
  });

  it('is refused to a second open in the same process until the first closes', async () => {
    assert.throws(() => openSqliteStore(file), DatabaseInUseError);
    await store.close();
    open(file);
    assert.equal(await store.health(), 'reachable');
  });

  it('is reachable until closed, and closes twice without error', async () => {
    assert.equal(await store.health(), 'reachable');
    await store.close();
    assert.equal(await store.health(), 'unreachable');
    await store.close();
  });

  it('records 100,000 files in batches of 1,000, then again unchanged without writing a row', async (t) => {
    await store.createUpload(newUpload('big'), T0);
    const totalChanges = db.prepare<[], number>('SELECT total_changes()').pluck();
    const record = async (observedAt: number) => {
      const batches = Array.from({ length: 100 }, (_, i) => observed(1000, 100, i * 1000, observedAt));
      const writesBefore = totalChanges.get() ?? 0;
      const started = performance.now();
      let changed = 0;
      for (const batch of batches)
        changed += await store.recordObservedFiles('big', batch, keyFor, readyAt(T0), T0);
      const ms = Math.round(performance.now() - started);
      return { changed, ms, rowsWritten: (totalChanges.get() ?? 0) - writesBefore };
    };
    const first = await record(T0);
    const again = await record(T0 + 60_000);
    t.diagnostic(`100,000 new files: ${first.ms} ms; the same files unchanged: ${again.ms} ms`);
    assert.equal(first.changed, 100_000);
    assert.equal(again.changed, 0);
    assert.equal(again.rowsWritten, 0);
    assert.deepEqual((await store.uploadTotals('big')).files, {
      pending: 100_000,
      in_progress: 0,
      completed: 0,
      failed: 0,
      total: 100_000,
    });
  });

  it('claims and tells nextReadyAt past a cancelled backlog of 500,000 tasks at no cost', async (t) => {
    const backlog = 500_000;
    await store.createUpload(newUpload('backlog'), T0);
    await store.activateUpload('backlog', T0);
    // Written in one statement rather than through recordObservedFiles, to keep the test quick.
    db.prepare(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
       INSERT INTO file_tasks (upload_id, relative_path, object_key, size, mtime_ms, status, ready_at,
                               observed_at, created_at, updated_at)
       SELECT 'backlog', printf('f%06d', i), printf('k%06d', i), 1, 1, CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'pending' END,
              ?, ?, ?, ? FROM n`,
    ).run(backlog, T0, T0, T0, T0);
    let started = performance.now();
    assert.equal(await store.cancelUpload('backlog', T0 + 1), true);
    const cancelMs = Math.round(performance.now() - started);
    const live = await activeRequestWith(store, 'live', observed(50));
    await store.recordObservedFiles('live', observed(1, 100, 50), keyFor, readyAt(T0 + 10_000), T0);

    const timed = async (run: () => Promise<unknown>, calls: number) => {
      started = performance.now();
      for (let call = 0; call < calls; call += 1) await run();
      return (performance.now() - started) / calls;
    };
    const claimMs = await timed(
      async () => assert.equal((await store.claimReadyTasks(T0 + 5, 1)).length, 1),
      50,
    );
    const idleClaimMs = await timed(
      async () => assert.deepEqual(await store.claimReadyTasks(T0 + 5, 8), []),
      50,
    );
    const nextMs = await timed(async () => assert.equal(await store.nextReadyAt(), T0 + 10_000), 50);
    const requeueMs = await timed(async () => assert.equal(await store.requeueDueFailedTasks(T0 + 5), 0), 50);
    t.diagnostic(
      `cancelling ${backlog} tasks: ${cancelMs} ms; then per call: claim 1 of ${live.length} ready ` +
        `${claimMs.toFixed(3)} ms, claim with none ready ${idleClaimMs.toFixed(3)} ms, ` +
        `nextReadyAt ${nextMs.toFixed(3)} ms, requeueDueFailedTasks ${requeueMs.toFixed(3)} ms`,
    );
    // Walking the backlog took ~44 ms a call; skipping it takes microseconds.
    for (const ms of [claimMs, idleClaimMs, nextMs, requeueMs]) assert.ok(ms < 5, `${ms} ms per call`);
    const totals = await store.uploadTotals('backlog');
    assert.deepEqual(totals.files, {
      pending: backlog * 0.9,
      in_progress: 0,
      completed: 0,
      failed: backlog * 0.1,
      total: backlog,
    });
  });

  it('claims from 200,000 pending tasks of one upload, sharing with four others, in under a millisecond', async (t) => {
    const fill = db.prepare(
      `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < @count - 1)
       INSERT INTO file_tasks (upload_id, relative_path, object_key, size, mtime_ms, status, ready_at,
                               observed_at, created_at, updated_at)
       SELECT @uploadId, printf('f%06d', i), printf('k%06d', i), 1, 1, 'pending', @readyAt + i, @now, @now, @now
       FROM n`,
    );
    const request = async (uploadId: string, count: number, firstReadyAt: number) => {
      await store.createUpload(newUpload(uploadId), T0);
      await store.activateUpload(uploadId, T0);
      // Written in one statement rather than through recordObservedFiles, to keep the test quick.
      fill.run({ uploadId, count, readyAt: firstReadyAt, now: T0 });
    };
    await request('backlog', 200_000, T0);
    // Ready after every task of the backlog: a first-in, first-out queue would claim none of them.
    for (const uploadId of ['a', 'b', 'c', 'd']) await request(uploadId, 100, T0 + 300_000);
    const now = T0 + 400_000;
    const claims = 2_000;
    const claimedFrom = new Map<string, number>();
    let othersDoneAt: number | undefined;
    let cpuMicros = 0;
    for (let claim = 1; claim <= claims; claim += 1) {
      const cpuBefore = process.cpuUsage();
      const [task] = await store.claimReadyTasks(now, 1);
      const cpu = process.cpuUsage(cpuBefore);
      cpuMicros += cpu.user + cpu.system;
      assert.ok(task);
      claimedFrom.set(task.uploadId, (claimedFrom.get(task.uploadId) ?? 0) + 1);
      if (othersDoneAt === undefined && claimedFrom.size === 5 && claim - claimedFrom.get('backlog')! === 400)
        othersDoneAt = claim;
      await store.completeTask(task.taskId, uploadOf(task), now);
    }
    const msPerClaim = cpuMicros / 1000 / claims;
    t.diagnostic(
      `${claims} claims: ${Math.round(cpuMicros / 1000)} ms of CPU (${msPerClaim.toFixed(3)} ms each); ` +
        `the other requests' 400 tasks all claimed by claim ${othersDoneAt}`,
    );
    // One claim in five went to the backlog while the others had tasks: they were done by the 500th.
    assert.equal(othersDoneAt, 500);
    assert.equal(claimedFrom.get('backlog'), claims - 400);
    // About 0.1 ms on a quiet machine; the bound leaves room for a busy one.
    assert.ok(msPerClaim < 1, `${msPerClaim} ms of CPU per claim`);
  });

  it('walks an index, from a bound on ready_at, in every queue scan', () => {
    const planOf = (sql: string) =>
      db
        .prepare<Record<string, number | string>, { detail: string }>(`EXPLAIN QUERY PLAN ${sql}`)
        .all({
          ...(sql.includes('@now') && { now: T0 }),
          ...(sql.includes('@uploadId') && { uploadId: 'r1' }),
        })
        .map((row) => row.detail);
    const { claimContenders, claimHead, latestTurn, nextReadyAt, requeueDueFailed } = QUEUE_SCANS;
    // A range with a bound on ready_at starts after the NULLs (the cancelled uploads' tasks). The
    // claims and nextReadyAt read the row of the task they stop at, to see whether it is a marker:
    // a deferred seek, made only for a task the index's own columns let through.
    const requestQueue = 'USING INDEX file_tasks_by_upload_queue (upload_id=? AND status=? AND ready_at<?)';
    assert.ok(planOf(claimContenders).includes('SCAN r USING COVERING INDEX uploads_active'));
    assert.ok(planOf(claimContenders).includes(`SEARCH t ${requestQueue}`));
    assert.ok(planOf(claimContenders).includes('SEARCH c USING PRIMARY KEY (upload_id=? AND status=?)'));
    assert.equal(planOf(claimHead)[0], `SEARCH t ${requestQueue}`);
    assert.ok(planOf(latestTurn).some((line) => line.endsWith('USING COVERING INDEX uploads_active')));
    assert.ok(
      planOf(requeueDueFailed).includes(
        'SEARCH file_tasks USING COVERING INDEX file_tasks_queue (status=? AND ready_at<?)',
      ),
    );
    assert.ok(
      planOf(nextReadyAt).includes('SEARCH t USING INDEX file_tasks_queue (status=? AND ready_at>?)'),
    );
    // The wait of a marker: a seek of its upload, and of its upload's tasks of a status.
    for (const sql of [claimContenders, claimHead, nextReadyAt]) {
      assert.ok(planOf(sql).includes('SEARCH w USING INDEX sqlite_autoindex_uploads_1 (upload_id=?)'));
      assert.ok(
        planOf(sql).some((line) =>
          /^SEARCH o USING INDEX file_tasks_by_upload\w* \(upload_id=\? AND status=\?\)$/.test(line),
        ),
      );
    }
    for (const sql of Object.values(QUEUE_SCANS)) {
      for (const line of planOf(sql)) {
        assert.doesNotMatch(line, /TEMP B-TREE/);
        // Every table is reached through an index, never read whole.
        if (/^(SCAN|SEARCH) /.test(line)) assert.match(line, / USING /, line);
      }
    }
  });

  it('counts an arrival through the kept counts and the markers alone, and pages the manifest by a range', () => {
    const planOf = (sql: string) => {
      const names = [...new Set(sql.match(/@\w+/g) ?? [])].map((name) => name.slice(1));
      return db
        .prepare<Record<string, null>, { detail: string }>(`EXPLAIN QUERY PLAN ${sql}`)
        .all(Object.fromEntries(names.map((name) => [name, null])))
        .map((row) => row.detail);
    };
    for (const sql of [ARRIVAL_SCANS.recordMarker, ARRIVAL_SCANS.recordCompletion]) {
      const plan = planOf(sql);
      assert.ok(plan.includes('SEARCH c USING PRIMARY KEY (upload_id=? AND status=?)'), plan.join('\n'));
      assert.ok(
        plan.some((line) =>
          /^SEARCH m USING (COVERING )?INDEX file_tasks_markers \(upload_id=\? AND status=\?\)$/.test(line),
        ),
        plan.join('\n'),
      );
    }
    assert.deepEqual(planOf(ARRIVAL_SCANS.manifestEntries), [
      'SEARCH file_tasks USING INDEX file_tasks_by_upload_status (upload_id=? AND status=? AND rowid>?)',
    ]);
    for (const sql of Object.values(ARRIVAL_SCANS)) {
      for (const line of planOf(sql)) {
        assert.doesNotMatch(line, /TEMP B-TREE/);
        if (/^(SCAN|SEARCH) /.test(line)) assert.match(line, / USING /, line);
      }
    }
  });

  it('upgrades a database from before arrivals: no upload has markers or an arrival, no task is a marker', async () => {
    await store.close();
    const older = path.join(folder, 'before-arrivals.db');
    const raw = new Sqlite(older);
    const before = MIGRATIONS.findIndex((migration) => migration.includes('complete_markers'));
    for (const migration of MIGRATIONS.slice(0, before)) raw.exec(migration);
    raw.pragma(`user_version = ${before}`);
    raw.exec(`
      INSERT INTO uploads (upload_id, source_folder, destination_bucket, destination_prefix, pattern,
                           status, created_at, updated_at)
      VALUES ('r1', '/src', 'b', '', '**', 'active', ${T0}, ${T0});
      INSERT INTO file_tasks (upload_id, relative_path, object_key, size, mtime_ms, status, bytes_uploaded,
                              attempts, ready_at, observed_at, created_at, updated_at)
      VALUES ('r1', 'RTAComplete.txt', 'RTAComplete.txt', 1, 1, 'pending', 0, 0, ${T0}, ${T0}, ${T0}, ${T0});`);
    raw.close();
    open(older);
    const upload = await store.getUpload('r1');
    assert.deepEqual(
      [upload?.completeMarkers, upload?.manifestKey, upload?.notifyUrl, upload?.scannedAt],
      [[], null, null, null],
    );
    assert.deepEqual([upload?.arrival, upload?.manifest, upload?.notification], [null, null, null]);
    const [task] = await store.claimReadyTasks(T0 + 1, 5);
    assert.deepEqual([task?.relativePath, task?.marker], ['RTAComplete.txt', false]);
    // Each part of an arrival comes with the rest.
    assert.throws(() => db.exec(`UPDATE uploads SET arrival_at = 1 WHERE upload_id = 'r1'`), /CHECK/);
    assert.throws(
      () => db.exec(`UPDATE uploads SET notification_status = 'pending' WHERE upload_id = 'r1'`),
      /CHECK/,
    );
  });
});

describe('openStore', () => {
  it('opens SQLite for a sqlite: URL', async () => {
    const folder = tempFolder();
    const store = await openStore('sqlite:./data/uploads.db', path.join(folder, 'uploads.db'));
    try {
      assert.equal(await store.health(), 'reachable');
      assert.ok(existsSync(path.join(folder, 'uploads.db')));
    } finally {
      await store.close();
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it('names the scheme it does not support, and the ones it does, without the password', async () => {
    await assert.rejects(openStore('mysql://app:s3cret-pw@db/uploads', '/unused.db'), (error: unknown) => {
      assert.ok(error instanceof Error);
      assert.match(error.message, /'mysql:\/\/app:\*\*\*@db\/uploads' is not supported/);
      assert.match(error.message, /the scheme 'mysql:' is not implemented/);
      assert.match(error.message, /sqlite:\.\/path\.db .* postgres:\/\/user@host\/database/);
      assert.doesNotMatch(error.message, /s3cret-pw/);
      return true;
    });
    await assert.rejects(openStore('uploads.db', '/unused.db'), /has no scheme/);
  });
});
