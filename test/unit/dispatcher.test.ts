// The dispatcher over a real SQLite store, with a runner that the test controls.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { FileTask } from '../../src/domain/model.js';
import { Dispatcher } from '../../src/engine/dispatcher.js';
import { createLogger } from '../../src/logger.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Store } from '../../src/store/store.js';
import { waitFor } from '../support/poll.js';
import { uploadOf } from '../support/store-fixtures.js';

const logger = createLogger('silent');
let folder: string;
let store: Store;

beforeEach(async () => {
  folder = await mkdtemp(path.join(tmpdir(), 'dispatcher-test-'));
  store = openSqliteStore(path.join(folder, 'state.db'));
});

afterEach(async () => {
  await store.close();
  await rm(folder, { recursive: true, force: true });
});

/** An active upload with `count` files, ready at `readyAt`. */
async function activeRequestWithFiles(uploadId: string, count: number, readyAt: number): Promise<void> {
  const now = Date.now();
  await store.createUpload(
    { uploadId, sourceFolder: folder, destinationBucket: 'bucket', destinationPrefix: '', pattern: '**' },
    now,
  );
  await store.activateUpload(uploadId, now);
  const files = Array.from({ length: count }, (_, i) => ({
    relativePath: `f${i}.bin`,
    size: i,
    mtimeMs: now - 10_000,
    ino: 1,
    ctimeMs: now - 10_000,
    observedAt: now,
  }));
  await store.recordObservedFiles(
    uploadId,
    files,
    (p) => p,
    () => ({ readyAt, settledAt: readyAt }),
    now,
  );
}

/** A runner that completes each task when the test says so, and counts how many run at once. */
function controlledRunner() {
  const waiting = new Map<number, () => void>();
  const ran: number[] = [];
  let running = 0;
  let mostAtOnce = 0;
  const runTask = async (task: FileTask): Promise<void> => {
    running++;
    mostAtOnce = Math.max(mostAtOnce, running);
    ran.push(task.taskId);
    await new Promise<void>((resolve) => waiting.set(task.taskId, resolve));
    await store.completeTask(task.taskId, uploadOf(task, 'e'), Date.now());
    running--;
  };
  const finishAll = (): void => {
    for (const [taskId, finish] of waiting) {
      waiting.delete(taskId);
      finish();
    }
  };
  return { runTask, finishAll, ran, waiting, mostAtOnce: () => mostAtOnce };
}

describe('dispatcher', () => {
  it('runs every ready task once, never more at a time than the bound', async () => {
    await activeRequestWithFiles('bounded', 20, Date.now());
    const runner = controlledRunner();
    const dispatcher = new Dispatcher({ store, maxConcurrentFiles: 3, runTask: runner.runTask, logger });
    dispatcher.start();
    try {
      await waitFor(
        () => {
          runner.finishAll();
          return runner.ran.length === 20;
        },
        { message: 'all 20 tasks ran' },
      );
      runner.finishAll();
      await dispatcher.drain();
      assert.equal(runner.mostAtOnce(), 3);
      assert.equal(new Set(runner.ran).size, 20, 'no task ran twice');
      assert.equal((await store.uploadTotals('bounded')).files.completed, 20);
    } finally {
      await dispatcher.stop();
    }
  });

  it('weighs claims by the memory each file holds: many small files at once, few large ones', async () => {
    // f0..f9 weigh 1 (small), f10..f19 weigh 5 (large); 10 to share, 8 files at most.
    await activeRequestWithFiles('weighed', 20, Date.now());
    const bytesOf = (size: number) => (size < 10 ? 1 : 5);
    const running = new Map<number, number>();
    let heaviest = 0;
    let mostLarge = 0;
    const runner = controlledRunner();
    const runTask = async (task: FileTask): Promise<void> => {
      running.set(task.taskId, bytesOf(task.size));
      heaviest = Math.max(
        heaviest,
        [...running.values()].reduce((sum, bytes) => sum + bytes, 0),
      );
      mostLarge = Math.max(mostLarge, [...running.values()].filter((bytes) => bytes === 5).length);
      try {
        await runner.runTask(task);
      } finally {
        running.delete(task.taskId);
      }
    };
    const memory = { bytes: 10, bytesOf };
    const dispatcher = new Dispatcher({ store, maxConcurrentFiles: 8, memory, runTask, logger });
    dispatcher.start();
    try {
      await waitFor(() => runner.ran.length === 8, { message: 'the first 8 small files claimed' });
      await waitFor(
        () => {
          runner.finishAll();
          return runner.ran.length === 20;
        },
        { message: 'all 20 tasks ran' },
      );
      runner.finishAll();
      await dispatcher.drain();
      assert.equal(runner.mostAtOnce(), 8, 'small files up to the bound on files');
      // The task that reaches the budget is claimed: past it by less than one file.
      assert.ok(heaviest <= 10 + 4, `${heaviest} bytes held at once`);
      assert.ok(mostLarge <= 2, `${mostLarge} large files at once`);
      assert.equal((await store.uploadTotals('weighed')).files.completed, 20);
    } finally {
      await dispatcher.stop();
    }
  });

  it('claims a task when its ready time comes, without being woken', async () => {
    const readyAt = Date.now() + 300;
    await activeRequestWithFiles('settling', 1, readyAt);
    const runner = controlledRunner();
    const dispatcher = new Dispatcher({ store, maxConcurrentFiles: 2, runTask: runner.runTask, logger });
    dispatcher.start();
    try {
      await waitFor(() => runner.ran.length === 1, { timeoutMs: 3000, message: 'the task ran' });
      assert.ok(Date.now() >= readyAt, 'not before its ready time');
      runner.finishAll();
      await dispatcher.drain();
    } finally {
      await dispatcher.stop();
    }
  });

  it('claims nothing of a cancelled upload, and nothing once stopped', async () => {
    await activeRequestWithFiles('cancelled', 3, Date.now());
    await store.cancelUpload('cancelled', Date.now());
    const runner = controlledRunner();
    const dispatcher = new Dispatcher({ store, maxConcurrentFiles: 2, runTask: runner.runTask, logger });
    dispatcher.start();
    await activeRequestWithFiles('late', 1, Date.now());
    dispatcher.wake();
    await waitFor(() => runner.ran.length === 1, { message: 'the live task ran' });
    runner.finishAll();
    await dispatcher.drain();
    await dispatcher.stop();
    // Its loop has ended: a wake-up finds no loop to run, so nothing is claimed.
    await activeRequestWithFiles('after-stop', 2, Date.now());
    dispatcher.wake();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(runner.ran.length, 1, 'only the live task ran');
    assert.equal((await store.uploadTotals('after-stop')).files.pending, 2);
  });

  it('polls an idle queue at its poll interval, and claims at once when woken', async () => {
    let polls = 0;
    const runner = controlledRunner();
    const dispatcher = new Dispatcher({
      store,
      maxConcurrentFiles: 4,
      runTask: runner.runTask,
      logger,
      pollMs: () => {
        polls += 1;
        return 60_000;
      },
    });
    dispatcher.start();
    await waitFor(() => polls === 1, { timeoutMs: 2000, message: 'the first pass looked at the queue' });
    // Recorded behind its back (as another instance would): only a wake-up has it claimed now.
    await activeRequestWithFiles('woken', 1, Date.now());
    const wokenAt = Date.now();
    dispatcher.wake();
    await waitFor(() => runner.ran.length === 1, {
      timeoutMs: 2000,
      message: 'the woken dispatcher claimed',
    });
    assert.ok(Date.now() - wokenAt < 1000, 'claimed well before the next poll');
    runner.finishAll();
    await dispatcher.stop();
    await dispatcher.drain();
  });
});
