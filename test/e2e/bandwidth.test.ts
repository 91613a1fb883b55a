// The bandwidth limit seen from S3's side: the service runs as a child process and reaches S3
// through a proxy that counts the body bytes it forwards. With MAX_UPLOAD_BYTES_PER_SECOND at
// 4 MiB/s, the rate at the proxy over 20 s is the limit (within 10%) and never a burst of whole
// parts; a PATCH /settings to 1 MiB/s shows within 2 s; lifted, the files complete intact.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { waitFor } from '../support/poll.js';
import { createTestBucket, deleteBucket, testS3, testS3Client } from '../support/s3.js';
import { api, killAllServices, startService, type ServiceProcess } from '../support/service-process.js';
import { createUpload, fileItems, waitForCompleted } from '../support/upload-api.js';
import { makeTempDir, removeTempDir, writeRandomFile, type FileDigests } from '../support/temp-tree.js';

const MiB = 1024 * 1024;
const LIMIT = 4 * MiB;
const LOWER_LIMIT = 1 * MiB;
const WINDOW_MS = 20_000;
/** A change of the limit must show at the proxy within this time. */
const TAKES_EFFECT_MS = 2000;
const LOWER_WINDOW_MS = 4000;

/** Bytes forwarded by the proxy, sampled as time goes. */
interface Sample {
  at: number;
  bytes: number;
}

let s3: S3Client;
let proxy: FaultProxy;
let work: string;
let service: ServiceProcess;
let bucket: string;

before(async () => {
  s3 = testS3Client();
  work = await makeTempDir('e2e-bandwidth');
  proxy = await startFaultProxy(testS3().endpoint);
  bucket = await createTestBucket(s3, 'bandwidth');
  service = await startService({
    databaseFile: path.join(work, 'state.db'),
    s3Endpoint: proxy.endpoint,
    env: { MAX_UPLOAD_BYTES_PER_SECOND: String(LIMIT), MULTIPART_THRESHOLD_BYTES: String(5 * MiB) },
  });
});

after(async () => {
  await service.stop();
  await proxy.close();
  await deleteBucket(s3, bucket);
  await removeTempDir(work);
  s3.destroy();
  assert.equal(await killAllServices(), 0, 'a service process was left running');
});

/** Body bytes sent to S3 so far: parts and single PUTs. */
function forwarded(): number {
  return proxy.stats.bodyBytesForwarded.PUT ?? 0;
}

/** Bytes per second between the last sample at or before `from` and the first at or after `to`. */
function rateBetween(samples: readonly Sample[], from: number, to: number): number {
  const start = samples.filter((sample) => sample.at <= from).at(-1);
  const end = samples.find((sample) => sample.at >= to);
  assert.ok(start && end, `samples around ${from} and ${to}`);
  return ((end.bytes - start.bytes) * 1000) / (end.at - start.at);
}

function mibPerSecond(rate: number): string {
  return `${(rate / MiB).toFixed(2)} MiB/s`;
}

describe('MAX_UPLOAD_BYTES_PER_SECOND', () => {
  it('holds the rate at S3 to the limit, follows a PATCH within 2 s, and the files arrive intact', async (t: TestContext) => {
    // More than the test sends while limited: multipart files and small ones, sent side by side.
    const source = path.join(work, 'source');
    const files: Record<string, FileDigests> = {};
    for (const [name, size] of [
      ['large-1.bin', 48 * MiB],
      ['large-2.bin', 40 * MiB],
      ['small-1.bin', 2 * MiB],
      ['small-2.bin', 3 * MiB],
      ['small-3.bin', MiB],
    ] as const) {
      files[name] = await writeRandomFile(path.join(source, name), size);
    }
    const samples: Sample[] = [];
    const sampler = setInterval(() => samples.push({ at: Date.now(), bytes: forwarded() }), 100);
    t.after(() => clearInterval(sampler));

    const uploadId = await createUpload(service, { source_folder: source, destination_bucket: bucket });
    await waitFor(() => forwarded() > 0, { timeoutMs: 15_000, message: 'the first bytes reach S3' });
    const start = Date.now() + 1000; // the first requests under way
    await waitFor(() => samples.some((sample) => sample.at >= start + WINDOW_MS), {
      timeoutMs: WINDOW_MS + 5000,
      intervalMs: 100,
      message: 'the measuring window passes',
    });
    const rate = rateBetween(samples, start, start + WINDOW_MS);
    t.diagnostic(`rate over ${WINDOW_MS / 1000} s at a limit of 4 MiB/s: ${mibPerSecond(rate)}`);
    assert.ok(Math.abs(rate - LIMIT) <= LIMIT * 0.1, `${mibPerSecond(rate)} is not within 10% of 4 MiB/s`);
    // Smooth: no second carries a burst (a whole 8 MiB part at once would be one).
    let fastest = 0;
    for (let from = start; from + 1000 <= start + WINDOW_MS; from += 500) {
      fastest = Math.max(fastest, rateBetween(samples, from, from + 1000));
    }
    t.diagnostic(`fastest second: ${mibPerSecond(fastest)}`);
    assert.ok(fastest <= LIMIT * 1.5, `a second carried ${mibPerSecond(fastest)}`);

    const patched = await api(service, 'PATCH', '/settings', { max_upload_bytes_per_second: LOWER_LIMIT });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.deepEqual(patched.body, { max_upload_bytes_per_second: LOWER_LIMIT });
    const changedAt = Date.now();
    const lowerFrom = changedAt + TAKES_EFFECT_MS;
    await waitFor(() => samples.some((sample) => sample.at >= lowerFrom + LOWER_WINDOW_MS), {
      timeoutMs: TAKES_EFFECT_MS + LOWER_WINDOW_MS + 5000,
      intervalMs: 100,
      message: 'the window after the change passes',
    });
    const lower = rateBetween(samples, lowerFrom, lowerFrom + LOWER_WINDOW_MS);
    t.diagnostic(`rate from 2 s after the change to 1 MiB/s: ${mibPerSecond(lower)}`);
    assert.ok(
      Math.abs(lower - LOWER_LIMIT) <= LOWER_LIMIT * 0.15,
      `${mibPerSecond(lower)} is not within 15% of 1 MiB/s`,
    );
    assert.ok(forwarded() < 94 * MiB, 'the files were not all sent yet: the limit held them back');

    const lifted = await api(service, 'PATCH', '/settings', { max_upload_bytes_per_second: 0 });
    assert.equal(lifted.status, 200);
    await waitForCompleted(service, uploadId, Object.keys(files).length, 60_000);
    for (const item of await fileItems(service, uploadId)) {
      const digests = files[item.relative_path];
      assert.ok(digests, item.relative_path);
      assert.equal(item.status, 'completed');
      // S3 checked every part's Content-MD5; a single PUT's ETag is the file's MD5.
      if (digests.bytes < 5 * MiB) assert.equal(item.etag, digests.md5, item.relative_path);
    }
    const read = await api(service, 'GET', '/settings');
    assert.deepEqual(read.body, { max_upload_bytes_per_second: 0 });
  });
});
