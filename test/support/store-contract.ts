// The behaviour every Store implementation must have, as one suite that each implementation runs
// with its own factory: describeStoreContract('sqlite', async () => ({ store, cleanup })).
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { FileTask, ObservedFile } from '../../src/domain/model.js';
import { DuplicateUploadIdError } from '../../src/store/store.js';
import type { Store } from '../../src/store/store.js';
import { InvalidCursorError } from '../../src/store/errors.js';
import { describeArrivalContract } from './store-contract-arrivals.js';
import { describeExistingObjectsContract } from './store-contract-existing.js';
import { describeAuditContract } from './store-contract-audit.js';
import { describeFairnessContract } from './store-contract-fairness.js';
import { describeInstanceContract } from './store-contract-instances.js';
import { describeRunContract } from './store-contract-runs.js';
import { describeVersionContract } from './store-contract-versions.js';
import {
  T0,
  activeRequestWith,
  allTasks,
  keyFor,
  newUpload,
  observed,
  readyAt,
  taskOf,
  totalsOf,
  uploadOf,
} from './store-fixtures.js';
import type { StoreUnderTest } from './store-fixtures.js';
import { NO_OBJECT_PROPERTIES, type ObjectProperties } from '../../src/domain/object-properties.js';

export function describeStoreContract(name: string, makeStore: () => Promise<StoreUnderTest>): void {
  describe(`Store contract: ${name}`, () => {
    let subject: StoreUnderTest;
    let store: Store;
    beforeEach(async () => {
      subject = await makeStore();
      store = subject.store;
    });
    afterEach(async () => {
      await subject.cleanup();
    });

    describe('uploads', () => {
      it('creates a pending upload and reads it back', async () => {
        const created = await store.createUpload(newUpload('r1'), T0);
        assert.deepEqual(created, {
          ...newUpload('r1'),
          status: 'pending',
          createdAt: T0,
          updatedAt: T0,
          lastError: null,
          lastCompletedAt: null,
          watch: true,
          completedAt: null,
          ifExists: 'overwrite',
          listedAt: null,
          watchedBy: null,
          objectProperties: NO_OBJECT_PROPERTIES,
          completeMarkers: [],
          manifestKey: null,
          notifyUrl: null,
          scannedAt: null,
          arrival: null,
          manifest: null,
          notification: null,
        });
        assert.deepEqual(await store.getUpload('r1'), created);
        const oneShot = await store.createUpload({ ...newUpload('r2'), watch: false }, T0);
        assert.deepEqual([oneShot.watch, oneShot.completedAt], [false, null]);
        const objectProperties: ObjectProperties = {
          storageClass: 'GLACIER_IR',
          sse: 'aws:kms',
          sseKmsKeyId: 'alias/archive',
          metadata: { project: 'genomics', 'run-id': '42' },
          tags: { lab: 'seq uencing', 'a/b': '' },
        };
        const withProperties = await store.createUpload({ ...newUpload('r3'), objectProperties }, T0);
        assert.deepEqual(withProperties.objectProperties, objectProperties);
        assert.deepEqual((await store.getUpload('r3'))?.objectProperties, objectProperties);
        assert.equal(await store.getUpload('missing'), undefined);
      });

      it('refuses a duplicate upload id with DuplicateUploadIdError', async () => {
        await store.createUpload(newUpload('r1'), T0);
        await assert.rejects(store.createUpload(newUpload('r1'), T0 + 1), (error: unknown) => {
          assert.ok(error instanceof DuplicateUploadIdError);
          assert.equal(error.uploadId, 'r1');
          return true;
        });
      });

      it('lists uploads of the given statuses, oldest first then by id', async () => {
        await store.createUpload(newUpload('b'), T0 + 1);
        await store.createUpload(newUpload('a'), T0 + 1);
        await store.createUpload(newUpload('c'), T0);
        await store.createUpload(newUpload('d'), T0 + 2);
        await store.activateUpload('a', T0 + 3);
        await store.cancelUpload('d', T0 + 3);
        const ids = async (statuses: Parameters<Store['listUploads']>[0]) =>
          (await store.listUploads(statuses)).map((r) => r.uploadId);
        assert.deepEqual(await ids(['pending', 'active', 'cancelled']), ['c', 'a', 'b', 'd']);
        assert.deepEqual(await ids(['pending', 'active']), ['c', 'a', 'b']);
        assert.deepEqual(await ids(['cancelled']), ['d']);
        assert.deepEqual(await ids([]), []);
      });

      it('activates only a pending upload and cancels only an open one', async () => {
        await store.createUpload(newUpload('r1'), T0);
        assert.equal(await store.activateUpload('r1', T0 + 5), true);
        assert.equal(await store.activateUpload('r1', T0 + 6), false);
        assert.equal((await store.getUpload('r1'))?.updatedAt, T0 + 5);
        assert.equal(await store.cancelUpload('r1', T0 + 7), true);
        assert.equal(await store.cancelUpload('r1', T0 + 8), false);
        assert.equal(await store.activateUpload('r1', T0 + 9), false);
        assert.equal((await store.getUpload('r1'))?.status, 'cancelled');

        await store.createUpload(newUpload('r2'), T0);
        assert.equal(await store.cancelUpload('r2', T0 + 1), true);
        assert.equal(await store.activateUpload('missing', T0), false);
        assert.equal(await store.cancelUpload('missing', T0), false);
      });

      it('completes an active one-shot upload only once every file of it is completed', async () => {
        await store.createUpload({ ...newUpload('once'), watch: false }, T0);
        assert.equal(await store.completeUpload('once', T0 + 1), false, 'pending: not scanned yet');
        assert.equal(await store.activateUpload('once', T0 + 1), true);
        await store.recordObservedFiles('once', observed(2), keyFor, readyAt(T0), T0 + 1);
        const claimed = await store.claimReadyTasks(T0 + 2, 2);
        const [first, second] = claimed;
        assert.ok(first && second);
        assert.equal(await store.completeUpload('once', T0 + 2), false, 'files in progress');
        await store.completeTask(first.taskId, uploadOf(first), T0 + 3);
        await store.failTask(second.taskId, { message: 'boom', kind: 'transient', retryAt: T0 + 9 }, T0 + 3);
        assert.equal(await store.completeUpload('once', T0 + 4), false, 'a file failed');
        assert.equal(await store.retryFailedTasks('once', T0 + 5), 1);
        assert.equal(await store.completeUpload('once', T0 + 5), false, 'a file pending');
        const [again] = await store.claimReadyTasks(T0 + 6, 1);
        assert.ok(again);
        await store.completeTask(again.taskId, uploadOf(again), T0 + 7);

        assert.equal(await store.completeUpload('once', T0 + 8), true);
        const completed = await store.getUpload('once');
        assert.deepEqual(
          [completed?.status, completed?.completedAt, completed?.updatedAt],
          ['completed', T0 + 8, T0 + 8],
        );
        assert.equal(await store.completeUpload('once', T0 + 9), false, 'already completed');
        assert.equal(await store.cancelUpload('once', T0 + 9), false, 'a completed upload is not cancelled');
        assert.deepEqual(
          (await store.listUploads(['completed'])).map((u) => u.uploadId),
          ['once'],
        );
        assert.deepEqual(await store.listUploads(['pending', 'active']), []);
        // Nothing is recorded or requeued for it any more.
        assert.equal(await store.recordObservedFiles('once', observed(3), keyFor, readyAt(T0), T0 + 10), 0);
        const done = await taskOf(store, first.taskId);
        const requeue = { checkedEtag: done.etag, reason: 'checked', forgetUpload: false };
        assert.equal(await store.requeueCompletedTask(done.taskId, requeue, T0 + 11), false);
      });

      it('never completes a watched upload, nor one with no such id', async () => {
        await activeRequestWith(store, 'watched', []);
        assert.equal(await store.completeUpload('watched', T0 + 1), false);
        assert.equal((await store.getUpload('watched'))?.status, 'active');
        assert.equal(await store.completeUpload('missing', T0 + 1), false);
      });

      it('cancelling takes pending and failed tasks out of the queue and keeps every status', async () => {
        const [failed, running, done, pending] = await activeRequestWith(store, 'r1', observed(4));
        await store.claimReadyTasks(T0, 3);
        const [other] = await activeRequestWith(store, 'r2', observed(1));
        assert.ok(failed && running && done && pending && other);
        await store.failTask(failed.taskId, { message: 'boom', kind: 'transient', retryAt: T0 + 10 }, T0 + 1);
        await store.completeTask(done.taskId, uploadOf(done), T0 + 1);
        const before = await allTasks(store, 'r1');
        assert.equal(await store.cancelUpload('r1', T0 + 5), true);

        const after = await allTasks(store, 'r1');
        assert.deepEqual(
          after.map((t) => [t.status, t.readyAt, t.updatedAt]),
          [
            ['failed', null, T0 + 5],
            ['in_progress', T0, T0],
            ['completed', T0, T0 + 1],
            ['pending', null, T0 + 5],
          ],
        );
        // Nothing else of the tasks changes.
        const queueFieldsAside = ({ readyAt: _, updatedAt: __, ...rest }: FileTask) => rest;
        assert.deepEqual(after.map(queueFieldsAside), before.map(queueFieldsAside));
        assert.deepEqual(await store.uploadTotals('r1'), totalsOf(after));
        assert.equal((await taskOf(store, other.taskId)).readyAt, T0, 'another upload keeps its queue');

        assert.equal(await store.cancelUpload('r1', T0 + 6), false);
        assert.equal((await taskOf(store, pending.taskId)).updatedAt, T0 + 5);
      });

      it('never puts a task of a cancelled upload back in the queue', async () => {
        const [failing, releasing, recovering, retried] = await activeRequestWith(store, 'r1', observed(4));
        assert.ok(failing && releasing && recovering && retried);
        await store.claimReadyTasks(T0, 4);
        await store.failTask(
          retried.taskId,
          { message: 'boom', kind: 'transient', retryAt: T0 + 10 },
          T0 + 1,
        );
        await store.cancelUpload('r1', T0 + 2);

        assert.equal(
          await store.failTask(
            failing.taskId,
            { message: 'aborted', kind: 'transient', retryAt: T0 + 60 },
            T0 + 3,
          ),
          true,
        );
        const version = {
          size: 100,
          mtimeMs: 1000.5,
          ino: 1,
          ctimeMs: 1000.5,
          observedAt: T0 + 3,
          readyAt: T0 + 3,
        };
        assert.equal(await store.releaseTask(releasing.taskId, version, null, T0 + 3), true);
        assert.equal(await store.recoverInterruptedTasks(T0 + 4), 1);
        assert.equal(await store.requeueDueFailedTasks(T0 + 1000), 0);

        assert.deepEqual(
          (await allTasks(store, 'r1')).map((t) => [t.status, t.readyAt]),
          [
            ['failed', null],
            ['pending', null],
            ['pending', null],
            ['failed', null],
          ],
        );
        assert.equal(await store.nextReadyAt(), null);
        assert.deepEqual(await store.claimReadyTasks(T0 + 1000, 10), []);
      });

      it('sets and clears the last error', async () => {
        await store.createUpload(newUpload('r1'), T0);
        await store.setUploadError('r1', 'the folder is gone', T0 + 1);
        assert.equal((await store.getUpload('r1'))?.lastError, 'the folder is gone');
        assert.equal((await store.getUpload('r1'))?.updatedAt, T0 + 1);
        await store.setUploadError('r1', null, T0 + 2);
        assert.equal((await store.getUpload('r1'))?.lastError, null);
      });

      it('totals an upload with no tasks as zeros', async () => {
        await store.createUpload(newUpload('r1'), T0);
        assert.deepEqual(await store.uploadTotals('r1'), totalsOf([]));
      });
    });

    describe('recordObservedFiles', () => {
      it('creates pending tasks with their key, version, observedAt and readyAt', async () => {
        await store.createUpload(newUpload('r1'), T0);
        const files = [
          { relativePath: 'a.txt', size: 10, mtimeMs: 1234.25, ino: 7, ctimeMs: 1234.75, observedAt: T0 - 3 },
          { relativePath: 'sub/b.txt', size: 0, mtimeMs: 99, ino: 1, ctimeMs: 99, observedAt: T0 - 2 },
        ];
        const readyAtFor = (file: ObservedFile) => ({ readyAt: T0 + file.size, settledAt: T0 + file.size });
        assert.equal(await store.recordObservedFiles('r1', files, keyFor, readyAtFor, T0), 2);
        const [a, b] = await allTasks(store, 'r1');
        assert.ok(a && b);
        assert.deepEqual(
          { ...a, taskId: 0 },
          {
            taskId: 0,
            uploadId: 'r1',
            relativePath: 'a.txt',
            objectKey: 'key/a.txt',
            size: 10,
            mtimeMs: 1234.25,
            ino: 7,
            ctimeMs: 1234.75,
            status: 'pending',
            bytesUploaded: 0,
            attempts: 0,
            lastError: null,
            readyAt: T0 + 10,
            observedAt: T0 - 3,
            etag: null,
            validation: null,
            sha256: null,
            uploadedSize: null,
            streamRefused: false,
            hashFirst: false,
            interrupted: false,
            claimedBy: null,
            skipped: null,
            marker: false,
            createdAt: T0,
            updatedAt: T0,
            completedAt: null,
            failedAt: null,
          },
        );
        assert.equal(b.relativePath, 'sub/b.txt');
        assert.equal(b.readyAt, T0);
        assert.equal(b.observedAt, T0 - 2);
        assert.deepEqual(await store.getTask(a.taskId), a);
        assert.equal(await store.getTask(b.taskId + 1000), undefined);
        assert.equal(await store.recordObservedFiles('r1', [], keyFor, readyAt(T0), T0), 0);
      });

      it('refuses the files of an upload that does not exist', async () => {
        await assert.rejects(
          store.recordObservedFiles('missing', observed(1), keyFor, readyAt(T0), T0),
          /no upload 'missing'/,
        );
      });

      it('leaves an unchanged file untouched whatever its status', async () => {
        const files = observed(4);
        const [pending, running, done, failed] = await activeRequestWith(store, 'r1', files);
        assert.ok(pending && running && done && failed);
        await store.claimReadyTasks(T0, 4);
        const sameVersion = {
          size: 100,
          mtimeMs: 1000.5,
          ino: 1,
          ctimeMs: 1000.5,
          observedAt: T0,
          readyAt: T0,
        };
        await store.releaseTask(pending.taskId, sameVersion, null, T0);
        await store.completeTask(done.taskId, uploadOf(done), T0 + 1);
        await store.failTask(failed.taskId, { message: 'boom', kind: 'transient', retryAt: T0 + 50 }, T0 + 1);
        const before = await allTasks(store, 'r1');
        // Seen again later: not even observedAt is written, so a rescan of an unchanged tree is free.
        const seenLater = observed(4, 100, 0, T0 + 99);
        assert.equal(await store.recordObservedFiles('r1', seenLater, keyFor, readyAt(T0 + 99), T0 + 99), 0);
        assert.deepEqual(await allTasks(store, 'r1'), before);
        assert.deepEqual(
          before.map((t) => t.status),
          ['pending', 'in_progress', 'completed', 'failed'],
        );
      });

      it('puts a changed completed or failed task back to pending from scratch, keeping the last upload', async () => {
        const [done, failed] = await activeRequestWith(store, 'r1', observed(2));
        assert.ok(done && failed);
        await store.claimReadyTasks(T0, 2);
        await store.completeTask(done.taskId, uploadOf(done, '"e"', 'content-md5'), T0 + 1);
        await store.failTask(failed.taskId, { message: 'boom', kind: 'transient', retryAt: T0 + 50 }, T0 + 1);
        const changed = [
          {
            relativePath: done.relativePath,
            size: 100,
            mtimeMs: 2000,
            ino: 1,
            ctimeMs: 2000,
            observedAt: T0 + 19,
          },
          {
            relativePath: failed.relativePath,
            size: 250,
            mtimeMs: 1000.5,
            ino: 1,
            ctimeMs: 1000.5,
            observedAt: T0 + 18,
          },
        ];
        assert.equal(await store.recordObservedFiles('r1', changed, keyFor, readyAt(T0 + 30), T0 + 20), 2);
        for (const [task, file] of [
          [await taskOf(store, done.taskId), changed[0]],
          [await taskOf(store, failed.taskId), changed[1]],
        ] as const) {
          assert.equal(task.status, 'pending');
          assert.equal(task.size, file?.size);
          assert.equal(task.mtimeMs, file?.mtimeMs);
          assert.equal(task.observedAt, file?.observedAt);
          assert.equal(task.readyAt, T0 + 30);
          assert.equal(task.attempts, 0);
          assert.equal(task.bytesUploaded, 0);
          assert.equal(task.lastError, null);
          assert.equal(task.updatedAt, T0 + 20);
          assert.equal(task.createdAt, T0);
          assert.equal(task.completedAt, null);
        }
        // The last completed upload stays: it is the base an append copies from.
        const doneNow = await taskOf(store, done.taskId);
        assert.deepEqual(
          [doneNow.etag, doneNow.validation, doneNow.sha256, doneNow.uploadedSize],
          ['"e"', 'content-md5', 'ab'.repeat(32), done.size],
        );
        const failedNow = await taskOf(store, failed.taskId);
        assert.deepEqual([failedNow.etag, failedNow.sha256, failedNow.uploadedSize], [null, null, null]);
        assert.deepEqual(await store.uploadTotals('r1'), totalsOf(await allTasks(store, 'r1')));
      });

      it('moves a pending task to the new version and its new readyAt', async () => {
        const [task] = await activeRequestWith(store, 'r1', observed(1));
        assert.ok(task);
        const changed = [
          {
            relativePath: task.relativePath,
            size: 5,
            mtimeMs: 3000,
            ino: 1,
            ctimeMs: 3000,
            observedAt: T0 + 4,
          },
        ];
        assert.equal(await store.recordObservedFiles('r1', changed, keyFor, readyAt(T0 + 7), T0 + 5), 1);
        const after = await taskOf(store, task.taskId);
        assert.deepEqual(
          [after.status, after.size, after.mtimeMs, after.observedAt, after.readyAt],
          ['pending', 5, 3000, T0 + 4, T0 + 7],
        );
      });

      it('ignores an observation older than the one the task holds, and applies one as new or newer', async () => {
        const [task] = await activeRequestWith(store, 'r1', observed(1, 100, 0, T0 + 10));
        assert.ok(task);
        const seen = (size: number, observedAt: number) => [
          { relativePath: task.relativePath, size, mtimeMs: 2000, ino: 1, ctimeMs: 2000, observedAt },
        ];
        assert.equal(
          await store.recordObservedFiles('r1', seen(1, T0 + 9), keyFor, readyAt(T0 + 50), T0 + 20),
          0,
        );
        assert.deepEqual(await taskOf(store, task.taskId), task, 'an older observation changes nothing');

        assert.equal(
          await store.recordObservedFiles('r1', seen(2, T0 + 10), keyFor, readyAt(T0 + 50), T0 + 20),
          1,
        );
        assert.equal(
          await store.recordObservedFiles('r1', seen(3, T0 + 30), keyFor, readyAt(T0 + 60), T0 + 31),
          1,
        );
        const after = await taskOf(store, task.taskId);
        assert.deepEqual(
          [after.size, after.observedAt, after.readyAt, after.updatedAt],
          [3, T0 + 30, T0 + 60, T0 + 31],
        );
        // The scan that started before the last event reports the file late: it is overtaken.
        assert.equal(
          await store.recordObservedFiles('r1', seen(2, T0 + 25), keyFor, readyAt(T0 + 70), T0 + 40),
          0,
        );
        assert.deepEqual(await taskOf(store, task.taskId), after);
      });

      it('knows the newest observation stamp, the floor of the next ones', async () => {
        assert.equal(await store.latestObservedAt(), 0);
        await activeRequestWith(store, 'r1', observed(2, 100, 0, T0 + 10));
        await activeRequestWith(store, 'r2', observed(1, 100, 0, T0 + 99));
        assert.equal(await store.latestObservedAt(), T0 + 99);
      });

      it('leaves an in_progress task to its runner even when its file changed', async () => {
        const [task] = await activeRequestWith(store, 'r1', observed(1));
        assert.ok(task);
        const [claimed] = await store.claimReadyTasks(T0, 1);
        const changed = [
          {
            relativePath: task.relativePath,
            size: 5,
            mtimeMs: 3000,
            ino: 1,
            ctimeMs: 3000,
            observedAt: T0 + 5,
          },
        ];
        assert.equal(await store.recordObservedFiles('r1', changed, keyFor, readyAt(T0 + 7), T0 + 5), 0);
        assert.deepEqual(await store.getTask(task.taskId), claimed);
      });

      it('records nothing for a cancelled upload, neither a change nor a new file', async () => {
        const tasks = await activeRequestWith(store, 'r1', observed(2));
        await store.cancelUpload('r1', T0 + 1);
        const before = await allTasks(store, 'r1');
        const changedAndNew = observed(3, 700, 0, T0 + 5);
        assert.equal(
          await store.recordObservedFiles('r1', changedAndNew, keyFor, readyAt(T0 + 5), T0 + 5),
          0,
        );
        assert.deepEqual(await allTasks(store, 'r1'), before);
        assert.equal(before.length, tasks.length);
      });

      it('keeps the same path of two uploads apart', async () => {
        await activeRequestWith(store, 'r1', observed(2));
        await activeRequestWith(store, 'r2', observed(3));
        assert.equal((await allTasks(store, 'r1')).length, 2);
        assert.equal((await allTasks(store, 'r2')).length, 3);
      });
    });

    describe('listTasks', () => {
      it('pages 2,500 tasks by taskId with cursors', async () => {
        await activeRequestWith(store, 'r1', observed(2500));
        await activeRequestWith(store, 'other', observed(10));
        const seen: number[] = [];
        const pageSizes: number[] = [];
        let cursor: string | undefined;
        do {
          const page = await store.listTasks('r1', { limit: 1000, ...(cursor && { cursor }) });
          pageSizes.push(page.items.length);
          seen.push(...page.items.map((t) => t.taskId));
          assert.ok(page.items.every((t) => t.uploadId === 'r1'));
          cursor = page.nextCursor ?? undefined;
        } while (cursor !== undefined);
        assert.deepEqual(pageSizes, [1000, 1000, 500]);
        assert.equal(new Set(seen).size, 2500);
        assert.deepEqual(
          seen,
          [...seen].sort((a, b) => a - b),
        );
      });

      it('says there is no next page when the last page is exactly full', async () => {
        await activeRequestWith(store, 'r1', observed(4));
        const first = await store.listTasks('r1', { limit: 2 });
        assert.ok(first.nextCursor);
        const second = await store.listTasks('r1', { limit: 2, cursor: first.nextCursor });
        assert.equal(second.items.length, 2);
        assert.equal(second.nextCursor, null);
      });

      it('filters by status', async () => {
        await activeRequestWith(store, 'r1', observed(2500));
        const claimed = await store.claimReadyTasks(T0, 700);
        const running = await allTasks(store, 'r1', 'in_progress');
        assert.deepEqual(
          running.map((t) => t.taskId),
          claimed.map((t) => t.taskId).sort((a, b) => a - b),
        );
        const firstPage = await store.listTasks('r1', { status: 'pending', limit: 1000 });
        assert.equal(firstPage.items.length, 1000);
        assert.ok(firstPage.items.every((t) => t.status === 'pending'));
        assert.equal((await allTasks(store, 'r1', 'pending')).length, 1800);
        assert.deepEqual((await store.listTasks('r1', { status: 'failed', limit: 10 })).items, []);
      });

      it('rejects a cursor it did not make with InvalidCursorError', async () => {
        await activeRequestWith(store, 'r1', observed(1));
        for (const cursor of ['abc', '-1', '1.5', '', '99999999999999999999', ' 1']) {
          await assert.rejects(
            store.listTasks('r1', { limit: 10, cursor }),
            InvalidCursorError,
            `cursor '${cursor}'`,
          );
        }
      });
    });

    describeRunContract(() => store);
    describeFairnessContract(() => store);
    describeAuditContract(() => store);
    describeVersionContract(() => store);
    describeExistingObjectsContract(() => store);
    describeInstanceContract(() => store);
    describeArrivalContract(() => store);
  });
}
