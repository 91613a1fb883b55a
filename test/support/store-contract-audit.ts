// The Store contract, continued: what the checks of S3 against the store use (the orphan sweep's
// lookup of a task by its path, and verify's requeue of a completed task found wrong).
import { beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { FileTask } from '../../src/domain/model.js';
import type { Store } from '../../src/store/store.js';
import { T0, activeRequestWith, allTasks, observed, taskOf, totalsOf, uploadOf } from './store-fixtures.js';

/** `current` returns the store of the running test (each test gets a fresh one). */
export function describeAuditContract(current: () => Store): void {
  let store: Store;
  beforeEach(() => {
    store = current();
  });

  /** Completes every task of a new active upload, each with etag "e-<n>". */
  async function completedRequest(uploadId: string, count: number): Promise<FileTask[]> {
    await activeRequestWith(store, uploadId, observed(count));
    const claimed = await store.claimReadyTasks(T0, count);
    for (const [index, task] of claimed.entries()) {
      assert.equal(await store.completeTask(task.taskId, uploadOf(task, `e-${index}`), T0 + 1), true);
    }
    return allTasks(store, uploadId);
  }

  describe('checks of what S3 holds', () => {
    it('finds a task by its upload and relative path', async () => {
      const [first, second] = await activeRequestWith(store, 'r1', observed(2));
      await activeRequestWith(store, 'r2', observed(1));
      assert.ok(first && second);
      assert.deepEqual(await store.findTaskByPath('r1', second.relativePath), second);
      const inOther = await store.findTaskByPath('r2', first.relativePath);
      assert.equal(inOther?.uploadId, 'r2');
      assert.notEqual(inOther?.taskId, first.taskId);
      assert.equal(await store.findTaskByPath('r1', 'dir/none.txt'), undefined);
      assert.equal(await store.findTaskByPath('missing', first.relativePath), undefined);
    });

    it('requeues a completed task, ready now, forgetting its last upload when the object changed', async () => {
      const [task] = await completedRequest('r1', 1);
      assert.ok(task);
      const requeue = { checkedEtag: task.etag, reason: 'the object is missing in S3', forgetUpload: true };
      assert.equal(await store.requeueCompletedTask(task.taskId, requeue, T0 + 10), true);
      const requeued = await taskOf(store, task.taskId);
      assert.deepEqual(requeued, {
        ...task,
        status: 'pending',
        readyAt: T0 + 10,
        lastError: 'the object is missing in S3',
        bytesUploaded: 0,
        etag: null,
        validation: null,
        sha256: null,
        uploadedSize: null,
        completedAt: null,
        updatedAt: T0 + 10,
      });
      assert.deepEqual(await store.uploadTotals('r1'), totalsOf(await allTasks(store, 'r1')));
      assert.equal(await store.nextReadyAt(), T0 + 10);
      const [claimed] = await store.claimReadyTasks(T0 + 10, 1);
      assert.equal(claimed?.taskId, task.taskId, 'the dispatcher takes it again');
      assert.equal(await store.requeueCompletedTask(task.taskId, requeue, T0 + 11), false, 'not completed');
    });

    it('keeps the last upload when only the local file differs', async () => {
      const [task] = await completedRequest('r1', 1);
      assert.ok(task);
      const requeue = { checkedEtag: task.etag, reason: 'the local file holds 7 bytes', forgetUpload: false };
      assert.equal(await store.requeueCompletedTask(task.taskId, requeue, T0 + 10), true);
      const requeued = await taskOf(store, task.taskId);
      assert.deepEqual(
        [requeued.status, requeued.etag, requeued.validation, requeued.sha256, requeued.uploadedSize],
        ['pending', task.etag, task.validation, task.sha256, task.uploadedSize],
      );
      assert.equal(requeued.lastError, 'the local file holds 7 bytes');
    });

    it('requeues only a completed task still holding the etag checked, of an upload not cancelled', async () => {
      const [pending] = await activeRequestWith(store, 'r0', observed(1));
      assert.ok(pending);
      const anyEtag = { checkedEtag: null, reason: 'x', forgetUpload: true };
      assert.equal(await store.requeueCompletedTask(pending.taskId, anyEtag, T0 + 5), false, 'pending');
      await store.claimReadyTasks(T0, 1);
      assert.equal(await store.requeueCompletedTask(pending.taskId, anyEtag, T0 + 5), false, 'in_progress');
      await store.failTask(pending.taskId, { message: 'boom', kind: 'transient', retryAt: T0 + 50 }, T0 + 1);
      assert.equal(await store.requeueCompletedTask(pending.taskId, anyEtag, T0 + 5), false, 'failed');

      const [recompleted, ofCancelled] = [
        ...(await completedRequest('r1', 1)),
        ...(await completedRequest('r2', 1)),
      ];
      assert.ok(recompleted && ofCancelled);
      const stale = { checkedEtag: 'an-older-etag', reason: 'x', forgetUpload: true };
      assert.equal(
        await store.requeueCompletedTask(recompleted.taskId, stale, T0 + 5),
        false,
        'etag changed',
      );
      assert.deepEqual(await taskOf(store, recompleted.taskId), recompleted);

      assert.equal(await store.cancelUpload('r2', T0 + 2), true);
      const before = await taskOf(store, ofCancelled.taskId);
      const current = { checkedEtag: ofCancelled.etag, reason: 'x', forgetUpload: true };
      assert.equal(await store.requeueCompletedTask(ofCancelled.taskId, current, T0 + 5), false, 'cancelled');
      assert.deepEqual(await taskOf(store, ofCancelled.taskId), before);
      assert.equal(await store.requeueCompletedTask(999_999, current, T0 + 5), false, 'no such task');
    });
  });
}
