// The API under load while files upload: the service as a child process against the real S3, one
// request uploading a folder of 200 small files and 2 multipart files, and 100 concurrent clients
// (fetch, keep-alive) creating requests, listing them, reading them and paging through files for a
// few seconds. No request may fail, every created request must exist afterwards, and the uploads
// must still complete intact. The latency percentiles are printed as a figure, not asserted.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { waitFor } from '../support/poll.js';
import { createTestBucket, deleteBucket, getObjectBytes, testS3Client } from '../support/s3.js';
import { killAllServices, startService, type ServiceProcess } from '../support/service-process.js';
import { waitForCompleted } from '../support/upload-api.js';
import {
  makeTempDir,
  removeTempDir,
  writeRandomFile,
  writeTreeFile,
  type FileDigests,
} from '../support/temp-tree.js';

const MiB = 1024 * 1024;
const CLIENTS = 100;
const LOAD_MS = 6_000;
const SMALL_FILES = 200;
const MULTIPART_FILES = 2;
const MULTIPART_FILE_BYTES = 12 * MiB;
/** Folders the clients' create requests point at, two small files each. */
const CLIENT_FOLDERS = 10;
/** At most this many creates in all, so that the engine is loaded but not flooded with watchers. */
const MAX_CREATES = 150;
const PAGE_SIZE = 50;

const md5 = (data: Buffer): string => createHash('md5').update(data).digest('hex');

let s3: S3Client;
let work: string;
let service: ServiceProcess;
const buckets: string[] = [];

before(async () => {
  s3 = testS3Client();
  work = await makeTempDir('e2e-load');
  service = await startService({
    databaseFile: path.join(work, 'uploads.db'),
    env: {
      LOG_LEVEL: 'info',
      MULTIPART_THRESHOLD_BYTES: String(5 * MiB),
      PART_SIZE_BYTES: String(5 * MiB),
    },
  });
});

after(async () => {
  await killAllServices();
  for (const bucket of buckets) await deleteBucket(s3, bucket);
  await removeTempDir(work);
  s3.destroy();
});

// --- the clients

interface Sample {
  op: string;
  ms: number;
}

interface LoadState {
  baseUrl: string;
  deadline: number;
  bucket: string;
  clientFolders: string[];
  /** Ids any client may read: the bulk request's and every one created so far. */
  knownIds: string[];
  createdIds: string[];
  createsStarted: number;
  samples: Sample[];
  failures: string[];
}

/** One request, timed; a connection error, a 5xx or any status but the expected one is a failure. */
async function call(
  state: LoadState,
  op: string,
  route: string,
  expected: number,
  init: RequestInit = {},
): Promise<unknown> {
  const started = performance.now();
  try {
    const response = await fetch(`${state.baseUrl}${route}`, init);
    const text = await response.text();
    state.samples.push({ op, ms: performance.now() - started });
    if (response.status !== expected) {
      state.failures.push(`${init.method ?? 'GET'} ${route} → ${response.status} ${text.slice(0, 300)}`);
      return undefined;
    }
    return JSON.parse(text) as unknown;
  } catch (error) {
    state.failures.push(`${init.method ?? 'GET'} ${route} → ${String(error)}`);
    return undefined;
  }
}

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)] as T;

async function createUpload(state: LoadState, client: number): Promise<void> {
  state.createsStarted += 1;
  const body = {
    source_folder: pick(state.clientFolders),
    destination_bucket: state.bucket,
    destination_prefix: `clients/${client}/${state.createsStarted}`,
  };
  const created = (await call(state, 'create', '/uploads', 201, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })) as { upload_id?: string } | undefined;
  if (created?.upload_id) {
    state.createdIds.push(created.upload_id);
    state.knownIds.push(created.upload_id);
  }
}

/** Follows next_cursor for a few pages of a request's files. */
async function pageFiles(state: LoadState, uploadId: string): Promise<void> {
  let cursor: string | null = null;
  for (let page = 0; page < 3; page += 1) {
    const query: string = cursor === null ? '' : `&cursor=${cursor}`;
    const reply = (await call(
      state,
      'files',
      `/uploads/${uploadId}/files?limit=${PAGE_SIZE}${query}`,
      200,
    )) as { next_cursor?: string | null } | undefined;
    cursor = reply?.next_cursor ?? null;
    if (cursor === null) return;
  }
}

/** A client: a mix of creates (5%), lists (30%), reads (35%) and file pages (30%) until the deadline. */
async function runClient(state: LoadState, client: number): Promise<void> {
  while (Date.now() < state.deadline) {
    const roll = Math.random();
    if (roll < 0.05 && state.createsStarted < MAX_CREATES) await createUpload(state, client);
    else if (roll < 0.35) await call(state, 'list', '/uploads', 200);
    else if (roll < 0.7) await call(state, 'get', `/uploads/${pick(state.knownIds)}`, 200);
    else await pageFiles(state, pick(state.knownIds));
  }
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

// --- the test

describe('the API under load while files upload', () => {
  it(`answers ${CLIENTS} concurrent clients without an error, and the uploads complete intact`, async (t) => {
    const bucket = await createTestBucket(s3, 'load');
    buckets.push(bucket);
    const bulk = path.join(work, 'bulk');
    const digests = new Map<string, FileDigests>();
    for (let i = 0; i < SMALL_FILES; i += 1) {
      const name = `small/${String(i).padStart(3, '0')}.bin`;
      digests.set(name, await writeRandomFile(path.join(bulk, name), 1024 + ((i * 37) % 4096)));
    }
    for (let i = 0; i < MULTIPART_FILES; i += 1) {
      const name = `large/${i}.bin`;
      digests.set(name, await writeRandomFile(path.join(bulk, name), MULTIPART_FILE_BYTES + i * 12345));
    }
    const clientFolders: string[] = [];
    for (let i = 0; i < CLIENT_FOLDERS; i += 1) {
      const folder = path.join(work, `client-${i}`);
      await writeTreeFile(path.join(folder, 'a.txt'), `client folder ${i}, file a\n`);
      await writeTreeFile(path.join(folder, 'sub', 'b.txt'), `client folder ${i}, file b\n`);
      clientFolders.push(folder);
    }

    const state: LoadState = {
      baseUrl: service.baseUrl,
      deadline: 0,
      bucket,
      clientFolders,
      knownIds: [],
      createdIds: [],
      createsStarted: 0,
      samples: [],
      failures: [],
    };
    const bulkReply = (await call(state, 'create', '/uploads', 201, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ source_folder: bulk, destination_bucket: bucket, destination_prefix: 'bulk' }),
    })) as { upload_id: string };
    assert.deepEqual(state.failures, []);
    state.knownIds.push(bulkReply.upload_id);

    const loadStarted = Date.now();
    state.deadline = loadStarted + LOAD_MS;
    await Promise.all(Array.from({ length: CLIENTS }, (_, client) => runClient(state, client)));
    const loadSeconds = (Date.now() - loadStarted) / 1000;
    const bulkDuringLoad = (await call(state, 'get', `/uploads/${bulkReply.upload_id}`, 200)) as {
      files: { completed: number };
    };

    const sorted = state.samples.map((sample) => sample.ms).sort((a, b) => a - b);
    const figure =
      `load: ${sorted.length} requests, p50 ${percentile(sorted, 50).toFixed(1)} ms, ` +
      `p95 ${percentile(sorted, 95).toFixed(1)} ms, p99 ${percentile(sorted, 99).toFixed(1)} ms`;
    console.log(figure);
    t.diagnostic(figure);
    t.diagnostic(
      `${CLIENTS} clients for ${loadSeconds.toFixed(1)} s (${(sorted.length / loadSeconds).toFixed(0)} requests/s), ` +
        `${state.createdIds.length} requests created; the bulk upload had ${bulkDuringLoad.files.completed} of ` +
        `${SMALL_FILES + MULTIPART_FILES} files done when the load ended`,
    );
    for (const op of ['create', 'list', 'get', 'files']) {
      const times = state.samples.filter((sample) => sample.op === op).map((sample) => sample.ms);
      times.sort((a, b) => a - b);
      t.diagnostic(
        `${op}: ${times.length} requests, p50 ${percentile(times, 50).toFixed(1)} ms, p99 ${percentile(times, 99).toFixed(1)} ms`,
      );
    }
    assert.deepEqual(state.failures.slice(0, 20), [], `${state.failures.length} requests failed`);

    // Every created request exists, listed and by id.
    const listed = (await call(state, 'list', '/uploads?status=all', 200)) as { upload_id: string }[];
    const listedIds = new Set(listed.map((request) => request.upload_id));
    for (const id of state.createdIds) {
      assert.ok(listedIds.has(id), `created request ${id} is listed`);
      await call(state, 'get', `/uploads/${id}`, 200);
    }
    assert.deepEqual(state.failures, []);

    // The uploads complete, intact.
    await waitForCompleted(service, bulkReply.upload_id, SMALL_FILES + MULTIPART_FILES, 40_000);
    const checked = ['large/0.bin', 'large/1.bin', 'small/000.bin', 'small/077.bin', 'small/199.bin'];
    for (const name of checked) {
      const object = await getObjectBytes(s3, bucket, `bulk/${name}`);
      assert.equal(md5(object), digests.get(name)?.md5, `bulk/${name} holds the file's bytes`);
    }
    await waitFor(
      async () => {
        for (const id of state.createdIds) {
          const details = (await call(state, 'get', `/uploads/${id}`, 200)) as {
            files: { completed: number; total: number };
          };
          if (details.files.completed !== 2 || details.files.total !== 2) return false;
        }
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 250, message: 'every created request uploaded its 2 files' },
    );
    assert.deepEqual(state.failures, []);
  });
});
