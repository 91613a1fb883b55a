// verifyCompletedUploads pages through the store: however many tasks an upload has, it reads one
// page at a time and still checks every completed one, in task order.
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { MAX_LISTED_MISMATCHES, verifyCompletedUploads } from '../../src/service/verify.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Store } from '../../src/store/store.js';
import { FakeAuditor } from '../support/fake-auditor.js';
import { identityOf, readyAt, versionHeld } from '../support/store-fixtures.js';

/** An upload of `count` completed one-byte files; `inS3` says which objects S3 holds. */
async function uploadOfCompletedFiles(
  t: { after: (fn: () => Promise<void>) => void },
  count: number,
  inS3: (relativePath: string) => boolean,
) {
  const root = await mkdtemp(path.join(tmpdir(), 'verify-'));
  const folder = path.join(root, 'source');
  await mkdir(folder);
  const sqlite = openSqliteStore(path.join(root, 'state.db'));
  t.after(async () => {
    await sqlite.close();
    await rm(root, { recursive: true, force: true });
  });
  const limits: number[] = [];
  const store = new Proxy(sqlite, {
    get(target, property, receiver) {
      if (property === 'listTasks') {
        return (uploadId: string, options: Parameters<Store['listTasks']>[1]) => {
          limits.push(options.limit);
          return target.listTasks(uploadId, options);
        };
      }
      return Reflect.get(target, property, receiver) as unknown;
    },
  });
  const now = Date.now();
  await store.createUpload(
    { uploadId: 'big', sourceFolder: folder, destinationBucket: 'b', destinationPrefix: '', pattern: '**' },
    now,
  );
  await store.activateUpload('big', now);
  const names = Array.from({ length: count }, (_, i) => `f${String(i).padStart(5, '0')}.txt`);
  await Promise.all(names.map((name) => writeFile(path.join(folder, name), 'x')));
  const files = await Promise.all(
    names.map(async (relativePath) => {
      const identity = await identityOf(path.join(folder, relativePath));
      return { relativePath, size: 1, mtimeMs: 1, ...identity, observedAt: now };
    }),
  );
  await store.recordObservedFiles('big', files, (p) => p, readyAt(now), now);
  const auditor = new FakeAuditor();
  for (const task of await store.claimReadyTasks(now, count)) {
    const completed = { etag: 'e', validation: 'etag', sha256: 'ab', ...versionHeld(task) } as const;
    await store.completeTask(task.taskId, completed, now);
    if (inS3(task.relativePath)) auditor.putObject('b', task.objectKey, { size: 1, etag: 'e' });
  }
  const upload = await store.getUpload('big');
  assert.ok(upload);
  return { store, auditor, upload, names, limits };
}

test('lists the first 1,000 mismatches, and counts and requeues them all', async (t) => {
  const { store, auditor, upload } = await uploadOfCompletedFiles(t, 1203, () => false);
  const report = await verifyCompletedUploads({ store, auditor }, upload);
  assert.deepEqual(
    [report.checked, report.mismatched, report.mismatches.length, report.requeued],
    [1203, 1203, MAX_LISTED_MISMATCHES, 1203],
  );
  assert.equal(report.mismatches[0]?.relativePath, 'f00000.txt');
  assert.equal((await store.uploadTotals('big')).files.pending, 1203);
});

test('checks every completed task of a large upload, one page at a time', async (t) => {
  const count = 1203;
  // Every 100th object is missing in S3.
  const setup = await uploadOfCompletedFiles(t, count, (relativePath) => !relativePath.endsWith('00.txt'));
  const { store, auditor, upload, names, limits } = setup;
  const report = await verifyCompletedUploads({ store, auditor }, upload);
  assert.equal(report.checked, count);
  assert.equal(auditor.heads.length, count);
  assert.deepEqual(
    report.mismatches.map((mismatch) => mismatch.relativePath),
    names.filter((name) => name.endsWith('00.txt')),
  );
  assert.equal(report.requeued, 13);
  assert.ok(limits.length >= 3, `read in pages: ${limits.join(', ')}`);
  assert.ok(Math.max(...limits) <= 500, `no page above 500 tasks: ${limits.join(', ')}`);
});

test('reports a local file replaced (another inode) or changed in its ctime alone, with the same size', async (t) => {
  const { store, auditor, upload } = await uploadOfCompletedFiles(t, 3, () => true);
  const folder = upload.sourceFolder;
  // mv of another one-byte file over f00000; chmod of f00001; f00002 left alone.
  await writeFile(path.join(folder, 'staged'), 'y');
  await rename(path.join(folder, 'staged'), path.join(folder, 'f00000.txt'));
  await chmod(path.join(folder, 'f00001.txt'), 0o600);
  const report = await verifyCompletedUploads({ store, auditor }, upload);
  assert.deepEqual(
    report.mismatches.map(({ relativePath, reason }) => [relativePath, reason.split(' (')[0]]),
    [
      ['f00000.txt', 'the local file was replaced by another one'],
      ['f00001.txt', 'the local file changed since its upload'],
    ],
  );
  assert.equal(report.requeued, 2);
  const hashFirst = async (relativePath: string) =>
    (await store.findTaskByPath('big', relativePath))?.hashFirst;
  // Only the ctime moved: the file is hashed before anything is sent; a replaced one is just sent.
  assert.deepEqual([await hashFirst('f00000.txt'), await hashFirst('f00001.txt')], [false, true]);
  assert.equal((await store.findTaskByPath('big', 'f00002.txt'))?.status, 'completed');
});
