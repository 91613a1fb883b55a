// Faults on the service's own machine: the source folder deleted and recreated, files that cannot
// be read, files deleted or renamed in the middle of their upload, and the database's disk full or
// turned read-only. Each test runs the service as a real child process against the real S3 server.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, rename, rm, writeFile, chmod } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, afterEach, before, describe, it, type TestContext } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { makeBreakableDisk, makeFillableDisk } from '../support/disk-faults.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { waitFor } from '../support/poll.js';
import {
  createTestBucket,
  deleteBucket,
  getObjectBytes,
  listKeys,
  listMultipartUploads,
  testS3,
  testS3Client,
} from '../support/s3.js';
import { api, killAllServices, startService, type ServiceProcess } from '../support/service-process.js';
import {
  createUpload,
  fileItems,
  uploadDetails,
  waitForCompleted,
  type FileItem,
} from '../support/upload-api.js';
import { makeTempDir, removeTempDir, writeRandomFile } from '../support/temp-tree.js';

const run = promisify(execFile);
const md5 = (data: Buffer): string => createHash('md5').update(data).digest('hex');
const MiB = 1024 * 1024;

let s3: S3Client;
let proxy: FaultProxy;
let work: string;

before(async () => {
  s3 = testS3Client();
  proxy = await startFaultProxy(testS3().endpoint);
  work = await makeTempDir('e2e-local-faults');
});

after(async () => {
  await proxy.close();
  await removeTempDir(work);
  s3.destroy();
});

afterEach(async () => {
  proxy.clearFaults();
  proxy.resetStats();
  assert.equal(await killAllServices(), 0, 'a test left a service process running');
});

/** Multipart from 5 MiB, in 5 MiB parts, one at a time, so that a test can act between parts. */
const SLOW_PARTS = {
  MULTIPART_THRESHOLD_BYTES: String(5 * MiB),
  PART_SIZE_BYTES: String(5 * MiB),
  MAX_CONCURRENT_PARTS: '1',
  STREAM_GROWING_FILES: 'false',
};

function start(
  label: string,
  env: Record<string, string> = {},
  options: { databaseFile?: string; wrapper?: string[] } = {},
): Promise<ServiceProcess> {
  return startService({
    databaseFile: options.databaseFile ?? path.join(work, `${label}.db`),
    s3Endpoint: proxy.endpoint,
    wrapper: options.wrapper,
    env: { RESCAN_INTERVAL_SECONDS: '0.5', ...env },
  });
}

function isAlive(service: ServiceProcess): boolean {
  return service.child.exitCode === null && service.child.signalCode === null;
}

/** Waits until the request's tasks satisfy `done`; the error shows the tasks last seen. */
async function waitForTasks(
  service: ServiceProcess,
  uploadId: string,
  done: (tasks: FileItem[]) => boolean,
  message: string,
  timeoutMs = 30_000,
): Promise<FileItem[]> {
  let seen: FileItem[] = [];
  try {
    return await waitFor(
      async () => {
        seen = await fileItems(service, uploadId);
        return done(seen) ? seen : undefined;
      },
      { timeoutMs, message },
    );
  } catch (error) {
    const tasks = seen.map(({ relative_path, status, attempts, last_error }) => ({
      relative_path,
      status,
      attempts,
      last_error,
    }));
    throw new Error(`${(error as Error).message}; tasks: ${JSON.stringify(tasks)}`, { cause: error });
  }
}

/** No request was answered with a masked 500: every failure had a known cause. */
function assertNoInternalError(service: ServiceProcess): void {
  const internal = service.logs.filter((entry) => entry.error === 'internal_error');
  assert.deepEqual(internal, [], 'no request failed with a 500');
}

/** Parts of `name` that S3 stored, as the proxy saw them. */
const storedPartsOf = (name: string): number =>
  proxy.log.filter(
    (r) =>
      r.method === 'PUT' && r.query.has('partNumber') && r.outcome === 200 && r.path.endsWith(`/${name}`),
  ).length;

describe('the source folder deleted while watched, then recreated', () => {
  it('keeps the upload active with the error, then resumes and clears it', async () => {
    const bucket = await createTestBucket(s3, 'refolder');
    const source = path.join(work, 'refolder');
    await mkdir(source, { recursive: true });
    await writeFile(path.join(source, 'before.txt'), 'before');
    const service = await start('refolder');
    const uploadId = await createUpload(service, { source_folder: source, destination_bucket: bucket });
    await waitForCompleted(service, uploadId, 1);

    await rm(source, { recursive: true });
    const broken = await waitFor(
      async () => {
        const current = await uploadDetails(service, uploadId);
        return current.last_error ? current : undefined;
      },
      { timeoutMs: 15_000, message: 'the missing folder reported on the request' },
    );
    assert.equal(broken.status, 'active');
    assert.match(broken.last_error ?? '', /cannot scan source folder .*refolder.* does not exist/);

    await mkdir(source);
    await writeFile(path.join(source, 'after.txt'), 'after');
    await mkdir(path.join(source, 'sub'));
    await writeFile(path.join(source, 'sub/deep.txt'), 'deep');
    const resumed = await waitForCompleted(service, uploadId, 3, 20_000);
    assert.equal(resumed.status, 'active');
    const cleared = await waitFor(
      async () => {
        const current = await uploadDetails(service, uploadId);
        return current.last_error === null ? current : undefined;
      },
      { timeoutMs: 10_000, message: 'the error cleared once the folder is back' },
    );
    assert.equal(cleared.files.completed, 3);
    assert.deepEqual(await listKeys(s3, bucket), ['after.txt', 'before.txt', 'sub/deep.txt']);
    assert.equal((await getObjectBytes(s3, bucket, 'sub/deep.txt')).toString(), 'deep');
    // Events work again on the recreated folder, not only rescans: a new file arrives too.
    await writeFile(path.join(source, 'later.txt'), 'later');
    await waitForCompleted(service, uploadId, 4, 20_000);
    assert.equal(await service.stop(), 0);
    await deleteBucket(s3, bucket);
  });
});

describe('files that cannot be read', () => {
  it('skips FIFOs and sockets, and drops a file swapped for a FIFO before its upload without hanging', async (t) => {
    const bucket = await createTestBucket(s3, 'fifo');
    const source = path.join(work, 'fifo');
    await writeRandomFile(path.join(source, 'slow.bin'), 6 * MiB);
    await run('mkfifo', [path.join(source, 'pipe.txt')]);
    const socket = createServer().listen(path.join(source, 'socket.txt'));
    t.after(() => socket.close());
    await once(socket, 'listening');
    // One upload at a time, its parts slowed down: a file recorded meanwhile waits for the slot.
    proxy.inject({ method: 'PUT', query: ['partNumber'], fault: { type: 'delay', ms: 1500 } });
    const service = await start('fifo', { ...SLOW_PARTS, MAX_CONCURRENT_FILES: '1' });
    const uploadId = await createUpload(service, {
      source_folder: source,
      destination_bucket: bucket,
      pattern: '*.{bin,txt}',
    });
    await waitFor(() => proxy.log.some((r) => r.method === 'PUT' && r.query.has('partNumber')), {
      timeoutMs: 15_000,
      message: 'the first part of slow.bin on its way',
    });
    const swapped = path.join(source, 'swapped.txt');
    await writeFile(swapped, 'a regular file when it was seen');
    await waitFor(
      async () => (await fileItems(service, uploadId)).some((task) => task.relative_path === 'swapped.txt'),
      { timeoutMs: 10_000, message: 'swapped.txt recorded while the slot is busy' },
    );
    await rm(swapped);
    await run('mkfifo', [swapped]);
    await writeFile(path.join(source, 'after.txt'), 'after');

    await waitForTasks(
      service,
      uploadId,
      (tasks) =>
        tasks.every((task) => task.status === 'completed') &&
        tasks
          .map((task) => task.relative_path)
          .sort()
          .join() === 'after.txt,slow.bin',
      'slow.bin and after.txt completed, swapped.txt dropped',
    );
    const details = await uploadDetails(service, uploadId);
    assert.match(details.last_error ?? '', /swapped\.txt/);
    assert.deepEqual(await listKeys(s3, bucket), ['after.txt', 'slow.bin']);
    assert.deepEqual(await listMultipartUploads(s3, bucket), []);
    // Neither the FIFO nor the socket was ever taken for a file.
    assert.ok(!service.logs.some((entry) => JSON.stringify(entry).includes('pipe.txt')));
    assert.equal(await service.stop(), 0);
    await deleteBucket(s3, bucket);
  });

  it('fails a file without read permission with a clear message, without blocking the others', async (t) => {
    const wrapper = await withoutFilePermissionOverride(t);
    if (wrapper === undefined) return;
    const bucket = await createTestBucket(s3, 'locked');
    const source = path.join(work, 'locked');
    await mkdir(source, { recursive: true });
    const locked = path.join(source, 'locked.txt');
    await writeFile(locked, 'locked');
    await chmod(locked, 0o000);
    for (let i = 0; i < 3; i++) await writeFile(path.join(source, `open-${i}.txt`), `open ${i}`);
    const service = await start(
      'locked',
      { FAILED_REQUEUE_INTERVAL_SECONDS: '1', MAX_CONCURRENT_FILES: '1' },
      { wrapper },
    );
    const uploadId = await createUpload(service, { source_folder: source, destination_bucket: bucket });
    const failedTwice = await waitFor(
      async () => {
        const tasks = await fileItems(service, uploadId);
        const lockedTask = tasks.find((task) => task.relative_path === 'locked.txt');
        const others = tasks.filter((task) => task !== lockedTask && task.status === 'completed');
        return lockedTask?.status === 'failed' && lockedTask.attempts >= 2 && others.length === 3
          ? lockedTask
          : undefined;
      },
      { timeoutMs: 20_000, message: 'locked.txt failed (and was requeued), the others completed' },
    );
    assert.match(
      failedTwice.last_error ?? '',
      /^cannot read the local file .*locked\.txt: permission denied \(EACCES\)$/,
    );
    assert.match(
      (await uploadDetails(service, uploadId)).last_error ?? '',
      /^locked\.txt: cannot read .*permission denied/,
    );

    await chmod(locked, 0o644);
    await waitForCompleted(service, uploadId, 4, 20_000);
    assert.deepEqual(await listKeys(s3, bucket), ['locked.txt', 'open-0.txt', 'open-1.txt', 'open-2.txt']);
    assert.equal(await service.stop(), 0);
    await deleteBucket(s3, bucket);
  });
});

/**
 * Permission bits stop a reader only without CAP_DAC_OVERRIDE: as root, the service runs with that
 * capability (and CAP_DAC_READ_SEARCH) dropped. Returns the command prefix, or skips the test
 * when the capabilities cannot be dropped here.
 */
async function withoutFilePermissionOverride(t: TestContext): Promise<string[] | undefined> {
  if (process.getuid?.() !== 0) return [];
  const caps = '-dac_override,-dac_read_search';
  const wrapper = ['setpriv', `--inh-caps=${caps}`, `--bounding-set=${caps}`, '--'];
  const probe = path.join(work, 'probe-unreadable');
  await writeFile(probe, 'x', { mode: 0o000 });
  try {
    await run(wrapper[0]!, [...wrapper.slice(1), 'cat', probe]);
    t.skip(
      'running as root and the read permission cannot be taken away here (setpriv could read a mode 000 file)',
    );
    return undefined;
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? '');
    if (/permission denied/i.test(stderr)) return wrapper;
    t.skip(
      `running as root and setpriv cannot drop CAP_DAC_OVERRIDE here: ${stderr.trim() || String(error)}`,
    );
    return undefined;
  } finally {
    await rm(probe, { force: true });
  }
}

describe('a file deleted or renamed during its multipart upload', () => {
  it('drops the deleted one and uploads the renamed one under its new name, leaving no multipart upload', async (t) => {
    const bucket = await createTestBucket(s3, 'moved');
    const source = path.join(work, 'moved');
    await writeRandomFile(path.join(source, 'gone.bin'), 20 * MiB);
    const moved = await writeRandomFile(path.join(source, 'moved.bin'), 20 * MiB);
    proxy.inject({ method: 'PUT', query: ['partNumber'], fault: { type: 'delay', ms: 300 } });
    const service = await start('moved', SLOW_PARTS);
    const uploadId = await createUpload(service, { source_folder: source, destination_bucket: bucket });
    await waitFor(() => storedPartsOf('gone.bin') > 0, {
      timeoutMs: 20_000,
      message: 'a part of gone.bin stored',
    });
    await rm(path.join(source, 'gone.bin'));
    const goneBefore = storedPartsOf('gone.bin');
    await waitFor(() => storedPartsOf('moved.bin') > 0, {
      timeoutMs: 20_000,
      message: 'a part of moved.bin stored',
    });
    await rename(path.join(source, 'moved.bin'), path.join(source, 'renamed.bin'));

    const [renamed] = await waitForTasks(
      service,
      uploadId,
      (tasks) =>
        tasks.length === 1 && tasks[0]?.relative_path === 'renamed.bin' && tasks[0].status === 'completed',
      'gone.bin and moved.bin dropped, renamed.bin completed',
    );
    assert.equal(renamed?.object_key, 'renamed.bin');
    const details = await uploadDetails(service, uploadId);
    assert.equal(details.status, 'active');
    assert.match(
      details.last_error ?? '',
      /(gone|moved)\.bin vanished before it was uploaded; dropped from the queue/,
    );
    const notes = service.logs.filter((entry) =>
      String(entry.msg).includes('vanished before it was uploaded'),
    );
    // A rescan that stat'ed a file just before it went may record it after its task was dropped:
    // the file is then found gone, and dropped and noted, once more.
    assert.deepEqual(
      [...new Set(notes.map((entry) => entry.path))].sort(),
      ['gone.bin', 'moved.bin'],
      'each dropped file is noted',
    );
    t.diagnostic(
      `gone.bin: ${goneBefore} of 4 parts stored when it was deleted, ${storedPartsOf('gone.bin')} in all before the upload was aborted`,
    );
    assert.deepEqual(await listKeys(s3, bucket), ['renamed.bin']);
    assert.equal(md5(await getObjectBytes(s3, bucket, 'renamed.bin')), moved.md5);
    assert.deepEqual(
      await listMultipartUploads(s3, bucket),
      [],
      'every multipart upload completed or aborted',
    );
    assert.equal(await service.stop(), 0);
    await deleteBucket(s3, bucket);
  });
});

describe('the database on a full disk', () => {
  it('answers writes with a 503 that says so, keeps running, and recovers once space returns', async (t) => {
    const disk = await makeFillableDisk(path.join(work, 'full-disk'));
    if ('unavailable' in disk) return t.skip(disk.unavailable);
    t.after(() => disk.close());
    t.diagnostic(`full disk made with ${disk.method}`);
    const bucket = await createTestBucket(s3, 'fulldb');
    const source = path.join(work, 'fulldb');
    const other = path.join(work, 'fulldb-other');
    await mkdir(source, { recursive: true });
    await mkdir(other, { recursive: true });
    await writeFile(path.join(source, 'a.txt'), 'a');
    await writeFile(path.join(other, 'c.txt'), 'c');
    const service = await start('fulldb', {}, { databaseFile: path.join(disk.dir, 'state.db') });
    const pid = service.child.pid!;
    const uploadId = await createUpload(service, { source_folder: source, destination_bucket: bucket });
    await waitForCompleted(service, uploadId, 1);

    await disk.fill(pid);
    const refused = await api<{ error: string; message: string }>(service, 'POST', '/uploads', {
      source_folder: other,
      destination_bucket: bucket,
      destination_prefix: 'other',
      upload_id: 'after-full',
      allow_overlap: true, // beside the first request's keys, which take the whole bucket
    });
    assert.equal(refused.status, 503, JSON.stringify(refused.body));
    assert.equal(refused.body.error, 'database_unavailable');
    assert.match(refused.body.message, /^The database cannot be used right now: .*(full|SQLITE_IOERR_WRITE)/);
    // A new file cannot be recorded: the monitor logs it and goes on; reads still answer.
    await writeFile(path.join(source, 'b.txt'), 'b');
    await waitFor(
      () => service.logs.some((entry) => /recording changed files failed/.test(String(entry.msg))),
      {
        timeoutMs: 15_000,
        message: 'the failed recording logged',
      },
    );
    assert.equal((await api(service, 'GET', `/uploads/${uploadId}`)).status, 200);
    assert.equal((await api(service, 'GET', '/')).status, 200);
    assert.ok(isAlive(service), 'the service is still running');
    assertNoInternalError(service);

    await disk.free(pid);
    const created = await waitFor(
      async () => {
        const response = await api(service, 'POST', '/uploads', {
          source_folder: other,
          destination_bucket: bucket,
          destination_prefix: 'other',
          upload_id: 'after-full',
          allow_overlap: true,
        });
        return response.status === 201 ? response : undefined;
      },
      { timeoutMs: 10_000, message: 'POST /uploads accepted once space is back' },
    );
    assert.equal(created.status, 201);
    await waitForCompleted(service, uploadId, 2, 20_000);
    await waitForCompleted(service, 'after-full', 1, 20_000);
    assert.deepEqual(await listKeys(s3, bucket), ['a.txt', 'b.txt', 'other/c.txt']);
    assert.equal(await service.stop(), 0);
    await deleteBucket(s3, bucket);
  });
});

describe('the database on a disk that turns read-only', () => {
  it('answers writes with a 503, keeps running, and resumes after the disk is repaired and the service restarted', async (t) => {
    const disk = await makeBreakableDisk(path.join(work, 'ro-disk'));
    if ('unavailable' in disk) return t.skip(disk.unavailable);
    t.after(() => disk.close());
    const bucket = await createTestBucket(s3, 'rodb');
    const source = path.join(work, 'rodb');
    await mkdir(source, { recursive: true });
    await writeFile(path.join(source, 'a.txt'), 'a');
    const databaseFile = path.join(disk.dir, 'state.db');
    let service = await start('rodb', {}, { databaseFile });
    const uploadId = await createUpload(service, { source_folder: source, destination_bucket: bucket });
    await waitForCompleted(service, uploadId, 1);

    await disk.turnReadOnly();
    const refused = await api<{ error: string; message: string }>(service, 'POST', '/uploads', {
      source_folder: source,
      destination_bucket: bucket,
      upload_id: 'after-ro',
      allow_overlap: true, // the first request's keys: what matters here is the 503
    });
    assert.equal(refused.status, 503, JSON.stringify(refused.body));
    assert.equal(refused.body.error, 'database_unavailable');
    assert.match(
      refused.body.message,
      /^The database cannot be used right now: .*\(SQLITE_(IOERR|READONLY)\w*\)/,
    );
    await writeFile(path.join(source, 'b.txt'), 'b');
    await waitFor(
      () => service.logs.some((entry) => /recording changed files failed/.test(String(entry.msg))),
      {
        timeoutMs: 15_000,
        message: 'the failed recording logged',
      },
    );
    const retried = await api(service, 'POST', `/uploads/${uploadId}/retry`);
    assert.ok([200, 503].includes(retried.status), `retry answered ${retried.status}`);
    const read = await api(service, 'GET', `/uploads/${uploadId}`);
    assert.equal(read.status, 200, 'reads still answer');
    assert.ok(isAlive(service), 'the service is still running');
    assertNoInternalError(service);

    // A read-only file system stays so until it is checked and mounted again, without the service.
    await service.stop();
    await disk.repair();
    service = await start('rodb', {}, { databaseFile });
    await waitForCompleted(service, uploadId, 2, 20_000);
    const again = await createUpload(service, {
      source_folder: source,
      destination_bucket: bucket,
      destination_prefix: 'again',
      allow_overlap: true,
    });
    await waitForCompleted(service, again, 2, 20_000);
    assert.deepEqual(await listKeys(s3, bucket), ['a.txt', 'again/a.txt', 'again/b.txt', 'b.txt']);
    assert.equal(await service.stop(), 0);
    await deleteBucket(s3, bucket);
  });
});
