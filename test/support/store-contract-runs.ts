// The Store contract, continued: the dispatcher's queue, one task's run, multipart progress,
// and counts that stay exact through all of them.
import { beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Store } from '../../src/store/store.js';
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
  totalsOf,
  uploadOf,
} from './store-fixtures.js';

/** `current` returns the store of the running test (each test gets a fresh one). */
export function describeRunContract(current: () => Store): void {
  let store: Store;
  beforeEach(() => {
    store = current();
  });

  describe("the dispatcher's queue", () => {
    it('claims only ready pending tasks of active uploads, oldest readyAt first', async () => {
      await store.createUpload(newUpload('active'), T0);
      await store.activateUpload('active', T0);
      await store.recordObservedFiles('active', observed(1, 1, 0), keyFor, readyAt(T0 + 30), T0);
      await store.recordObservedFiles('active', observed(1, 1, 1), keyFor, readyAt(T0 + 10), T0);
      await store.recordObservedFiles('active', observed(1, 1, 2), keyFor, readyAt(T0 + 20), T0);
      await store.recordObservedFiles('active', observed(1, 1, 3), keyFor, readyAt(T0 + 99), T0);
      await store.createUpload(newUpload('waiting'), T0);
      await store.recordObservedFiles('waiting', observed(2), keyFor, readyAt(T0), T0);
      await activeRequestWith(store, 'cancelled', observed(2));
      await store.cancelUpload('cancelled', T0);

      const claimed = await store.claimReadyTasks(T0 + 50, 10);
      assert.deepEqual(
        claimed.map((t) => [t.relativePath, t.readyAt]),
        [
          ['dir/file-000001.txt', T0 + 10],
          ['dir/file-000002.txt', T0 + 20],
          ['dir/file-000000.txt', T0 + 30],
        ],
      );
      for (const task of claimed) {
        assert.equal(task.status, 'in_progress');
        assert.equal(task.attempts, 1);
        assert.equal(task.updatedAt, T0 + 50);
        assert.deepEqual(await store.getTask(task.taskId), task);
      }
    });

    it('respects the limit and never hands the same task twice', async () => {
      await activeRequestWith(store, 'r1', observed(5));
      const first = await store.claimReadyTasks(T0, 3);
      const second = await store.claimReadyTasks(T0, 3);
      const third = await store.claimReadyTasks(T0, 3);
      assert.equal(first.length, 3);
      assert.equal(second.length, 2);
      assert.deepEqual(third, []);
      assert.equal(new Set([...first, ...second].map((t) => t.taskId)).size, 5);
      await assert.rejects(store.claimReadyTasks(T0, 0), RangeError);
    });

    it('tells the earliest readyAt of pending tasks of active uploads', async () => {
      assert.equal(await store.nextReadyAt(), null);
      await store.createUpload(newUpload('waiting'), T0);
      await store.recordObservedFiles('waiting', observed(1), keyFor, readyAt(T0 - 100), T0);
      assert.equal(await store.nextReadyAt(), null);
      await activeRequestWith(store, 'cancelled', observed(1));
      await store.cancelUpload('cancelled', T0);
      assert.equal(await store.nextReadyAt(), null);

      await store.createUpload(newUpload('r1'), T0);
      await store.activateUpload('r1', T0);
      await store.recordObservedFiles('r1', observed(1, 1, 0), keyFor, readyAt(T0 + 40), T0);
      await store.recordObservedFiles('r1', observed(1, 1, 1), keyFor, readyAt(T0 + 20), T0);
      assert.equal(await store.nextReadyAt(), T0 + 20);
      await store.claimReadyTasks(T0 + 20, 1);
      assert.equal(await store.nextReadyAt(), T0 + 40);
    });

    it('requeues failed tasks of active uploads once their time has come, keeping the error', async () => {
      const tasks = await activeRequestWith(store, 'r1', observed(3));
      await activeRequestWith(store, 'cancelled', observed(1));
      await store.claimReadyTasks(T0, 10);
      const [soon, later, done] = tasks;
      assert.ok(soon && later && done);
      await store.failTask(soon.taskId, { message: 'timeout', kind: 'transient', retryAt: T0 + 100 }, T0 + 1);
      await store.failTask(later.taskId, { message: 'reset', kind: 'transient', retryAt: T0 + 200 }, T0 + 1);
      await store.completeTask(done.taskId, uploadOf(done), T0 + 1);
      const [cancelledTask] = await allTasks(store, 'cancelled');
      assert.ok(cancelledTask);
      await store.failTask(
        cancelledTask.taskId,
        { message: 'boom', kind: 'transient', retryAt: T0 + 100 },
        T0 + 1,
      );
      await store.cancelUpload('cancelled', T0 + 2);

      assert.equal(await store.requeueDueFailedTasks(T0 + 99), 0);
      assert.equal(await store.requeueDueFailedTasks(T0 + 150), 1);
      const requeued = await taskOf(store, soon.taskId);
      assert.deepEqual(
        [requeued.status, requeued.readyAt, requeued.lastError, requeued.failedAt],
        ['pending', T0 + 150, 'timeout', T0 + 1],
      );
      assert.equal((await taskOf(store, later.taskId)).status, 'failed');
      assert.equal((await taskOf(store, cancelledTask.taskId)).status, 'failed');
    });

    it('retries every failed task of one upload now', async () => {
      const tasks = await activeRequestWith(store, 'r1', observed(3));
      const [other] = await activeRequestWith(store, 'r2', observed(1));
      await store.claimReadyTasks(T0, 10);
      for (const task of [...tasks.slice(0, 2), other]) {
        assert.ok(task);
        assert.equal(
          await store.failTask(
            task.taskId,
            { message: 'boom', kind: 'transient', retryAt: T0 + 10_000 },
            T0 + 1,
          ),
          true,
        );
      }
      assert.equal(await store.retryFailedTasks('r1', T0 + 5), 2);
      assert.deepEqual(
        (await allTasks(store, 'r1')).map((t) => [t.status, t.readyAt]),
        [
          ['pending', T0 + 5],
          ['pending', T0 + 5],
          ['in_progress', T0],
        ],
      );
      assert.equal((await allTasks(store, 'r2'))[0]?.status, 'failed');
      assert.equal(await store.retryFailedTasks('r1', T0 + 6), 0);
    });

    it('stops a claim once the memory of the tasks claimed reaches the budget', async () => {
      await activeRequestWith(store, 'r1', observed(6, 100));
      // Each task of 100 bytes weighs 3: the third reaches 7.
      const bytesOf = (size: number) => (size === 100 ? 3 : 1000);
      assert.equal((await store.claimReadyTasks(T0, 5, { budget: { bytes: 7, bytesOf } })).length, 3);
      assert.equal((await store.claimReadyTasks(T0, 5, { budget: { bytes: 1, bytesOf } })).length, 1);
      assert.equal((await store.claimReadyTasks(T0, 5)).length, 2);
    });

    it('recovers interrupted tasks after a crash, keeping their multipart progress', async () => {
      const [task, other] = await activeRequestWith(store, 'r1', observed(3));
      assert.ok(task && other);
      await store.claimReadyTasks(T0, 2);
      await store.saveMultipart(multipartOf(task.taskId), T0);
      await store.recordPart(task.taskId, { partNumber: 1, etag: '"p1"', size: 5 });
      await store.recordProgress(task.taskId, 5, T0 + 1);
      assert.equal(await store.recoverInterruptedTasks(T0 + 100), 2);
      const recovered = await taskOf(store, task.taskId);
      assert.deepEqual(
        [recovered.status, recovered.attempts, recovered.bytesUploaded, recovered.readyAt],
        ['pending', 1, 5, T0],
      );
      assert.deepEqual((await store.getMultipart(task.taskId))?.parts, [
        { partNumber: 1, etag: '"p1"', size: 5 },
      ]);
      assert.equal(await store.recoverInterruptedTasks(T0 + 101), 0);
      const [again] = await store.claimReadyTasks(T0 + 102, 1);
      assert.equal(again?.attempts, 2);
      // Its object may be in S3 unrecorded: it is marked so until it completes.
      assert.ok(again);
      assert.equal(again.interrupted, true);
      assert.equal((await taskOf(store, other.taskId)).interrupted, true);
      assert.equal(await store.completeTask(again.taskId, uploadOf(again), T0 + 103), true);
      assert.equal((await taskOf(store, again.taskId)).interrupted, false);
    });
  });

  describe("one task's run", () => {
    it('records progress only while in_progress', async () => {
      const [task] = await activeRequestWith(store, 'r1', observed(1));
      assert.ok(task);
      await store.recordProgress(task.taskId, 40, T0 + 1);
      assert.equal((await taskOf(store, task.taskId)).bytesUploaded, 0);
      await store.claimReadyTasks(T0, 1);
      await store.recordProgress(task.taskId, 40, T0 + 2);
      const running = await taskOf(store, task.taskId);
      assert.deepEqual([running.bytesUploaded, running.updatedAt], [40, T0 + 2]);
      assert.deepEqual((await store.uploadTotals('r1')).bytes, { total: 100, uploaded: 40 });
    });

    it('completes a running task once, counting its whole size as uploaded', async () => {
      const [task] = await activeRequestWith(store, 'r1', observed(1));
      assert.ok(task);
      const result = uploadOf(task, '"abc"');
      assert.equal(await store.completeTask(task.taskId, result, T0 + 1), false, 'a pending task');
      await store.claimReadyTasks(T0, 1);
      await store.recordProgress(task.taskId, 30, T0 + 1);
      assert.equal(await store.completeTask(task.taskId, result, T0 + 2), true);
      assert.equal(await store.completeTask(task.taskId, uploadOf(task, '"other"'), T0 + 3), false);
      const done = await taskOf(store, task.taskId);
      assert.deepEqual(
        [done.status, done.etag, done.validation, done.bytesUploaded, done.completedAt, done.updatedAt],
        ['completed', '"abc"', 'etag', 100, T0 + 2, T0 + 2],
      );
      assert.deepEqual(await store.uploadTotals('r1'), {
        files: { pending: 0, in_progress: 0, completed: 1, failed: 0, total: 1 },
        bytes: { total: 100, uploaded: 100 },
      });
    });

    it("keeps when an upload's last file completed, and counts the backlog of every upload asked for in one call", async () => {
      const [first, second] = await activeRequestWith(store, 'r1', observed(2));
      assert.ok(first && second);
      await store.createUpload(newUpload('empty'), T0);
      assert.equal((await store.getUpload('r1'))?.lastCompletedAt, null);
      await store.claimReadyTasks(T0, 2);
      await store.recordProgress(second.taskId, 30, T0 + 1);
      assert.equal(await store.completeTask(first.taskId, uploadOf(first, '"abc"'), T0 + 5), true);
      assert.equal((await store.getUpload('r1'))?.lastCompletedAt, T0 + 5);
      assert.equal((await store.getUpload('empty'))?.lastCompletedAt, null);
      const counts = await store.uploadCounts(['r1', 'empty', 'unknown']);
      assert.deepEqual(counts.get('r1'), {
        files: { pending: 0, in_progress: 1, completed: 1, failed: 0, total: 2 },
        bytes: { total: 200, uploaded: 130 },
        backlogBytes: 70,
      });
      const none = {
        files: { pending: 0, in_progress: 0, completed: 0, failed: 0, total: 0 },
        bytes: { total: 0, uploaded: 0 },
        backlogBytes: 0,
      };
      assert.deepEqual(counts.get('empty'), none);
      assert.deepEqual(counts.get('unknown'), none);
      assert.deepEqual(await store.uploadCounts([]), new Map());
    });

    it('counts the queue by status over the watched uploads only, in one call', async () => {
      const none = { files: 0, bytes: 0 };
      assert.deepEqual(await store.queueCounts(), {
        pending: none,
        in_progress: none,
        completed: none,
        failed: none,
      });
      const [first, second] = await activeRequestWith(store, 'r1', observed(3, 100));
      assert.ok(first && second);
      await activeRequestWith(store, 'r2', observed(2, 40));
      await activeRequestWith(store, 'gone', observed(4, 1000));
      await store.createUpload(newUpload('new'), T0);
      assert.equal(await store.recordObservedFiles('new', observed(1, 7), keyFor, readyAt(T0), T0), 1);
      assert.equal(await store.cancelUpload('gone', T0 + 1), true);
      const claimed = await store.claimReadyTasks(T0 + 1, 2);
      assert.deepEqual(claimed.map((task) => task.uploadId).sort(), ['r1', 'r2']);
      const ofR1 = claimed.find((task) => task.uploadId === 'r1');
      assert.ok(ofR1);
      assert.equal(await store.completeTask(ofR1.taskId, uploadOf(ofR1, '"e"'), T0 + 2), true);
      const failure = { message: 'no', kind: 'permanent' as const, retryAt: null };
      const ofR2 = claimed.find((task) => task.uploadId === 'r2');
      assert.ok(ofR2);
      assert.equal(await store.failTask(ofR2.taskId, failure, T0 + 2), true);
      // r1: 2 pending, 1 completed; r2: 1 pending, 1 failed; new (pending upload): 1 pending; gone: left out.
      assert.deepEqual(await store.queueCounts(), {
        pending: { files: 4, bytes: 2 * 100 + 40 + 7 },
        in_progress: none,
        completed: { files: 1, bytes: 100 },
        failed: { files: 1, bytes: 40 },
      });
    });

    it('completes with the version uploaded, which a file that grew during its upload replaces', async () => {
      const [task] = await activeRequestWith(store, 'r1', observed(1));
      assert.ok(task);
      await store.claimReadyTasks(T0, 1);
      await store.recordProgress(task.taskId, 150, T0 + 1, 180);
      assert.deepEqual(
        [(await taskOf(store, task.taskId)).size, (await taskOf(store, task.taskId)).bytesUploaded],
        [180, 150],
      );
      await store.recordProgress(task.taskId, 160, T0 + 2);
      assert.equal((await taskOf(store, task.taskId)).size, 180, 'no size given: the size stays');
      const settled = { ...uploadOf(task, '"m-3"'), size: 300, mtimeMs: 4321.5, sha256: 'cd'.repeat(32) };
      assert.equal(await store.completeTask(task.taskId, settled, T0 + 3), true);
      const done = await taskOf(store, task.taskId);
      assert.deepEqual(
        [done.size, done.mtimeMs, done.bytesUploaded, done.uploadedSize, done.sha256, done.etag],
        [300, 4321.5, 300, 300, 'cd'.repeat(32), '"m-3"'],
      );
      assert.deepEqual(await store.uploadTotals('r1'), totalsOf(await allTasks(store, 'r1')));
    });

    it('once streaming is refused, queues new versions at their settle time until an upload completes', async () => {
      const [task] = await activeRequestWith(store, 'r1', observed(1));
      assert.ok(task);
      await store.claimReadyTasks(T0, 1);
      const version = {
        size: 200,
        mtimeMs: 2000,
        ino: 1,
        ctimeMs: 2000,
        observedAt: T0 + 1,
        readyAt: T0 + 50,
        refuseStreaming: true,
      };
      assert.equal(await store.releaseTask(task.taskId, version, 'rewritten', T0 + 1), true);
      const released = await taskOf(store, task.taskId);
      assert.deepEqual(
        [released.status, released.readyAt, released.streamRefused],
        ['pending', T0 + 50, true],
      );
      const grown = [
        {
          relativePath: task.relativePath,
          size: 300,
          mtimeMs: 3000,
          ino: 1,
          ctimeMs: 3000,
          observedAt: T0 + 2,
        },
      ];
      const readiness = () => ({ readyAt: T0 + 2, settledAt: T0 + 90 });
      assert.equal(await store.recordObservedFiles('r1', grown, keyFor, readiness, T0 + 2), 1);
      assert.equal((await taskOf(store, task.taskId)).readyAt, T0 + 90, 'its settle time, not at once');

      const [claimed] = await store.claimReadyTasks(T0 + 90, 1);
      assert.equal(claimed?.taskId, task.taskId);
      await store.completeTask(task.taskId, { ...uploadOf(task), size: 300, mtimeMs: 3000 }, T0 + 91);
      assert.equal((await taskOf(store, task.taskId)).streamRefused, false, 'a completed upload clears it');
      const again = [
        {
          relativePath: task.relativePath,
          size: 400,
          mtimeMs: 4000,
          ino: 1,
          ctimeMs: 4000,
          observedAt: T0 + 92,
        },
      ];
      await store.recordObservedFiles(
        'r1',
        again,
        keyFor,
        () => ({ readyAt: T0 + 92, settledAt: T0 + 99 }),
        T0 + 92,
      );
      assert.equal((await taskOf(store, task.taskId)).readyAt, T0 + 92);
    });

    it('fails only a running task, with its message and requeue time', async () => {
      const [task] = await activeRequestWith(store, 'r1', observed(1));
      assert.ok(task);
      assert.equal(
        await store.failTask(task.taskId, { message: 'boom', kind: 'transient', retryAt: T0 + 60 }, T0 + 1),
        false,
        'a pending task',
      );
      await store.claimReadyTasks(T0, 1);
      assert.equal(
        await store.failTask(
          task.taskId,
          { message: 'AccessDenied: no', kind: 'transient', retryAt: T0 + 60 },
          T0 + 2,
        ),
        true,
      );
      assert.equal(
        await store.failTask(task.taskId, { message: 'again', kind: 'transient', retryAt: T0 + 90 }, T0 + 3),
        false,
        'a failed task',
      );
      const failed = await taskOf(store, task.taskId);
      assert.deepEqual(
        [failed.status, failed.lastError, failed.readyAt, failed.failedAt],
        ['failed', 'AccessDenied: no', T0 + 60, T0 + 2],
      );
    });

    it('releases a running task with its new version, or keeps its progress for the same one', async () => {
      const [changed, same] = await activeRequestWith(store, 'r1', observed(2));
      assert.ok(changed && same);
      const version = {
        size: 300,
        mtimeMs: 5000,
        ino: 1,
        ctimeMs: 5000,
        observedAt: T0 + 1,
        readyAt: T0 + 40,
      };
      assert.equal(
        await store.releaseTask(changed.taskId, version, 'changed', T0 + 1),
        false,
        'a pending task',
      );
      await store.claimReadyTasks(T0, 2);
      await store.recordProgress(changed.taskId, 50, T0 + 1);
      await store.recordProgress(same.taskId, 60, T0 + 1);

      assert.equal(await store.releaseTask(changed.taskId, version, 'the file changed', T0 + 2), true);
      const released = await taskOf(store, changed.taskId);
      assert.deepEqual(
        [
          released.status,
          released.size,
          released.mtimeMs,
          released.observedAt,
          released.readyAt,
          released.lastError,
        ],
        ['pending', 300, 5000, T0 + 1, T0 + 40, 'the file changed'],
      );
      assert.deepEqual([released.bytesUploaded, released.attempts], [0, 0]);

      const sameVersion = {
        size: same.size,
        mtimeMs: same.mtimeMs,
        ino: 1,
        ctimeMs: same.mtimeMs,
        observedAt: T0 + 3,
        readyAt: T0 + 3,
      };
      assert.equal(await store.releaseTask(same.taskId, sameVersion, null, T0 + 3), true);
      const kept = await taskOf(store, same.taskId);
      assert.deepEqual(
        [kept.status, kept.bytesUploaded, kept.attempts, kept.lastError, kept.observedAt],
        ['pending', 60, 1, null, T0 + 3],
      );
      assert.deepEqual(await store.uploadTotals('r1'), totalsOf(await allTasks(store, 'r1')));
    });

    it('releases a running task out of the queue when its readyAt is null', async () => {
      const [task] = await activeRequestWith(store, 'r1', observed(1));
      assert.ok(task);
      await store.claimReadyTasks(T0, 1);
      const version = {
        size: task.size,
        mtimeMs: task.mtimeMs,
        ino: 1,
        ctimeMs: task.mtimeMs,
        observedAt: T0 + 1,
        readyAt: null,
      };
      assert.equal(await store.releaseTask(task.taskId, version, 'cancelled', T0 + 1), true);
      const released = await taskOf(store, task.taskId);
      assert.deepEqual([released.status, released.readyAt], ['pending', null]);
      assert.equal(await store.nextReadyAt(), null);
      assert.deepEqual(await store.claimReadyTasks(T0 + 1000, 1), []);
    });

    it('forgets the multipart state of a task it completes', async () => {
      const [task] = await activeRequestWith(store, 'r1', observed(1));
      assert.ok(task);
      await store.claimReadyTasks(T0, 1);
      await store.saveMultipart(multipartOf(task.taskId), T0);
      await store.recordPart(task.taskId, { partNumber: 1, etag: '"p1"', size: 5 });
      assert.equal(await store.completeTask(task.taskId, uploadOf(task, 'e-1'), T0 + 1), true);
      assert.equal(await store.getMultipart(task.taskId), undefined);
      assert.deepEqual(await store.listMultipartsOfUpload('r1'), []);
    });

    it('drops a task with its multipart state', async () => {
      const [task, kept] = await activeRequestWith(store, 'r1', observed(2));
      assert.ok(task && kept);
      await store.claimReadyTasks(T0, 1);
      await store.saveMultipart(multipartOf(task.taskId), T0);
      await store.recordPart(task.taskId, { partNumber: 1, etag: '"p1"', size: 5 });
      await store.dropTask(task.taskId);
      assert.equal(await store.getTask(task.taskId), undefined);
      assert.equal(await store.getMultipart(task.taskId), undefined);
      assert.deepEqual(await store.listMultipartsOfUpload('r1'), []);
      assert.deepEqual((await store.uploadTotals('r1')).files.total, 1);
      await store.dropTask(task.taskId);
      // A path seen again after its task was dropped is a new task with a new id.
      await store.recordObservedFiles('r1', observed(1), keyFor, readyAt(T0), T0 + 5);
      const again = (await allTasks(store, 'r1')).find((t) => t.relativePath === task.relativePath);
      assert.ok(again && again.taskId > kept.taskId);
    });
  });

  describe('failures and what the upload says of them', () => {
    it("makes a failure the upload's last error, and clears it once that file has completed", async () => {
      const [first, second] = await activeRequestWith(store, 'r1', observed(2));
      assert.ok(first && second);
      await store.claimReadyTasks(T0, 2);
      await store.failTask(
        first.taskId,
        { message: 'S3 said no', kind: 'configuration', retryAt: T0 + 60 },
        T0 + 1,
      );
      assert.equal((await store.getUpload('r1'))?.lastError, `${first.relativePath}: S3 said no`);
      await store.failTask(second.taskId, { message: 'reset', kind: 'transient', retryAt: T0 + 60 }, T0 + 2);
      assert.equal((await store.getUpload('r1'))?.lastError, `${second.relativePath}: reset`);

      // The newest failure completes: the upload shows the failure still standing.
      await store.retryFailedTasks('r1', T0 + 3);
      const claimed = await store.claimReadyTasks(T0 + 3, 2);
      assert.equal(claimed.length, 2);
      await store.failTask(
        first.taskId,
        { message: 'still no', kind: 'configuration', retryAt: T0 + 60 },
        T0 + 4,
      );
      assert.equal(await store.completeTask(second.taskId, uploadOf(second), T0 + 5), true);
      assert.equal((await store.getUpload('r1'))?.lastError, `${first.relativePath}: still no`);

      // A note about no task stays until it is replaced, whatever completes.
      await store.setUploadError('r1', 'a note', T0 + 6);
      await store.retryFailedTasks('r1', T0 + 7);
      await store.claimReadyTasks(T0 + 7, 1);
      await store.completeTask(first.taskId, uploadOf(first), T0 + 8);
      assert.equal((await store.getUpload('r1'))?.lastError, 'a note');
    });

    it('clears the error when the last failed file completes', async () => {
      const [task] = await activeRequestWith(store, 'r1', observed(1));
      assert.ok(task);
      await store.claimReadyTasks(T0, 1);
      await store.failTask(task.taskId, { message: 'boom', kind: 'transient', retryAt: T0 + 1 }, T0);
      await store.requeueDueFailedTasks(T0 + 1);
      await store.claimReadyTasks(T0 + 1, 1);
      await store.completeTask(task.taskId, uploadOf(task), T0 + 2);
      assert.equal((await store.getUpload('r1'))?.lastError, null);
    });

    it('gives an attempt back to a task released because S3 could not be reached', async () => {
      const [task] = await activeRequestWith(store, 'r1', observed(1));
      assert.ok(task);
      await store.claimReadyTasks(T0, 1);
      await store.saveMultipart(multipartOf(task.taskId), T0);
      const { size, mtimeMs, ino, ctimeMs, observedAt } = task;
      const release = { size, mtimeMs, ino, ctimeMs, observedAt, readyAt: T0 + 1, refundAttempt: true };
      assert.equal(await store.releaseTask(task.taskId, release, 'waiting for S3', T0 + 1), true);
      const released = await taskOf(store, task.taskId);
      assert.equal(released.status, 'pending');
      assert.equal(released.attempts, 0);
      assert.equal(released.lastError, 'waiting for S3');
      assert.ok(await store.getMultipart(task.taskId), 'its multipart upload is kept, to resume');
      const [again] = await store.claimReadyTasks(T0 + 1, 1);
      assert.equal(again?.attempts, 1);
    });

    it('retries the failures of the given kinds at once, and only those', async () => {
      const tasks = await activeRequestWith(store, 'r1', observed(4));
      await activeRequestWith(store, 'gone', observed(1));
      await store.claimReadyTasks(T0, 10);
      const kinds = ['configuration', 'transient', 'permanent'] as const;
      for (const [i, kind] of kinds.entries()) {
        const task = tasks[i];
        assert.ok(task);
        await store.failTask(task.taskId, { message: kind, kind, retryAt: T0 + 3_600_000 }, T0 + 1);
      }
      const forGood = tasks[3];
      assert.ok(forGood);
      await store.failTask(
        forGood.taskId,
        { message: 'too long', kind: 'configuration', retryAt: null },
        T0 + 1,
      );
      const [ofCancelled] = await allTasks(store, 'gone');
      assert.ok(ofCancelled);
      await store.failTask(
        ofCancelled.taskId,
        { message: 'x', kind: 'configuration', retryAt: T0 + 9 },
        T0 + 1,
      );
      await store.cancelUpload('gone', T0 + 1);

      assert.equal(await store.retryFailedTasksOfKinds(['configuration', 'transient'], T0 + 2), 2);
      const byMessage = new Map((await allTasks(store, 'r1')).map((t) => [t.lastError, t]));
      assert.equal(byMessage.get('configuration')?.status, 'pending');
      assert.equal(byMessage.get('configuration')?.readyAt, T0 + 2);
      assert.equal(byMessage.get('transient')?.status, 'pending');
      assert.equal(byMessage.get('permanent')?.status, 'failed');
      assert.equal(byMessage.get('too long')?.status, 'failed');
      assert.equal((await taskOf(store, ofCancelled.taskId)).status, 'failed');
    });
  });

  describe('multipart progress', () => {
    it('saves, records parts in any order, replaces a part, and deletes', async () => {
      const [task] = await activeRequestWith(store, 'r1', observed(1));
      assert.ok(task);
      assert.equal(await store.getMultipart(task.taskId), undefined);
      await store.saveMultipart(multipartOf(task.taskId), T0 + 1);
      assert.deepEqual(await store.getMultipart(task.taskId), {
        ...multipartOf(task.taskId),
        parts: [],
        createdAt: T0 + 1,
      });
      await store.recordPart(task.taskId, { partNumber: 3, etag: '"p3"', size: 2 });
      await store.recordPart(task.taskId, { partNumber: 1, etag: '"p1"', size: 5 });
      await store.recordPart(task.taskId, { partNumber: 2, etag: '"old"', size: 5 });
      await store.recordPart(task.taskId, { partNumber: 2, etag: '"p2"', size: 5 });
      assert.deepEqual((await store.getMultipart(task.taskId))?.parts, [
        { partNumber: 1, etag: '"p1"', size: 5 },
        { partNumber: 2, etag: '"p2"', size: 5 },
        { partNumber: 3, etag: '"p3"', size: 2 },
      ]);
      await store.deleteMultipart(task.taskId);
      assert.equal(await store.getMultipart(task.taskId), undefined);
      await store.deleteMultipart(task.taskId);
    });

    it('replaces the previous upload and its parts when saved again', async () => {
      const [task] = await activeRequestWith(store, 'r1', observed(1));
      assert.ok(task);
      await store.saveMultipart(multipartOf(task.taskId), T0);
      await store.recordPart(task.taskId, { partNumber: 1, etag: '"p1"', size: 5 });
      const replacement = {
        ...multipartOf(task.taskId),
        s3UploadId: 'upload-2',
        size: 12,
        mtimeMs: 77.5,
        streamed: true,
        copiedBytes: 6,
        copySourceEtag: 'abc-2',
      };
      await store.saveMultipart(replacement, T0 + 9);
      assert.deepEqual(await store.getMultipart(task.taskId), {
        ...replacement,
        parts: [],
        createdAt: T0 + 9,
      });
    });

    it('refuses a part of a task that has no multipart upload', async () => {
      const [task] = await activeRequestWith(store, 'r1', observed(1));
      assert.ok(task);
      await assert.rejects(
        store.recordPart(task.taskId, { partNumber: 1, etag: '"p1"', size: 5 }),
        /no multipart upload/,
      );
    });

    it("lists the multipart uploads of one upload's tasks", async () => {
      const [a, b, plain] = await activeRequestWith(store, 'r1', observed(3));
      const [other] = await activeRequestWith(store, 'r2', observed(1));
      assert.ok(a && b && plain && other);
      for (const task of [b, a, other]) await store.saveMultipart(multipartOf(task.taskId), T0);
      await store.recordPart(a.taskId, { partNumber: 2, etag: '"a2"', size: 5 });
      await store.recordPart(a.taskId, { partNumber: 1, etag: '"a1"', size: 5 });
      await store.recordPart(other.taskId, { partNumber: 1, etag: '"o1"', size: 5 });
      const listed = await store.listMultipartsOfUpload('r1');
      assert.deepEqual(
        listed.map((m) => [m.taskId, m.parts.map((p) => p.etag)]),
        [
          [a.taskId, ['"a1"', '"a2"']],
          [b.taskId, []],
        ],
      );
      assert.deepEqual(await store.listMultipartsOfUpload('missing'), []);
    });
  });

  it('keeps uploadTotals equal to a recount through any sequence of operations', async () => {
    let uploadIdsSoFar: readonly string[] = [];
    await runRandomOperations(store, ['r1', 'r2'], 20240607, 400, async (step, uploadIds) => {
      uploadIdsSoFar = uploadIds;
      for (const uploadId of uploadIds) {
        const tasks = await allTasks(store, uploadId);
        assert.deepEqual(
          await store.uploadTotals(uploadId),
          totalsOf(tasks),
          `${uploadId} after step ${step}`,
        );
        if ((await store.getUpload(uploadId))?.status !== 'cancelled') continue;
        const queued = tasks.filter(
          (t) => (t.status === 'pending' || t.status === 'failed') && t.readyAt !== null,
        );
        assert.deepEqual(queued, [], `cancelled ${uploadId} after step ${step}: tasks still in the queue`);
      }
    });
    // The sequence must have reached what it checks: cancelled uploads that still hold tasks.
    const cancelled = await store.listUploads(['cancelled']);
    const tasksOfCancelled = await Promise.all(cancelled.map((r) => allTasks(store, r.uploadId)));
    assert.ok(uploadIdsSoFar.length > 2, 'the sequence should cancel some uploads');
    assert.ok(tasksOfCancelled.flat().length > 0, 'the cancelled uploads should hold tasks');
  });
}
