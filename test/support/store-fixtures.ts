// Fixtures shared by the Store contract suites and the implementations' own tests.
import assert from 'node:assert/strict';
import { lstat } from 'node:fs/promises';
import type {
  FileVersion,
  CompletedUpload,
  EpochMs,
  FileReadiness,
  FileTask,
  MultipartState,
  NewUpload,
  ObservedFile,
  UploadTotals,
  ValidationMethod,
} from '../../src/domain/model.js';
import type { TaskStatus } from '../../src/domain/status.js';
import type { Store } from '../../src/store/store.js';
import { seededRandom } from './seeded-random.js';

export interface StoreUnderTest {
  store: Store;
  cleanup(): Promise<void>;
}

export const T0: EpochMs = 1_700_000_000_000;

export function newUpload(uploadId: string): NewUpload {
  return {
    uploadId,
    sourceFolder: `/data/${uploadId}`,
    destinationBucket: 'bucket',
    destinationPrefix: `backups/${uploadId}/`,
    pattern: '**/*.txt',
  };
}

export const keyFor = (relativePath: string): string => `key/${relativePath}`;
/** Every file ready (and settled) at `at`. */
export const readyAt = (at: EpochMs) => (): FileReadiness => ({ readyAt: at, settledAt: at });

/** `count` files named by number from `from`, all of one size and mtime, observed at `observedAt`. */
export function observed(count: number, size = 100, from = 0, observedAt = T0): ObservedFile[] {
  return Array.from({ length: count }, (_, i) => ({
    relativePath: `dir/file-${String(from + i).padStart(6, '0')}.txt`,
    size,
    mtimeMs: 1000.5,
    ino: 1,
    ctimeMs: 1000.5,
    observedAt,
  }));
}

/** Creates an active upload holding one pending task per file, ready at T0. */
export async function activeRequestWith(
  store: Store,
  uploadId: string,
  files: ObservedFile[],
): Promise<FileTask[]> {
  await store.createUpload(newUpload(uploadId), T0);
  assert.equal(await store.activateUpload(uploadId, T0), true);
  assert.equal(await store.recordObservedFiles(uploadId, files, keyFor, readyAt(T0), T0), files.length);
  return allTasks(store, uploadId);
}

export async function allTasks(store: Store, uploadId: string, status?: TaskStatus): Promise<FileTask[]> {
  const tasks: FileTask[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.listTasks(uploadId, {
      limit: 500,
      ...(status && { status }),
      ...(cursor && { cursor }),
    });
    tasks.push(...page.items);
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
  return tasks;
}

export async function taskOf(store: Store, taskId: number): Promise<FileTask> {
  const task = await store.getTask(taskId);
  assert.ok(task, `task ${taskId} should exist`);
  return task;
}

/** What uploadTotals must say, recomputed from the tasks themselves. */
export function totalsOf(tasks: readonly FileTask[]): UploadTotals {
  const totals: UploadTotals = {
    files: { pending: 0, in_progress: 0, completed: 0, failed: 0, total: 0 },
    bytes: { total: 0, uploaded: 0 },
  };
  for (const task of tasks) {
    totals.files[task.status] += 1;
    totals.files.total += 1;
    totals.bytes.total += task.size;
    totals.bytes.uploaded += task.status === 'completed' ? task.size : task.bytesUploaded;
  }
  return totals;
}

/**
 * Runs `steps` operations picked at random (seeded, so a failure replays) over active uploads
 * named from `uploadIds`, covering every kind of task transition, and calls `check` after each
 * with the ids of every upload so far. A cancel operation cancels one open upload and opens a
 * new one in its place, so that the operations keep meeting tasks of both kinds of upload.
 */
export async function runRandomOperations(
  store: Store,
  uploadIds: readonly string[],
  seed: number,
  steps: number,
  check: (step: number, uploadIds: readonly string[]) => Promise<void>,
): Promise<void> {
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T | undefined => items[Math.floor(random() * items.length)];
  const all = [...uploadIds];
  const open = [...uploadIds];
  const someUploadId = () => pick(all) ?? '';
  for (const uploadId of uploadIds) {
    await store.createUpload(newUpload(uploadId), T0);
    await store.activateUpload(uploadId, T0);
  }
  let now = T0;
  // observedAt straddles now, so that some observations are older than the task's.
  const randomFiles = (): ObservedFile[] =>
    Array.from({ length: 1 + Math.floor(random() * 8) }, () => ({
      relativePath: `f${Math.floor(random() * 40)}.txt`,
      size: Math.floor(random() * 3) * 100,
      mtimeMs: Math.floor(random() * 2),
      ino: 1,
      ctimeMs: Math.floor(random() * 2),
      observedAt: now - Math.floor(random() * 8),
    }));
  const cancelOne = async (): Promise<void> => {
    const index = Math.floor(random() * open.length);
    const [cancelled] = open.splice(index, 1);
    assert.ok(cancelled !== undefined);
    assert.equal(await store.cancelUpload(cancelled, now), true);
    const replacement = `${cancelled}+`;
    await store.createUpload(newUpload(replacement), now);
    await store.activateUpload(replacement, now);
    all.push(replacement);
    open.push(replacement);
  };
  // Each gets the current tasks; an id of 0 (no task) exercises the guards on a missing row.
  const operations: ((tasks: FileTask[]) => Promise<unknown>)[] = [
    () => store.recordObservedFiles(someUploadId(), randomFiles(), keyFor, readyAt(now), now),
    () => store.claimReadyTasks(now, 1 + Math.floor(random() * 5)),
    (tasks) => store.recordProgress(pick(tasks)?.taskId ?? 0, Math.floor(random() * 100), now),
    (tasks) => {
      const task = pick(tasks);
      return store.completeTask(
        task?.taskId ?? 0,
        uploadOf(task ?? { size: 1, mtimeMs: 1, ino: 1, ctimeMs: 1 }),
        now,
      );
    },
    (tasks) =>
      store.failTask(
        pick(tasks)?.taskId ?? 0,
        { message: 'boom', kind: 'transient', retryAt: now + Math.floor(random() * 20) },
        now,
      ),
    (tasks) => {
      const task = pick(tasks);
      const size = random() < 0.5 ? (task?.size ?? 0) : 700;
      const version = {
        size,
        mtimeMs: 3,
        ino: 1,
        ctimeMs: 3,
        observedAt: now,
        readyAt: random() < 0.2 ? null : now,
      };
      return store.releaseTask(task?.taskId ?? 0, version, null, now);
    },
    (tasks) => store.dropTask(pick(tasks)?.taskId ?? 0),
    () => store.requeueDueFailedTasks(now),
    // As the service does, which refuses a retry of a cancelled upload.
    () => store.retryFailedTasks(pick(open) ?? '', now),
    () => store.recoverInterruptedTasks(now),
    cancelOne,
  ];
  for (let step = 0; step < steps; step += 1) {
    now += Math.floor(random() * 5);
    const tasks = (await Promise.all(all.map((uploadId) => allTasks(store, uploadId)))).flat();
    const operation = pick(operations);
    assert.ok(operation);
    await operation(tasks);
    await check(step, all);
  }
}

/** A completed upload of the task's version, with a made-up SHA-256. */
export function uploadOf(
  task: Pick<FileTask, 'size' | 'mtimeMs' | 'ino' | 'ctimeMs'>,
  etag = '"e"',
  validation: ValidationMethod = 'etag',
): CompletedUpload {
  const { size, mtimeMs, ino, ctimeMs } = task;
  return { etag, validation, sha256: 'ab'.repeat(32), size, mtimeMs, ino, ctimeMs };
}

/** A multipart upload of a 100-byte file in 5-byte parts. */
export function multipartOf(taskId: number): Omit<MultipartState, 'parts' | 'createdAt'> {
  return {
    taskId,
    s3UploadId: 'upload-1',
    bucket: 'bucket',
    key: `key/${taskId}`,
    size: 100,
    mtimeMs: 1000.5,
    ino: 1,
    ctimeMs: 1000.5,
    partSize: 5,
    streamed: false,
    copiedBytes: 0,
    copySourceEtag: null,
  };
}

/** The version a task holds, as a completed upload of it records it. */
export function versionHeld(task: FileVersion): FileVersion {
  return { size: task.size, mtimeMs: task.mtimeMs, ino: task.ino, ctimeMs: task.ctimeMs };
}

/** The inode number and ctime of a file on disk: verify compares a completed task's with them. */
export async function identityOf(filePath: string): Promise<{ ino: number; ctimeMs: number }> {
  const stats = await lstat(filePath);
  return { ino: stats.ino, ctimeMs: stats.ctimeMs };
}
