// After an upload, the task runner looks at the file once more only when the monitor may have missed
// a write: when it observed the file during the upload, or when no monitor of this instance hears
// the upload's events (an upload watched by another instance sharing the database).
import assert from 'node:assert/strict';
import { stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { pino } from 'pino';
import { versionOf } from '../../src/domain/file-version.js';
import { InFlightFiles } from '../../src/engine/in-flight-files.js';
import { TaskRunner } from '../../src/engine/task-runner.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Uploader } from '../../src/transfer/types.js';
import { makeTempDir, removeTempDir, writeTreeFile } from '../support/temp-tree.js';

/** Runs the one task of a file rewritten while it is uploaded; returns its status afterwards. */
async function statusAfterRewriteDuringUpload(t: TestContext, watchedHere: boolean): Promise<string> {
  const root = await makeTempDir('task-runner-watch');
  const store = openSqliteStore(path.join(root, 'state.db'));
  t.after(async () => {
    await store.close();
    await removeTempDir(root);
  });
  const folder = path.join(root, 'source');
  const file = path.join(folder, 'a.txt');
  await writeTreeFile(file, 'first');
  const version = versionOf(await stat(file));
  const now = Date.now();
  await store.createUpload(
    { uploadId: 'u', sourceFolder: folder, destinationBucket: 'b', destinationPrefix: '', pattern: '**' },
    now,
  );
  await store.activateUpload('u', now);
  await store.recordObservedFiles(
    'u',
    [{ relativePath: 'a.txt', ...version, observedAt: now }],
    (p) => p,
    () => ({ readyAt: now, settledAt: now }),
    now,
  );
  const [task] = await store.claimReadyTasks(now, 1);
  assert.ok(task);
  const uploader: Uploader = {
    async upload(transfer) {
      // Rewritten while in flight: a watching monitor here would observe it, none does.
      await writeFile(transfer.filePath, 'second, longer');
      return {
        etag: 'e',
        validation: 'etag',
        sha256: '0'.repeat(64),
        ...version,
        method: 'single',
        bytesSent: version.size,
        bytesCopied: 0,
        partsReused: 0,
      };
    },
    async abortMultipart() {},
    writeObject: () => Promise.reject(new Error('no object is written in this test')),
  };
  const runner = new TaskRunner({
    store,
    uploader,
    logger: pino({ level: 'silent' }),
    readiness: { settleMs: 0, stream: undefined },
    failedRequeueIntervalMs: 60_000,
    s3Health: { confirmOutage: async () => false },
    observationClock: Date.now,
    inFlight: new InFlightFiles(),
    watchedHere: () => watchedHere,
  });
  await runner.run(task, new AbortController().signal, () => undefined);
  return (await store.getTask(task.taskId))!.status;
}

test('a file of an upload another instance watches is looked at after its upload: a rewrite is not missed', async (t) => {
  assert.equal(await statusAfterRewriteDuringUpload(t, false), 'pending');
});

test('a file of an upload watched here, which the monitor did not observe meanwhile, is not looked at again', async (t) => {
  assert.equal(await statusAfterRewriteDuringUpload(t, true), 'completed');
});
