// The Store contract, continued: the listing of the objects already under an upload's prefix (see
// IfExists), and when it is forgotten.
import { beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Store } from '../../src/store/store.js';
import { T0, activeRequestWith, newUpload, observed, uploadOf } from './store-fixtures.js';

/** `current` returns the store of the running test (each test gets a fresh one). */
export function describeExistingObjectsContract(current: () => Store): void {
  let store: Store;
  beforeEach(() => {
    store = current();
  });

  describe('existing objects', () => {
    it('an upload keeps its if_exists; a listing is recorded page by page and complete once finished', async () => {
      const created = await store.createUpload({ ...newUpload('r1'), ifExists: 'skip_identical' }, T0);
      assert.deepEqual([created.ifExists, created.listedAt], ['skip_identical', null]);
      assert.equal((await store.createUpload(newUpload('r2'), T0)).ifExists, 'overwrite');
      await store.beginListing('r1');
      await store.recordExistingObjects('r1', [
        { key: 'key/a', size: 1, etag: 'e1' },
        { key: 'key/b', size: 2, etag: 'e2-2' },
      ]);
      // The same key again (a page asked twice) keeps the newest.
      await store.recordExistingObjects('r1', [{ key: 'key/b', size: 3, etag: 'e3' }]);
      assert.deepEqual(await store.getExistingObject('r1', 'key/a'), { size: 1, etag: 'e1' });
      assert.deepEqual(await store.getExistingObject('r1', 'key/b'), { size: 3, etag: 'e3' });
      assert.equal(await store.getExistingObject('r1', 'key/c'), undefined);
      assert.equal(await store.getExistingObject('r2', 'key/a'), undefined);
      await store.finishListing('r1', T0 + 5);
      assert.equal((await store.getUpload('r1'))?.listedAt, T0 + 5);
      // A listing started over forgets what the last one found, and is not complete.
      await store.beginListing('r1');
      assert.equal((await store.getUpload('r1'))?.listedAt, null);
      assert.equal(await store.getExistingObject('r1', 'key/a'), undefined);
    });

    it("a completed task forgets its key's object; a skipped one records why", async () => {
      const [task, other] = await activeRequestWith(store, 'r1', observed(2));
      assert.ok(task && other);
      await store.recordExistingObjects('r1', [
        { key: task.objectKey, size: 1, etag: 'e1' },
        { key: other.objectKey, size: 1, etag: 'e2' },
      ]);
      const claimed = await store.claimReadyTasks(T0 + 100, 2);
      assert.equal(claimed.length, 2);
      const skipped = { ...uploadOf(task, 'e1'), validation: null, sha256: null, skipped: 'already in S3' };
      assert.equal(await store.completeTask(task.taskId, skipped, T0 + 101), true);
      assert.equal(await store.getExistingObject('r1', task.objectKey), undefined);
      assert.deepEqual(await store.getExistingObject('r1', other.objectKey), { size: 1, etag: 'e2' });
      const recorded = await store.getTask(task.taskId);
      assert.deepEqual(
        [recorded?.skipped, recorded?.validation, recorded?.sha256, recorded?.etag],
        ['already in S3', null, null, 'e1'],
      );
      // Sent later: the record no longer says skipped.
      assert.equal(await store.completeTask(other.taskId, uploadOf(other), T0 + 102), true);
      assert.equal((await store.getTask(other.taskId))?.skipped, null);
    });

    it('a cancelled upload forgets its listing', async () => {
      await store.createUpload({ ...newUpload('r1'), ifExists: 'skip' }, T0);
      await store.recordExistingObjects('r1', [{ key: 'key/a', size: 1, etag: 'e1' }]);
      assert.equal(await store.cancelUpload('r1', T0 + 1), true);
      assert.equal(await store.getExistingObject('r1', 'key/a'), undefined);
    });
  });
}
