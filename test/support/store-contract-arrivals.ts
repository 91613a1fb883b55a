// The Store contract, continued: arrivals. An upload's markers are claimed last, once its folder
// was scanned whole and its other files are done; a marker completed (or a one-shot upload
// completed with none) records the upload's arrival and, with a notify URL, its notification;
// the manifest lists the completed files that are not markers.
import { beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { EpochMs, FileTask, ManifestEntry, NewUpload, ObservedFile } from '../../src/domain/model.js';
import type { Store } from '../../src/store/store.js';
import { T0, keyFor, newUpload, taskOf, uploadOf } from './store-fixtures.js';

const MARKERS = ['RTAComplete.txt', '**/*.done'];
/** What the engine would make of MARKERS: the two kinds of name this suite gives its markers. */
const isMarker = (relativePath: string): boolean =>
  relativePath === 'RTAComplete.txt' || relativePath.endsWith('.done');

const NOTIFY_URL = 'https://hooks.example/arrived';

/** A file of `size` bytes at `relativePath`, observed at `observedAt`. */
function file(relativePath: string, size = 100, observedAt: EpochMs = T0): ObservedFile {
  return { relativePath, size, mtimeMs: 1000.5, ino: 1, ctimeMs: 1000.5, observedAt };
}

/** The same file, changed (a new mtime), observed at `observedAt`. */
function changed(task: FileTask, observedAt: EpochMs): ObservedFile {
  return { ...file(task.relativePath, task.size, observedAt), mtimeMs: observedAt, ctimeMs: observedAt };
}

const ids = (tasks: readonly FileTask[]): number[] => tasks.map((task) => task.taskId).sort((a, b) => a - b);

/** `current` returns the store of the running test (each test gets a fresh one). */
export function describeArrivalContract(current: () => Store): void {
  let store: Store;
  beforeEach(() => {
    store = current();
  });

  /**
   * An active upload with MARKERS whose files are `files`, each ready at `readyAtOf(path)` (T0 by
   * default); returns its tasks by path.
   */
  async function runFolder(
    uploadId: string,
    files: readonly ObservedFile[],
    options: Partial<NewUpload> & { readyAtOf?: (relativePath: string) => EpochMs } = {},
  ): Promise<Map<string, FileTask>> {
    const { readyAtOf = () => T0, ...upload } = options;
    await store.createUpload({ ...newUpload(uploadId), completeMarkers: MARKERS, ...upload }, T0);
    assert.equal(await store.activateUpload(uploadId, T0), true);
    await record(uploadId, files, T0, readyAtOf);
    return tasksOf(uploadId);
  }

  async function record(
    uploadId: string,
    files: readonly ObservedFile[],
    now: EpochMs,
    readyAtOf: (relativePath: string) => EpochMs = () => now,
  ): Promise<number> {
    const readiness = (observed: ObservedFile) => {
      const at = readyAtOf(observed.relativePath);
      return { readyAt: at, settledAt: at };
    };
    return store.recordObservedFiles(uploadId, files, keyFor, readiness, now, isMarker);
  }

  async function tasksOf(uploadId: string): Promise<Map<string, FileTask>> {
    const { items } = await store.listTasks(uploadId, { limit: 1000 });
    return new Map(items.map((task) => [task.relativePath, task]));
  }

  function the(tasks: Map<string, FileTask>, relativePath: string): FileTask {
    const task = tasks.get(relativePath);
    assert.ok(task, `a task of ${relativePath}`);
    return task;
  }

  /** Claims what is ready at `now` and completes it at `now`, until nothing is; returns the paths, in order. */
  async function uploadAll(now: EpochMs): Promise<string[]> {
    const done: string[] = [];
    let claimed = await store.claimReadyTasks(now, 10);
    while (claimed.length > 0) {
      for (const task of claimed) {
        assert.equal(await store.completeTask(task.taskId, uploadOf(task), now), true);
        done.push(task.relativePath);
      }
      claimed = await store.claimReadyTasks(now, 10);
    }
    return done;
  }

  const paths = (tasks: readonly FileTask[]): string[] => tasks.map((task) => task.relativePath).sort();

  describe('arrivals', () => {
    it('an upload keeps its markers, manifest key and notify URL, and has no arrival, manifest or notification yet', async () => {
      const created = await store.createUpload(
        {
          ...newUpload('r1'),
          completeMarkers: MARKERS,
          manifestKey: 'runs/r1/manifest.json',
          notifyUrl: NOTIFY_URL,
        },
        T0,
      );
      assert.deepEqual(
        [created.completeMarkers, created.manifestKey, created.notifyUrl],
        [MARKERS, 'runs/r1/manifest.json', NOTIFY_URL],
      );
      assert.deepEqual(
        [created.scannedAt, created.arrival, created.manifest, created.notification],
        [null, null, null, null],
      );
      assert.deepEqual(await store.getUpload('r1'), created);
      assert.deepEqual(await store.listUploads(['pending']), [created]);
      const plain = await store.createUpload(newUpload('r2'), T0);
      assert.deepEqual([plain.completeMarkers, plain.manifestKey, plain.notifyUrl], [[], null, null]);
      await store.markScanned('r1', T0 + 5);
      assert.equal((await store.getUpload('r1'))?.scannedAt, T0 + 5);
    });

    it('a task is a marker from its creation on, whatever a later observation says', async () => {
      const tasks = await runFolder('r1', [
        file('RTAComplete.txt'),
        file('lane1/a.done'),
        file('data/a.bcl'),
      ]);
      assert.deepEqual(
        [...tasks.values()].map((task) => [task.relativePath, task.marker]),
        [
          ['RTAComplete.txt', true],
          ['lane1/a.done', true],
          ['data/a.bcl', false],
        ],
      );
      const marker = the(tasks, 'RTAComplete.txt');
      const data = the(tasks, 'data/a.bcl');
      // Changed, and recorded without a word about markers: each stays what it was.
      const later = [changed(marker, T0 + 10), changed(data, T0 + 10), file('data/b.bcl', 1, T0 + 10)];
      assert.equal(
        await store.recordObservedFiles('r1', later, keyFor, () => ({ readyAt: T0, settledAt: T0 }), T0 + 10),
        3,
      );
      const after = await tasksOf('r1');
      assert.deepEqual(
        ['RTAComplete.txt', 'data/a.bcl', 'data/b.bcl'].map((path) => the(after, path).marker),
        [true, false, false],
      );
      assert.equal((await taskOf(store, marker.taskId)).marker, true);
    });

    it('a marker waits until its upload was scanned whole, and nextReadyAt passes over it meanwhile', async () => {
      const tasks = await runFolder('r1', [file('RTAComplete.txt')]);
      const marker = the(tasks, 'RTAComplete.txt');
      assert.deepEqual(await store.claimReadyTasks(T0 + 1, 10), []);
      assert.equal(await store.nextReadyAt(), null);
      assert.equal(await store.nextReadyAt(['/data']), null);
      await store.markScanned('r1', T0 + 1);
      assert.equal(await store.nextReadyAt(), T0);
      assert.equal(await store.nextReadyAt(['/data']), T0);
      assert.deepEqual(ids(await store.claimReadyTasks(T0 + 1, 10)), [marker.taskId]);
    });

    it('a marker waits while another file of its upload is pending (ready or not), in progress or failed', async () => {
      // The marker is ready first: a queue without markers would send it first.
      const readyAtOf = (path: string) => (path === 'RTAComplete.txt' ? T0 : T0 + 100);
      const tasks = await runFolder('r1', [file('RTAComplete.txt'), file('data/a.bcl')], { readyAtOf });
      const marker = the(tasks, 'RTAComplete.txt');
      const data = the(tasks, 'data/a.bcl');
      await store.markScanned('r1', T0);

      // Pending, not ready yet.
      assert.deepEqual(await store.claimReadyTasks(T0 + 10, 10), []);
      assert.equal(await store.nextReadyAt(), T0 + 100, "the other file's readyAt, not the marker's");
      // Pending and ready: it alone is claimed, whatever the claim's options.
      const budget = { bytes: 1_000_000, bytesOf: (size: number) => size };
      assert.deepEqual(ids(await store.claimReadyTasks(T0 + 100, 10, { budget, sourceRoots: ['/data'] })), [
        data.taskId,
      ]);
      // In progress.
      assert.deepEqual(await store.claimReadyTasks(T0 + 101, 10), []);
      assert.equal(await store.nextReadyAt(), null);
      // Failed, to be retried, and failed for good.
      const failure = { message: 'boom', kind: 'transient' as const, retryAt: T0 + 200 };
      assert.equal(await store.failTask(data.taskId, failure, T0 + 102), true);
      assert.deepEqual(await store.claimReadyTasks(T0 + 150, 10), []);
      assert.equal(await store.nextReadyAt(), null);
      assert.equal(await store.requeueDueFailedTasks(T0 + 200), 1);
      assert.deepEqual(ids(await store.claimReadyTasks(T0 + 200, 10)), [data.taskId]);
      const forGood = { message: 'key too long', kind: 'permanent' as const, retryAt: null };
      assert.equal(await store.failTask(data.taskId, forGood, T0 + 201), true);
      assert.deepEqual(await store.claimReadyTasks(T0 + 300, 10), []);
      assert.equal(await store.nextReadyAt(), null);

      // Completed: the marker goes, at its own readyAt.
      assert.equal(await store.retryFailedTasks('r1', T0 + 400), 1);
      assert.deepEqual(ids(await store.claimReadyTasks(T0 + 400, 1)), [data.taskId]);
      assert.equal(await store.completeTask(data.taskId, uploadOf(data), T0 + 401), true);
      assert.equal(await store.nextReadyAt(), T0);
      assert.deepEqual(ids(await store.claimReadyTasks(T0 + 402, 10, { budget })), [marker.taskId]);
    });

    it("a waiting marker holds up nothing else, and another upload's files do not hold it up", async () => {
      const readyAtOf = (path: string) => (path === 'RTAComplete.txt' ? T0 : T0 + 1);
      const a = await runFolder('a', [file('RTAComplete.txt'), file('data/a.bcl')], { readyAtOf });
      const b = await runFolder('b', [file('data/1.bcl'), file('data/2.bcl')]);
      await store.markScanned('a', T0);
      await store.markScanned('b', T0);
      // Its own upload's file ready after it, and the other upload's files, are all claimed.
      const claimed = await store.claimReadyTasks(T0 + 5, 10);
      assert.deepEqual(ids(claimed), ids([the(a, 'data/a.bcl'), the(b, 'data/1.bcl'), the(b, 'data/2.bcl')]));
      const data = the(a, 'data/a.bcl');
      assert.equal(await store.completeTask(data.taskId, uploadOf(data), T0 + 6), true);
      // b's files are still in progress: a's marker goes all the same.
      assert.deepEqual(ids(await store.claimReadyTasks(T0 + 6, 10)), [the(a, 'RTAComplete.txt').taskId]);
    });

    it('markers of one upload do not wait for each other', async () => {
      const tasks = await runFolder('r1', [
        file('RTAComplete.txt'),
        file('lane1/a.done'),
        file('data/a.bcl'),
      ]);
      await store.markScanned('r1', T0);
      assert.deepEqual(await uploadAll(T0 + 1), ['data/a.bcl', 'RTAComplete.txt', 'lane1/a.done']);
      // Both go again, in one claim or one while the other is in progress.
      const markers = [the(tasks, 'RTAComplete.txt'), the(tasks, 'lane1/a.done')];
      assert.equal(
        await record(
          'r1',
          markers.map((marker) => changed(marker, T0 + 10)),
          T0 + 10,
        ),
        2,
      );
      assert.deepEqual(paths(await store.claimReadyTasks(T0 + 10, 10)), ['RTAComplete.txt', 'lane1/a.done']);
      assert.equal(await store.recoverInterruptedTasks(T0 + 11), 2);
      assert.deepEqual(paths(await store.claimReadyTasks(T0 + 11, 1)), ['RTAComplete.txt']);
      assert.deepEqual(paths(await store.claimReadyTasks(T0 + 11, 1)), ['lane1/a.done']);
    });

    it("a marker completed records the arrival: its upload's other completed files, their bytes, its key; and the notification", async () => {
      const tasks = await runFolder(
        'r1',
        [
          file('data/a.bcl', 100),
          file('data/b.bcl', 200),
          file('data/c.bcl', 300),
          file('RTAComplete.txt', 7),
        ],
        { notifyUrl: NOTIFY_URL },
      );
      await store.markScanned('r1', T0);
      const claimed = await store.claimReadyTasks(T0 + 1, 10);
      assert.deepEqual(paths(claimed), ['data/a.bcl', 'data/b.bcl', 'data/c.bcl']);
      for (const task of claimed) {
        // a.bcl grew while it was streamed: it settled at 150 bytes, which is what was uploaded.
        const size = task.relativePath === 'data/a.bcl' ? 150 : task.size;
        assert.equal(await store.completeTask(task.taskId, uploadOf({ ...task, size }), T0 + 2), true);
      }
      assert.equal((await store.getUpload('r1'))?.arrival, null, 'no marker has gone up yet');
      const [marker] = await store.claimReadyTasks(T0 + 3, 10);
      assert.equal(marker?.relativePath, 'RTAComplete.txt');
      assert.equal(await store.completeTask(marker.taskId, uploadOf(marker), T0 + 50), true);
      const arrived = await store.getUpload('r1');
      assert.deepEqual(arrived?.arrival, {
        at: T0 + 50,
        files: 3,
        bytes: 650,
        markerKey: keyFor('RTAComplete.txt'),
      });
      assert.deepEqual(arrived?.notification, {
        status: 'pending',
        arrivalAt: T0 + 50,
        attempts: 0,
        lastError: null,
        lastAttemptAt: null,
        deliveredAt: null,
      });

      // Its notification delivered; then a new file, and the marker written again: a new arrival,
      // and its notification pending from scratch.
      const delivered = { status: 'delivered' as const, attempts: 2, lastError: null, at: T0 + 60 };
      assert.equal(await store.recordNotification('r1', T0 + 50, delivered), true);
      assert.equal(
        await record(
          'r1',
          [file('data/d.bcl', 1000, T0 + 70), changed(the(tasks, 'RTAComplete.txt'), T0 + 70)],
          T0 + 70,
        ),
        2,
      );
      assert.deepEqual(await uploadAll(T0 + 80), ['data/d.bcl', 'RTAComplete.txt']);
      const again = await store.getUpload('r1');
      assert.deepEqual(again?.arrival, {
        at: T0 + 80,
        files: 4,
        bytes: 1650,
        markerKey: keyFor('RTAComplete.txt'),
      });
      assert.deepEqual(again?.notification, {
        status: 'pending',
        arrivalAt: T0 + 80,
        attempts: 0,
        lastError: null,
        lastAttemptAt: null,
        deliveredAt: null,
      });
    });

    it('an upload without a notify URL records its arrival and no notification', async () => {
      await runFolder('r1', [file('data/a.bcl', 10), file('RTAComplete.txt', 7)]);
      await store.markScanned('r1', T0);
      assert.deepEqual(await uploadAll(T0 + 1), ['data/a.bcl', 'RTAComplete.txt']);
      const arrived = await store.getUpload('r1');
      assert.deepEqual(arrived?.arrival, {
        at: T0 + 1,
        files: 1,
        bytes: 10,
        markerKey: keyFor('RTAComplete.txt'),
      });
      assert.equal(arrived?.notification, null);
      assert.deepEqual(await store.takeNotifications(), []);
    });

    it('a marker completed in the same group commit as other files counts those completed before it, not after', async () => {
      const tasks = await runFolder('r1', [file('data/a.bcl', 10), file('RTAComplete.txt', 7)], {
        notifyUrl: NOTIFY_URL,
      });
      await runFolder('other', [file('RTAComplete.txt', 7)]);
      await store.markScanned('r1', T0);
      await store.markScanned('other', T0);
      const marker = the(tasks, 'RTAComplete.txt');
      assert.deepEqual(await uploadAll(T0 + 1), ['RTAComplete.txt', 'data/a.bcl', 'RTAComplete.txt']);

      // The marker written again and claimed; then a new file found, and claimed while it runs.
      await record('r1', [changed(marker, T0 + 10)], T0 + 10);
      assert.deepEqual(paths(await store.claimReadyTasks(T0 + 10, 10)), ['RTAComplete.txt']);
      await record('r1', [file('data/b.bcl', 20, T0 + 11)], T0 + 11);
      const [late] = await store.claimReadyTasks(T0 + 11, 10);
      assert.equal(late?.relativePath, 'data/b.bcl');
      // Completed together, the file after the marker: the arrival leaves it out.
      const otherMarker = the(await tasksOf('other'), 'RTAComplete.txt');
      await record('other', [changed(otherMarker, T0 + 12)], T0 + 12);
      const [otherClaimed] = await store.claimReadyTasks(T0 + 12, 10);
      assert.equal(otherClaimed?.taskId, otherMarker.taskId);
      assert.deepEqual(
        await Promise.all([
          store.completeTask(marker.taskId, uploadOf(marker), T0 + 20),
          store.completeTask(late.taskId, uploadOf(late), T0 + 21),
          store.completeTask(otherMarker.taskId, uploadOf(otherMarker), T0 + 22),
        ]),
        [true, true, true],
      );
      assert.deepEqual((await store.getUpload('r1'))?.arrival, {
        at: T0 + 20,
        files: 1,
        bytes: 10,
        markerKey: keyFor('RTAComplete.txt'),
      });
      assert.equal((await store.getUpload('r1'))?.notification?.arrivalAt, T0 + 20);
      assert.deepEqual((await store.getUpload('other'))?.arrival, {
        at: T0 + 22,
        files: 0,
        bytes: 0,
        markerKey: keyFor('RTAComplete.txt'),
      });

      // Once more, the file first: the arrival counts it.
      await record('r1', [changed(marker, T0 + 30)], T0 + 30);
      assert.deepEqual(paths(await store.claimReadyTasks(T0 + 30, 10)), ['RTAComplete.txt']);
      await record('r1', [file('data/c.bcl', 40, T0 + 31)], T0 + 31);
      const [later] = await store.claimReadyTasks(T0 + 31, 10);
      assert.ok(later);
      await Promise.all([
        store.completeTask(later.taskId, uploadOf(later), T0 + 40),
        store.completeTask(marker.taskId, uploadOf(marker), T0 + 41),
      ]);
      assert.deepEqual((await store.getUpload('r1'))?.arrival, {
        at: T0 + 41,
        files: 3,
        bytes: 70,
        markerKey: keyFor('RTAComplete.txt'),
      });
    });

    it('a one-shot upload completed with no marker records its arrival; one whose marker went up keeps that one', async () => {
      await runFolder('once', [file('a.bcl', 10), file('b.bcl', 20)], {
        watch: false,
        notifyUrl: NOTIFY_URL,
      });
      await uploadAll(T0 + 1);
      assert.equal((await store.getUpload('once'))?.arrival, null);
      assert.equal(await store.completeUpload('once', T0 + 9), true);
      const completed = await store.getUpload('once');
      assert.deepEqual(completed?.arrival, { at: T0 + 9, files: 2, bytes: 30, markerKey: null });
      assert.deepEqual(completed?.notification, {
        status: 'pending',
        arrivalAt: T0 + 9,
        attempts: 0,
        lastError: null,
        lastAttemptAt: null,
        deliveredAt: null,
      });

      await runFolder('marked', [file('a.bcl', 10), file('RTAComplete.txt', 7)], { watch: false });
      await store.markScanned('marked', T0);
      await uploadAll(T0 + 20);
      const arrival = { at: T0 + 20, files: 1, bytes: 10, markerKey: keyFor('RTAComplete.txt') };
      assert.deepEqual((await store.getUpload('marked'))?.arrival, arrival);
      assert.equal(await store.completeUpload('marked', T0 + 30), true);
      const marked = await store.getUpload('marked');
      assert.deepEqual([marked?.status, marked?.arrival, marked?.notification], ['completed', arrival, null]);

      // Not completed (a file is left): no arrival.
      await runFolder('left', [file('a.bcl', 10)], { watch: false, notifyUrl: NOTIFY_URL });
      assert.equal(await store.completeUpload('left', T0 + 40), false);
      assert.deepEqual(
        [(await store.getUpload('left'))?.arrival, (await store.getUpload('left'))?.notification],
        [null, null],
      );
    });

    it('the manifest pages through the completed files that are not markers, by taskId', async () => {
      const names = Array.from({ length: 7 }, (_, i) => `data/${i}.bcl`);
      const tasks = await runFolder('r1', [
        ...names.map((name, i) => file(name, 10 + i)),
        file('RTAComplete.txt'),
      ]);
      await store.markScanned('r1', T0);
      // Every file completed (3 skipped: an object was there), then the marker.
      const claimed = await store.claimReadyTasks(T0 + 1, 10);
      assert.deepEqual(paths(claimed), names);
      for (const task of claimed) {
        const completed =
          task.relativePath === 'data/3.bcl'
            ? { ...uploadOf(task, 'e3'), validation: null, sha256: null, skipped: 'already in S3' }
            : uploadOf(task, `"e${task.relativePath}"`);
        assert.equal(await store.completeTask(task.taskId, completed, T0 + 2), true);
      }
      assert.deepEqual(await uploadAll(T0 + 3), ['RTAComplete.txt']);
      // Then 5 changed and failed, 6 changed and pending; another upload's file completed.
      const changedFiles = ['data/5.bcl', 'data/6.bcl'].map((path) => changed(the(tasks, path), T0 + 5));
      assert.equal(await record('r1', changedFiles, T0 + 5), 2);
      for (const task of await store.claimReadyTasks(T0 + 5, 10)) {
        if (task.relativePath === 'data/5.bcl') {
          const failure = { message: 'boom', kind: 'transient' as const, retryAt: T0 + 99 };
          assert.equal(await store.failTask(task.taskId, failure, T0 + 6), true);
        } else {
          const release = { ...changed(task, T0 + 6), readyAt: T0 + 1000 };
          assert.equal(await store.releaseTask(task.taskId, release, null, T0 + 6), true);
        }
      }
      await runFolder('other', [file('data/x.bcl')]);
      assert.deepEqual(await uploadAll(T0 + 7), ['data/x.bcl']);

      const pages: ManifestEntry[][] = [];
      for (let after = 0; ;) {
        const page = await store.manifestEntries('r1', after, 2);
        if (page.length === 0) break;
        pages.push(page);
        after = page.at(-1)!.taskId;
      }
      assert.deepEqual(
        pages.map((page) => page.length),
        [2, 2, 1],
      );
      const expected = [0, 1, 2, 3, 4].map((i) => {
        const task = the(tasks, `data/${i}.bcl`);
        return {
          taskId: task.taskId,
          key: keyFor(task.relativePath),
          size: 10 + i,
          sha256: i === 3 ? null : 'ab'.repeat(32),
          etag: i === 3 ? 'e3' : `"e${task.relativePath}"`,
          mtimeMs: 1000.5,
        };
      });
      assert.deepEqual(pages.flat(), expected);
      // From a bound, and a limit: one page.
      const third = expected[2]!;
      assert.deepEqual(await store.manifestEntries('r1', third.taskId - 1, 1), [third]);
      assert.deepEqual(await store.manifestEntries('missing', 0, 10), []);
      await assert.rejects(store.manifestEntries('r1', 0, 0), RangeError);
    });

    it('records the manifest written, and the next one in its place', async () => {
      await runFolder('r1', [], { manifestKey: 'runs/r1/manifest.json' });
      const manifest = {
        key: 'runs/r1/manifest.json',
        files: 3,
        bytes: 650,
        sha256: 'cd'.repeat(32),
        writtenAt: T0 + 5,
      };
      await store.recordManifest('r1', manifest);
      assert.deepEqual((await store.getUpload('r1'))?.manifest, manifest);
      const next = { ...manifest, files: 4, bytes: 1650, writtenAt: T0 + 9 };
      await store.recordManifest('r1', next);
      assert.deepEqual((await store.getUpload('r1'))?.manifest, next);
      assert.equal((await store.getUpload('r1'))?.arrival, null);
    });

    it('takes the pending notifications, and records how a delivery went for its arrival only', async () => {
      for (const [uploadId, at] of [
        ['second', T0 + 20],
        ['first', T0 + 10],
      ] as const) {
        await runFolder(uploadId, [file('RTAComplete.txt')], { notifyUrl: NOTIFY_URL });
        await store.markScanned(uploadId, T0);
        await uploadAll(at);
      }
      await runFolder('silent', [file('RTAComplete.txt')]);
      await store.markScanned('silent', T0);
      await uploadAll(T0 + 5);
      const pending = async () => (await store.takeNotifications()).map((upload) => upload.uploadId);
      assert.deepEqual(await pending(), ['first', 'second']);
      const [first] = await store.takeNotifications();
      assert.equal(first?.notification?.status, 'pending');
      assert.equal(first?.arrival?.at, T0 + 10);

      // Another arrival's time: nothing changes.
      const refused = { status: 'delivered' as const, attempts: 1, lastError: null, at: T0 + 30 };
      assert.equal(await store.recordNotification('first', T0 + 11, refused), false);
      assert.equal(await store.recordNotification('missing', T0 + 10, refused), false);
      assert.equal(await store.recordNotification('silent', T0 + 5, refused), false);
      assert.deepEqual((await store.getUpload('first'))?.notification, first?.notification);

      // An attempt failed, to be tried again: still pending.
      const retry = { status: 'pending' as const, attempts: 1, lastError: 'HTTP 503', at: T0 + 30 };
      assert.equal(await store.recordNotification('first', T0 + 10, retry), true);
      assert.deepEqual((await store.getUpload('first'))?.notification, {
        status: 'pending',
        arrivalAt: T0 + 10,
        attempts: 1,
        lastError: 'HTTP 503',
        lastAttemptAt: T0 + 30,
        deliveredAt: null,
      });
      assert.deepEqual(await pending(), ['first', 'second']);
      const delivered = { status: 'delivered' as const, attempts: 2, lastError: null, at: T0 + 40 };
      assert.equal(await store.recordNotification('first', T0 + 10, delivered), true);
      const failed = { status: 'failed' as const, attempts: 5, lastError: 'timed out', at: T0 + 41 };
      assert.equal(await store.recordNotification('second', T0 + 20, failed), true);
      assert.deepEqual(await pending(), []);
      assert.deepEqual((await store.getUpload('first'))?.notification, {
        status: 'delivered',
        arrivalAt: T0 + 10,
        attempts: 2,
        lastError: null,
        lastAttemptAt: T0 + 40,
        deliveredAt: T0 + 40,
      });
      assert.deepEqual((await store.getUpload('second'))?.notification, {
        status: 'failed',
        arrivalAt: T0 + 20,
        attempts: 5,
        lastError: 'timed out',
        lastAttemptAt: T0 + 41,
        deliveredAt: null,
      });

      // A newer arrival meanwhile: a late outcome of the older one is not recorded over it.
      const marker = the(await tasksOf('second'), 'RTAComplete.txt');
      await record('second', [changed(marker, T0 + 50)], T0 + 50);
      await uploadAll(T0 + 60);
      assert.equal(await store.recordNotification('second', T0 + 20, delivered), false);
      assert.deepEqual(await pending(), ['second']);
      assert.equal((await store.getUpload('second'))?.notification?.arrivalAt, T0 + 60);
    });
  });
}
