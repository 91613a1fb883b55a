// The Store contract, continued: the queue is shared among uploads. Each claim takes from the
// upload with the fewest tasks in progress, then the one claimed from longest ago; each upload's
// own tasks go in readyAt order, then by taskId.
import { beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { EpochMs, FileTask } from '../../src/domain/model.js';
import type { Store } from '../../src/store/store.js';
import { T0, keyFor, newUpload, observed, readyAt, uploadOf } from './store-fixtures.js';

/** `current` returns the store of the running test (each test gets a fresh one). */
export function describeFairnessContract(current: () => Store): void {
  let store: Store;
  beforeEach(() => {
    store = current();
  });

  /** An active upload with `count` pending tasks, all ready at `at`. */
  async function requestReadyAt(uploadId: string, count: number, at: EpochMs): Promise<void> {
    await store.createUpload(newUpload(uploadId), T0);
    assert.equal(await store.activateUpload(uploadId, T0), true);
    await store.recordObservedFiles(uploadId, observed(count), keyFor, readyAt(at), T0);
  }

  /** Claims one task at a time and completes it before the next, until none is left. */
  async function claimOneByOne(now: EpochMs): Promise<FileTask[]> {
    const claimed: FileTask[] = [];
    for (
      let [task] = await store.claimReadyTasks(now, 1);
      task;
      [task] = await store.claimReadyTasks(now, 1)
    ) {
      claimed.push(task);
      assert.equal(await store.completeTask(task.taskId, uploadOf(task), now), true);
    }
    return claimed;
  }

  const requestsOf = (tasks: readonly FileTask[]): string[] => tasks.map((task) => task.uploadId);

  describe('a queue shared among uploads', () => {
    it("claims a new upload's task second, behind a backlog of 1,000 tasks ready before it", async () => {
      await requestReadyAt('backlog', 1000, T0);
      await requestReadyAt('new', 1, T0 + 60_000);
      const claimed = await store.claimReadyTasks(T0 + 60_000, 8);
      assert.deepEqual(requestsOf(claimed), ['backlog', 'new', ...Array<string>(6).fill('backlog')]);
    });

    it('takes turns among uploads with as many tasks in progress, in separate claims', async () => {
      await requestReadyAt('big', 6, T0);
      await requestReadyAt('small', 2, T0 + 50);
      await requestReadyAt('middle', 2, T0 + 20);
      const claimed = await claimOneByOne(T0 + 100);
      // Never claimed from: the oldest ready task first. Then the one claimed from longest ago.
      assert.deepEqual(requestsOf(claimed), [
        'big',
        'middle',
        'small',
        'big',
        'middle',
        'small',
        'big',
        'big',
        'big',
        'big',
      ]);
      const bigPaths = claimed.filter((task) => task.uploadId === 'big').map((task) => task.relativePath);
      assert.deepEqual(bigPaths, [...bigPaths].sort());
    });

    it('prefers the uploads with the fewest tasks in progress', async () => {
      await requestReadyAt('early', 4, T0);
      await requestReadyAt('late', 4, T0 + 100);
      assert.deepEqual(requestsOf(await store.claimReadyTasks(T0, 3)), ['early', 'early', 'early']);
      // 'late' catches up with the three in progress of 'early'; at three each, 'early' was claimed
      // from longer ago.
      assert.deepEqual(requestsOf(await store.claimReadyTasks(T0 + 100, 4)), [
        'late',
        'late',
        'late',
        'early',
      ]);
      assert.deepEqual(requestsOf(await store.claimReadyTasks(T0 + 100, 10)), ['late']);
    });

    it("keeps each upload's own order: oldest readyAt first, then by taskId", async () => {
      await store.createUpload(newUpload('x'), T0);
      await store.activateUpload('x', T0);
      await store.createUpload(newUpload('y'), T0);
      await store.activateUpload('y', T0);
      const record = (uploadId: string, index: number, at: EpochMs) =>
        store.recordObservedFiles(uploadId, observed(1, 1, index), keyFor, readyAt(at), T0);
      await record('x', 0, T0 + 30);
      await record('x', 1, T0 + 10);
      await record('x', 2, T0 + 20);
      await record('x', 3, T0 + 10);
      await record('y', 0, T0 + 40);
      await record('y', 1, T0 + 5);
      const claimed = await store.claimReadyTasks(T0 + 50, 10);
      assert.deepEqual(
        claimed.map((task) => [task.uploadId, task.relativePath, task.readyAt]),
        [
          ['y', 'dir/file-000001.txt', T0 + 5],
          ['x', 'dir/file-000001.txt', T0 + 10],
          ['y', 'dir/file-000000.txt', T0 + 40],
          ['x', 'dir/file-000003.txt', T0 + 10],
          ['x', 'dir/file-000002.txt', T0 + 20],
          ['x', 'dir/file-000000.txt', T0 + 30],
        ],
      );
    });

    it('lets an upload that had nothing ready come back before the ones claimed from since', async () => {
      await requestReadyAt('a', 4, T0);
      await requestReadyAt('b', 4, T0);
      await store.createUpload(newUpload('c'), T0);
      await store.activateUpload('c', T0);
      await store.recordObservedFiles('c', observed(1), keyFor, readyAt(T0), T0);
      await store.recordObservedFiles('c', observed(2, 1, 1), keyFor, readyAt(T0 + 100), T0);
      assert.deepEqual(requestsOf(await claimOneByOne(T0)), ['a', 'b', 'c', 'a', 'b', 'a', 'b', 'a', 'b']);
      await store.recordObservedFiles('a', observed(2, 1, 10), keyFor, readyAt(T0 + 100), T0);
      await store.recordObservedFiles('b', observed(2, 1, 10), keyFor, readyAt(T0 + 100), T0);
      assert.deepEqual(requestsOf(await claimOneByOne(T0 + 100)), ['c', 'a', 'b', 'c', 'a', 'b']);
    });

    it('does not hold back an upload claimed from often while it was alone', async () => {
      await store.createUpload(newUpload('solo'), T0);
      await store.activateUpload('solo', T0);
      await store.recordObservedFiles('solo', observed(5), keyFor, readyAt(T0), T0);
      await store.recordObservedFiles('solo', observed(1, 1, 5), keyFor, readyAt(T0 + 200), T0);
      await requestReadyAt('other', 2, T0 + 100);
      assert.deepEqual(requestsOf(await claimOneByOne(T0)), Array<string>(5).fill('solo'));
      assert.deepEqual(requestsOf(await claimOneByOne(T0 + 100)), ['other', 'other']);
      await store.recordObservedFiles('other', observed(1, 1, 2), keyFor, readyAt(T0 + 200), T0);
      // 'other' was claimed from last.
      assert.deepEqual(requestsOf(await claimOneByOne(T0 + 200)), ['solo', 'other']);
    });

    it('leaves out the tasks of pending and cancelled uploads', async () => {
      await requestReadyAt('active', 2, T0);
      await store.createUpload(newUpload('waiting'), T0);
      await store.recordObservedFiles('waiting', observed(2), keyFor, readyAt(T0), T0);
      await requestReadyAt('cancelled', 2, T0);
      await store.cancelUpload('cancelled', T0);
      assert.deepEqual(requestsOf(await store.claimReadyTasks(T0, 10)), ['active', 'active']);
    });
  });
}
