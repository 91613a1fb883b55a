// The fault matrix: one service process, S3 behind the fault proxy, and for each fault a bucket of
// its own with a few small files and one multipart file. Every transient fault must be retried
// until every object equals its file, with no multipart upload left behind; a permanent one must
// fail the files with a clear message and be requeued after the interval; a wrong ETag must be
// caught and never recorded. A table of the cases, with the requests the proxy saw, is printed.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import {
  ACCESS_DENIED,
  INTERNAL_ERROR,
  REQUEST_TIMEOUT,
  SLOW_DOWN,
  startFaultProxy,
  type FaultProxy,
  type FaultRule,
  type InjectedFault,
  type ProxiedRequest,
} from '../support/fault-proxy.js';
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
import { api, startService, type ServiceProcess } from '../support/service-process.js';
import { makeTempDir, removeTempDir, writeRandomFile } from '../support/temp-tree.js';
import { createUpload, uploadDetails, type FileItem } from '../support/upload-api.js';

const MiB = 1024 * 1024;
const PART_BYTES = 5 * MiB;
const REQUEST_TIMEOUT_MS = 2000;
const REQUEUE_SECONDS = 2;
/** Small files, and one multipart file of two parts (5 MiB + 256 KiB). */
const TREE: Record<string, number> = {
  'a.txt': 1024,
  'sub/b.bin': 48 * 1024,
  'sub/deeper/c.bin': 300 * 1024,
  'big/multipart.bin': PART_BYTES + 256 * 1024,
};
const FILE_COUNT = Object.keys(TREE).length;
/** Wrong ETags the proxy sends, one per case; the real ones are MD5s of random bytes, which never equal them. */
const wrongMd5 = (digit: number) => `0123456789abcdef0123456789abcde${digit}`;

const hex = (algorithm: string, data: Buffer) => createHash(algorithm).update(data).digest('hex');
const stripQuotes = (etag: string | null) => etag?.replace(/"/g, '') ?? null;

const isPutObject = (r: ProxiedRequest) => r.method === 'PUT' && !r.query.has('partNumber');
const isUploadPart = (r: ProxiedRequest) => r.method === 'PUT' && r.query.has('partNumber');
const isCreate = (r: ProxiedRequest) => r.method === 'POST' && r.query.has('uploads');
const isComplete = (r: ProxiedRequest) => r.method === 'POST' && r.query.has('uploadId');

interface FileTask extends FileItem {
  sha256: string | null;
}

interface Row {
  order: number;
  fault: string;
  injected: number;
  requests: number;
  faulted: string;
  taskAttempts: number;
  seconds: number;
}

let s3: S3Client;
let proxy: FaultProxy;
let service: ServiceProcess;
let work: string;
const rows: Row[] = [];

before(async () => {
  s3 = testS3Client();
  proxy = await startFaultProxy(testS3().endpoint);
  work = await makeTempDir('e2e-fault-matrix');
  service = await startService({
    databaseFile: path.join(work, 'state.db'),
    s3Endpoint: proxy.endpoint,
    env: {
      MULTIPART_THRESHOLD_BYTES: String(PART_BYTES),
      PART_SIZE_BYTES: String(PART_BYTES),
      S3_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
      FAILED_REQUEUE_INTERVAL_SECONDS: String(REQUEUE_SECONDS),
      RETRY_MAX_ATTEMPTS: '5',
      RETRY_BASE_DELAY_MS: '20',
      MAX_CONCURRENT_FILES: '16',
      // Every file is written before its request: the matrix is about the settled-file paths.
      STREAM_GROWING_FILES: 'false',
    },
  });
});

after(async () => {
  if (service) assert.equal(await service.stop(), 0, 'the service stops cleanly after the matrix');
  await proxy?.close();
  if (work) await removeTempDir(work);
  s3?.destroy();
  printTable();
});

function printTable(): void {
  if (rows.length === 0) return;
  const header = ['fault', 'injected', 'S3 requests', 'faulted operation: requests', 'task attempts', 's'];
  const lines = [...rows]
    .sort((a, b) => a.order - b.order)
    .map((row) => [
      row.fault,
      String(row.injected),
      String(row.requests),
      row.faulted,
      String(row.taskAttempts),
      row.seconds.toFixed(1),
    ]);
  const widths = header.map((title, i) => Math.max(title.length, ...lines.map((line) => line[i]!.length)));
  const format = (cells: string[]) => `| ${cells.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(
    ['', format(header), format(widths.map((w) => '-'.repeat(w))), ...lines.map(format), ''].join('\n'),
  );
}

interface Case {
  label: string;
  bucket: string;
  source: string;
  uploadId: string;
  startedAt: number;
  completedAt?: number;
}

/** A bucket and a source tree of its own, the faults injected, then the upload. */
async function startCase(label: string, rules: (bucket: string) => FaultRule[]) {
  const bucket = await createTestBucket(s3, `fm-${label}`);
  const source = path.join(work, label);
  for (const [relative, bytes] of Object.entries(TREE))
    await writeRandomFile(path.join(source, relative), bytes);
  const faults: InjectedFault[] = rules(bucket).map((rule) => proxy.inject({ ...rule, bucket }));
  const startedAt = Date.now();
  // The faults are for the files' requests: the check of the bucket at creation and the listing of
  // what it holds would meet them first (test/e2e/bucket-check.test.ts and if-exists.test.ts cover
  // those), and add their requests to the counts.
  const uploadId = await createUpload(service, {
    source_folder: source,
    destination_bucket: bucket,
    check_bucket: false,
    if_exists: 'overwrite',
  });
  const current: Case = { label, bucket, source, uploadId, startedAt };
  return { faults, current };
}

async function tasksOf(uploadId: string): Promise<FileTask[]> {
  const response = await api<{ items: FileTask[] }>(service, 'GET', `/uploads/${uploadId}/files?limit=100`);
  assert.equal(response.status, 200);
  return response.body.items;
}

/** Waits until every file completed; `seen` collects every ETag a task showed on the way. */
async function waitAllCompleted(
  current: Case,
  seen: Set<string>,
  { timeoutMs = 30_000, intervalMs = 100 } = {},
): Promise<FileTask[]> {
  let last: FileTask[] = [];
  try {
    return await waitFor(
      async () => {
        const tasks = await tasksOf(current.uploadId);
        last = tasks;
        for (const task of tasks) if (task.etag !== null) seen.add(`${task.status} ${task.etag}`);
        const done = tasks.length === FILE_COUNT && tasks.every((task) => task.status === 'completed');
        if (done) current.completedAt = Date.now();
        return done ? tasks : undefined;
      },
      { timeoutMs, intervalMs, message: `every file of case '${current.label}' completed` },
    );
  } catch (error) {
    const states = last.map((task) => `${task.relative_path}: ${task.status} ${task.last_error ?? ''}`);
    throw new Error(`${(error as Error).message}; tasks: ${states.join('; ') || 'none'}`, { cause: error });
  }
}

/** The multipart ETag of a file cut into 5 MiB parts. */
function multipartEtagOf(content: Buffer): string {
  const digests: Buffer[] = [];
  for (let offset = 0; offset < content.length; offset += PART_BYTES) {
    digests.push(
      createHash('md5')
        .update(content.subarray(offset, offset + PART_BYTES))
        .digest(),
    );
  }
  return `${hex('md5', Buffer.concat(digests))}-${digests.length}`;
}

/** Every object equals its file (MD5 and SHA-256), every task records it, and no multipart upload is left. */
async function assertIntact(current: Case, tasks: FileTask[]): Promise<void> {
  assert.deepEqual(await listKeys(s3, current.bucket), Object.keys(TREE).sort());
  for (const relative of Object.keys(TREE)) {
    const local = await readFile(path.join(current.source, relative));
    const stored = await getObjectBytes(s3, current.bucket, relative);
    assert.equal(hex('md5', stored), hex('md5', local), `${current.label}: MD5 of ${relative}`);
    assert.equal(hex('sha256', stored), hex('sha256', local), `${current.label}: SHA-256 of ${relative}`);
    const task = tasks.find((candidate) => candidate.relative_path === relative);
    assert.ok(task, `${current.label}: a task for ${relative}`);
    const expectedEtag = local.length >= PART_BYTES ? multipartEtagOf(local) : hex('md5', local);
    assert.equal(stripQuotes(task.etag), expectedEtag, `${current.label}: recorded ETag of ${relative}`);
    assert.equal(task.sha256, hex('sha256', local), `${current.label}: recorded SHA-256 of ${relative}`);
  }
  assert.deepEqual(await listMultipartUploads(s3, current.bucket), [], `${current.label}: no upload left`);
}

function requestsTo(bucket: string) {
  return proxy.log.filter((record) => record.path.split('/')[1] === bucket);
}

function record(
  order: number,
  fault: string,
  current: Case,
  faults: InjectedFault[],
  faulted: (r: ProxiedRequest) => boolean,
  operation: string,
  tasks: FileTask[],
): void {
  const requests = requestsTo(current.bucket);
  rows.push({
    order,
    fault,
    injected: faults.reduce((sum, injected) => sum + injected.hits, 0),
    requests: requests.length,
    faulted: `${operation}: ${requests.filter(faulted).length}`,
    taskAttempts: tasks.reduce((sum, task) => sum + task.attempts, 0),
    seconds: ((current.completedAt ?? Date.now()) - current.startedAt) / 1000,
  });
}

async function finish(current: Case, faults: InjectedFault[]): Promise<void> {
  for (const injected of faults) injected.remove();
  await deleteBucket(s3, current.bucket);
}

interface TransientCase {
  fault: string;
  label: string;
  rules: (bucket: string) => FaultRule[];
  /** the requests the table counts, and what to call them */
  faulted: (r: ProxiedRequest) => boolean;
  operation: string;
}

const TRANSIENT_CASES: TransientCase[] = [
  {
    fault: 'none (baseline)',
    label: 'baseline',
    rules: () => [],
    faulted: (r) => r.method === 'PUT',
    operation: 'PUT',
  },
  {
    fault: '500 InternalError',
    label: 'internal-error',
    rules: () => [
      { method: 'PUT', times: 3, fault: INTERNAL_ERROR },
      { where: isComplete, times: 1, fault: INTERNAL_ERROR },
    ],
    faulted: (r) => r.method === 'PUT',
    operation: 'PUT',
  },
  {
    fault: '503 SlowDown',
    label: 'slow-down',
    rules: () => [
      { method: 'PUT', times: 3, fault: SLOW_DOWN },
      { where: isCreate, times: 1, fault: SLOW_DOWN },
    ],
    faulted: (r) => r.method === 'PUT',
    operation: 'PUT',
  },
  {
    fault: '400 RequestTimeout',
    label: 'request-timeout',
    rules: () => [
      { method: 'PUT', times: 3, fault: REQUEST_TIMEOUT },
      { where: isComplete, times: 1, fault: REQUEST_TIMEOUT },
    ],
    faulted: (r) => r.method === 'PUT',
    operation: 'PUT',
  },
  {
    fault: 'reset before the body',
    label: 'reset-before',
    rules: () => [
      { method: 'PUT', times: 3, fault: { type: 'reset', stage: 'before-forward' } },
      { where: isComplete, times: 1, fault: { type: 'reset', stage: 'before-forward' } },
    ],
    faulted: (r) => r.method === 'PUT',
    operation: 'PUT',
  },
  {
    fault: 'reset after S3 stored it',
    label: 'reset-after',
    rules: () => [
      { method: 'PUT', times: 3, fault: { type: 'reset', stage: 'after-forward' } },
      { where: isComplete, times: 1, fault: { type: 'reset', stage: 'after-forward' } },
    ],
    faulted: (r) => r.method === 'PUT',
    operation: 'PUT',
  },
  {
    fault: 'reset after S3 created the upload',
    label: 'reset-after-create',
    rules: () => [{ where: isCreate, times: 1, fault: { type: 'reset', stage: 'after-forward' } }],
    faulted: isCreate,
    operation: 'CreateMultipartUpload',
  },
  {
    fault: `stalled answer (> ${REQUEST_TIMEOUT_MS} ms timeout)`,
    label: 'stall',
    rules: () => [
      { where: isPutObject, times: 1, fault: { type: 'stall' } },
      { where: isUploadPart, times: 1, fault: { type: 'stall' } },
    ],
    faulted: (r) => r.method === 'PUT',
    operation: 'PUT',
  },
  {
    fault: 'stalled body of CompleteMultipartUpload',
    label: 'stall-body',
    rules: () => [{ where: isComplete, times: 1, fault: { type: 'stall', stage: 'after-headers' } }],
    faulted: isComplete,
    operation: 'CompleteMultipartUpload',
  },
  {
    fault: 'truncated CompleteMultipartUpload answer',
    label: 'truncated-complete',
    rules: () => [{ where: isComplete, times: 1, fault: { type: 'truncate' } }],
    faulted: isComplete,
    operation: 'CompleteMultipartUpload',
  },
  {
    fault: 'truncated CreateMultipartUpload answer',
    label: 'truncated-create',
    rules: () => [{ where: isCreate, times: 1, fault: { type: 'truncate' } }],
    faulted: isCreate,
    operation: 'CreateMultipartUpload',
  },
];

interface WrongEtagCase {
  fault: string;
  label: string;
  where: (r: ProxiedRequest) => boolean;
  /** without quotes; "-2" for the multipart file's two parts */
  etag: string;
  operation: string;
}

const WRONG_ETAG_CASES: WrongEtagCase[] = [
  {
    fault: 'wrong ETag on UploadPart',
    label: 'etag-part',
    where: isUploadPart,
    etag: wrongMd5(0),
    operation: 'UploadPart',
  },
  {
    fault: 'wrong ETag on PutObject',
    label: 'etag-put',
    where: isPutObject,
    etag: wrongMd5(1),
    operation: 'PutObject',
  },
  {
    fault: 'wrong ETag on CompleteMultipartUpload',
    label: 'etag-complete',
    where: isComplete,
    etag: `${wrongMd5(2)}-2`,
    operation: 'CompleteMultipartUpload',
  },
];

// The cases run at once, each in its own bucket, so that the matrix takes as long as its slowest case.
describe('fault matrix', { concurrency: 5 }, () => {
  for (const [order, matrixCase] of TRANSIENT_CASES.entries()) {
    it(`${matrixCase.fault}: retried; every file intact, no upload left`, async () => {
      const { faults, current } = await startCase(matrixCase.label, matrixCase.rules);
      const tasks = await waitAllCompleted(current, new Set());
      for (const injected of faults)
        assert.ok(injected.hits > 0, `${matrixCase.fault}: the fault was injected`);
      await assertIntact(current, tasks);
      // Retried inside the request: no file failed, and nothing was sent twice once it got through.
      for (const task of tasks) assert.equal(task.attempts, 1, `${matrixCase.fault}: ${task.relative_path}`);
      record(order, matrixCase.fault, current, faults, matrixCase.faulted, matrixCase.operation, tasks);
      await finish(current, faults);
    });
  }

  for (const [index, matrixCase] of WRONG_ETAG_CASES.entries()) {
    it(`${matrixCase.fault}: caught, never recorded, then uploaded intact`, async () => {
      const { faults, current } = await startCase(matrixCase.label, () => [
        { where: matrixCase.where, times: 1, fault: { type: 'wrong-etag', etag: `"${matrixCase.etag}"` } },
      ]);
      const seen = new Set<string>();
      const tasks = await waitAllCompleted(current, seen, { intervalMs: 20 });
      assert.equal(faults[0]!.hits, 1, `${matrixCase.fault}: the wrong ETag was sent`);
      await assertIntact(current, tasks);
      const wrong = matrixCase.etag;
      for (const etag of seen) assert.ok(!etag.includes(wrong), `a task showed the wrong ETag: ${etag}`);
      const uploaded = service.logs.filter((entry) => entry.msg === 'file uploaded');
      assert.ok(!uploaded.some((entry) => String(entry.etag).includes(wrong)), 'logged as uploaded');
      const mismatch = service.logs.find((entry) =>
        JSON.stringify(entry).includes(`S3 returned ETag ${wrong}, expected`),
      );
      assert.ok(mismatch, `${matrixCase.fault}: the log names the mismatch`);
      // Caught and retried within the upload: no file failed.
      for (const task of tasks) assert.equal(task.attempts, 1, `${matrixCase.fault}: ${task.relative_path}`);
      const order = TRANSIENT_CASES.length + index;
      record(order, matrixCase.fault, current, faults, matrixCase.where, matrixCase.operation, tasks);
      await finish(current, faults);
    });
  }

  it('403 AccessDenied for a while: the files fail with a clear message, then are requeued and complete', async () => {
    const { faults, current } = await startCase('access-denied', () => [{ fault: ACCESS_DENIED }]);
    const failed = await waitFor(
      async () => {
        const tasks = await tasksOf(current.uploadId);
        return tasks.length === FILE_COUNT && tasks.every((task) => task.status === 'failed')
          ? tasks
          : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 100, message: 'every file failed' },
    );
    const failedAt = Date.now();
    const clear = new RegExp(`access denied to bucket '${current.bucket}' \\(AccessDenied, HTTP 403\\)`);
    for (const task of failed) assert.match(task.last_error ?? '', clear, task.relative_path);
    assert.match((await uploadDetails(service, current.uploadId)).last_error ?? '', clear);
    // A permanent error is not retried within an attempt: one request per file.
    assert.equal(requestsTo(current.bucket).length, FILE_COUNT);

    faults[0]!.remove();
    const tasks = await waitAllCompleted(current, new Set(), { timeoutMs: 20_000 });
    const waitedMs = Date.now() - failedAt;
    for (const task of tasks)
      assert.equal(task.attempts, 2, `${task.relative_path}: failed once, then requeued`);
    await assertIntact(current, tasks);
    assert.ok(
      waitedMs >= REQUEUE_SECONDS * 1000 - 500,
      `requeued after ${waitedMs} ms, not after the ${REQUEUE_SECONDS} s interval`,
    );
    const order = TRANSIENT_CASES.length + WRONG_ETAG_CASES.length;
    record(order, '403 AccessDenied (until removed)', current, faults, () => true, 'all', tasks);
    await finish(current, faults);
  });
});
