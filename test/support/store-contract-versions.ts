// The Store contract, continued: a file version is its size, mtime, inode number and ctime, so that
// a file replaced or rewritten with its size and mtime kept is a new version; a version whose inode
// and ctime were never recorded (written before they were) adopts the observed ones silently; and
// a change of the ctime alone since the last upload asks for a hash before anything is sent.
import { beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { FileTask, ObservedFile } from '../../src/domain/model.js';
import type { Store } from '../../src/store/store.js';
import {
  T0,
  activeRequestWith,
  allTasks,
  keyFor,
  observed,
  readyAt,
  taskOf,
  uploadOf,
} from './store-fixtures.js';

/** `current` returns the store of the running test (each test gets a fresh one). */
export function describeVersionContract(current: () => Store): void {
  let store: Store;
  beforeEach(() => {
    store = current();
  });

  /** One completed task of a new active upload, uploaded as observed(1) describes it. */
  async function completedTask(): Promise<FileTask> {
    const [task] = await activeRequestWith(store, 'r1', observed(1));
    assert.ok(task);
    await store.claimReadyTasks(T0, 1);
    assert.equal(await store.completeTask(task.taskId, uploadOf(task), T0 + 1), true);
    return taskOf(store, task.taskId);
  }

  /** The task's file seen again at T0 + 10 with these fields changed. */
  const seenAgain = (task: FileTask, change: Partial<ObservedFile>): ObservedFile[] => [
    {
      relativePath: task.relativePath,
      size: 100,
      mtimeMs: 1000.5,
      ino: 1,
      ctimeMs: 1000.5,
      observedAt: T0 + 10,
      ...change,
    },
  ];

  describe('file versions', () => {
    for (const [what, change] of [
      ['another inode (replaced by mv)', { ino: 2, ctimeMs: 5000 }],
      ['another ctime (rewritten with its mtime restored)', { ctimeMs: 5000 }],
    ] as const) {
      it(`makes a completed task pending again for the same size and mtime with ${what}`, async () => {
        const task = await completedTask();
        const files = seenAgain(task, change);
        assert.equal(await store.recordObservedFiles('r1', files, keyFor, readyAt(T0 + 20), T0 + 20), 1);
        const after = await taskOf(store, task.taskId);
        assert.deepEqual(
          [after.status, after.size, after.mtimeMs, after.ino, after.ctimeMs, after.readyAt],
          ['pending', 100, 1000.5, change.ino ?? 1, 5000, T0 + 20],
        );
        // Only a ctime change may be metadata alone: that one is hashed before it is sent.
        assert.equal(after.hashFirst, !('ino' in change));
        assert.deepEqual([after.etag, after.sha256, after.uploadedSize], [task.etag, task.sha256, 100]);
      });
    }

    it('asks for no hash when the ctime moves on a task whose version was never uploaded', async () => {
      const [task] = await activeRequestWith(store, 'r1', observed(1));
      assert.ok(task);
      const files = seenAgain(task, { ctimeMs: 5000 });
      assert.equal(await store.recordObservedFiles('r1', files, keyFor, readyAt(T0 + 20), T0 + 20), 1);
      const after = await taskOf(store, task.taskId);
      assert.deepEqual([after.status, after.ctimeMs, after.hashFirst], ['pending', 5000, false]);
    });

    it('keeps asking for a hash while only the ctime moves, and stops once anything else does', async () => {
      const task = await completedTask();
      await store.recordObservedFiles('r1', seenAgain(task, { ctimeMs: 5000 }), keyFor, readyAt(T0), T0 + 20);
      const chmodAgain = seenAgain(task, { ctimeMs: 6000, observedAt: T0 + 30 });
      assert.equal(await store.recordObservedFiles('r1', chmodAgain, keyFor, readyAt(T0), T0 + 30), 1);
      assert.equal((await taskOf(store, task.taskId)).hashFirst, true);
      const rewritten = seenAgain(task, { mtimeMs: 7000, ctimeMs: 7000, observedAt: T0 + 40 });
      assert.equal(await store.recordObservedFiles('r1', rewritten, keyFor, readyAt(T0), T0 + 40), 1);
      assert.equal((await taskOf(store, task.taskId)).hashFirst, false);
    });

    it('clears hashFirst when the task completes, recording the version uploaded', async () => {
      const task = await completedTask();
      await store.recordObservedFiles('r1', seenAgain(task, { ctimeMs: 5000 }), keyFor, readyAt(T0), T0 + 20);
      const [claimed] = await store.claimReadyTasks(T0 + 20, 1);
      assert.ok(claimed?.hashFirst);
      assert.equal(await store.completeTask(claimed.taskId, uploadOf(claimed), T0 + 21), true);
      const after = await taskOf(store, task.taskId);
      assert.deepEqual([after.status, after.ctimeMs, after.hashFirst], ['completed', 5000, false]);
    });

    it('adopts an observed inode and ctime where none is recorded, changing nothing else', async () => {
      const [task] = await activeRequestWith(store, 'r1', observed(1));
      assert.ok(task);
      await store.claimReadyTasks(T0, 1);
      // A version with no inode or ctime, as the rows written before they were recorded hold it.
      const unknown = { size: 100, mtimeMs: 1000.5, ino: null, ctimeMs: null, observedAt: T0, readyAt: T0 };
      assert.equal(await store.releaseTask(task.taskId, unknown, null, T0), true);
      await store.claimReadyTasks(T0, 1);
      assert.equal(
        await store.completeTask(task.taskId, { ...uploadOf(task), ino: null, ctimeMs: null }, T0 + 1),
        true,
      );
      const before = await taskOf(store, task.taskId);
      assert.deepEqual([before.ino, before.ctimeMs], [null, null]);

      const files = seenAgain(task, { ino: 42, ctimeMs: 4242 });
      assert.equal(await store.recordObservedFiles('r1', files, keyFor, readyAt(T0 + 20), T0 + 20), 0);
      assert.deepEqual(await taskOf(store, task.taskId), { ...before, ino: 42, ctimeMs: 4242 });
      // From then on they count: another ctime is a change.
      const later = seenAgain(task, { ino: 42, ctimeMs: 5000, observedAt: T0 + 30 });
      assert.equal(await store.recordObservedFiles('r1', later, keyFor, readyAt(T0 + 30), T0 + 30), 1);
      assert.equal((await taskOf(store, task.taskId)).status, 'pending');
    });

    it('keeps attempts and progress on release only for the very same version, ctime included', async () => {
      const [same, chmodded] = await activeRequestWith(store, 'r1', observed(2));
      assert.ok(same && chmodded);
      await store.claimReadyTasks(T0, 2);
      await store.recordProgress(same.taskId, 40, T0 + 1);
      await store.recordProgress(chmodded.taskId, 40, T0 + 1);
      const version = {
        size: 100,
        mtimeMs: 1000.5,
        ino: 1,
        ctimeMs: 1000.5,
        observedAt: T0 + 2,
        readyAt: T0 + 2,
      };
      assert.equal(await store.releaseTask(same.taskId, version, null, T0 + 2), true);
      assert.equal(await store.releaseTask(chmodded.taskId, { ...version, ctimeMs: 9 }, null, T0 + 2), true);
      const [kept, reset] = await allTasks(store, 'r1');
      assert.deepEqual([kept?.attempts, kept?.bytesUploaded], [1, 40]);
      assert.deepEqual([reset?.attempts, reset?.bytesUploaded, reset?.ctimeMs], [0, 0, 9]);
    });

    it('requeues a completed task to be hashed first when verify asks for it', async () => {
      const task = await completedTask();
      const requeue = { checkedEtag: task.etag, reason: 'ctime', forgetUpload: false, hashFirst: true };
      assert.equal(await store.requeueCompletedTask(task.taskId, requeue, T0 + 5), true);
      const after = await taskOf(store, task.taskId);
      assert.deepEqual([after.status, after.hashFirst, after.sha256], ['pending', true, task.sha256]);
    });
  });
}
