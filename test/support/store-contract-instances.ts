// The Store contract, continued: the instance a store serves, the tasks it holds, and claims
// limited to the uploads under its source roots. Behaviour that takes several instances (leases
// renewed, expired and reaped) is PostgreSQL's alone: test/unit/postgres-leases.test.ts.
import { beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { InstanceInfo } from '../../src/domain/instance.js';
import type { Store } from '../../src/store/store.js';
import { T0, keyFor, newUpload, observed, readyAt, taskOf, uploadOf } from './store-fixtures.js';

const INFO: InstanceInfo = { host: 'host-a', pid: 4242, version: '9.9.9', sourceRoots: ['/data'] };

/** `current` returns the store of the running test (each test gets a fresh one). */
export function describeInstanceContract(current: () => Store): void {
  let store: Store;
  beforeEach(() => {
    store = current();
  });

  /** An active upload of `sourceFolder` with `count` tasks of 100 bytes, ready at T0. */
  async function activeUploadOf(uploadId: string, sourceFolder: string, count: number): Promise<void> {
    await store.createUpload({ ...newUpload(uploadId), sourceFolder }, T0);
    assert.equal(await store.activateUpload(uploadId, T0), true);
    await store.recordObservedFiles(uploadId, observed(count), keyFor, readyAt(T0), T0);
  }

  describe('instances', () => {
    it('holds the tasks it claims under its own instance, until their run ends', async () => {
      await activeUploadOf('r1', '/data/r1', 2);
      const [task, other] = await store.claimReadyTasks(T0, 2);
      assert.ok(task && other);
      assert.equal(typeof store.instanceId, 'string');
      assert.ok(store.instanceId.length > 0);
      assert.deepEqual([task.claimedBy, other.claimedBy], [store.instanceId, store.instanceId]);
      assert.equal((await taskOf(store, task.taskId)).claimedBy, store.instanceId);
      const page = await store.listTasks('r1', { limit: 10 });
      assert.deepEqual(
        page.items.map((item) => item.claimedBy),
        [store.instanceId, store.instanceId],
      );
      assert.equal(await store.completeTask(task.taskId, uploadOf(task), T0 + 1), true);
      const failure = { message: 'boom', kind: 'transient' as const, retryAt: T0 + 5 };
      assert.equal(await store.failTask(other.taskId, failure, T0 + 1), true);
      for (const done of [task, other]) assert.equal((await taskOf(store, done.taskId)).claimedBy, null);
    });

    it('registers, beats with the tasks it holds, shows its work, and leaves', async () => {
      assert.deepEqual(await store.listInstances(), []);
      await assert.rejects(store.beat(), /not registered/);
      await store.registerInstance(INFO);
      await activeUploadOf('r1', '/data/r1', 3);
      await activeUploadOf('r2', '/data/r2', 1);
      const claimed = await store.claimReadyTasks(T0, 3);
      assert.equal(claimed.length, 3);
      const beat = await store.beat();
      assert.deepEqual(beat, {
        held: claimed.map((task) => task.taskId).sort((a, b) => a - b),
        watching: [],
        registeredAgain: false,
      });
      const [instance, ...others] = await store.listInstances();
      assert.deepEqual(others, []);
      assert.ok(instance);
      assert.deepEqual(
        { ...instance, startedAt: 0, heartbeatAt: 0, leaseMs: 0 },
        {
          instanceId: store.instanceId,
          ...INFO,
          startedAt: 0,
          heartbeatAt: 0,
          leaseMs: 0,
          work: { files: 3, bytes: 300, bytesUploaded: 0, uploadIds: ['r1', 'r2'] },
        },
      );
      assert.ok(instance.heartbeatAt >= instance.startedAt);
      assert.ok(instance.leaseMs > 0);
      const [first] = claimed;
      assert.ok(first);
      await store.completeTask(first.taskId, uploadOf(first), T0 + 1);
      assert.equal((await store.beat()).held.length, 2);
      assert.equal((await store.listInstances())[0]?.work.files, 2);
      await store.removeInstance();
      assert.deepEqual(await store.listInstances(), []);
    });

    it('claims only from the uploads under the source roots it is given', async () => {
      await activeUploadOf('inside', '/data/in', 2);
      await activeUploadOf('below', '/data/in/deeper', 2);
      // A name that starts like a root is not below it.
      await activeUploadOf('beside', '/data/inbox', 2);
      await activeUploadOf('elsewhere', '/srv/x', 2);
      const roots = ['/data/in', '/nowhere'];
      assert.equal(await store.nextReadyAt(['/nowhere']), null);
      assert.equal(await store.nextReadyAt(roots), T0);
      assert.deepEqual(await store.claimReadyTasks(T0, 10, { sourceRoots: ['/nowhere'] }), []);
      const claimed = await store.claimReadyTasks(T0, 10, { sourceRoots: roots });
      assert.deepEqual([...new Set(claimed.map((task) => task.uploadId))].sort(), ['below', 'inside']);
      assert.equal(claimed.length, 4);
      assert.equal(await store.nextReadyAt(roots), null);
      assert.equal(await store.nextReadyAt(null), T0);
      // With a budget too; and '/' holds every folder.
      const budget = { bytes: 1000, bytesOf: () => 1 };
      const rest = await store.claimReadyTasks(T0, 10, { budget, sourceRoots: ['/'] });
      assert.deepEqual([...new Set(rest.map((task) => task.uploadId))].sort(), ['beside', 'elsewhere']);
    });
  });
}
