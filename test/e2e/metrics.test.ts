// GET /metrics as Prometheus scrapes it: the real service and the real S3 behind the fault proxy,
// an upload of a few files, one of them refused by S3 and one retried; the scrape parsed with the
// strict text-format parser, and its counters checked against the API (GET /uploads/{id}) and
// against the requests the proxy saw, and again after the refused file is retried. Then the
// token: 401 without it, and METRICS_PUBLIC=true.
// The built service runs (npm run build first), as users run it.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { ACCESS_DENIED, SLOW_DOWN, startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { waitFor } from '../support/poll.js';
import { parsePrometheusText, type MetricFamily } from '../support/prometheus-text.js';
import { createTestBucket, deleteBucket, testS3, testS3Client } from '../support/s3.js';
import { killAllServices, startService, type ServiceProcess } from '../support/service-process.js';
import type { UploadDetails } from '../support/upload-api.js';
import { makeTempDir, removeTempDir, writeRandomFile } from '../support/temp-tree.js';

const MiB = 1024 * 1024;
const TOKEN = 'metrics-e2e-token-0123456789abcdef';

let s3: S3Client;
let proxy: FaultProxy;
let work: string;

before(async () => {
  s3 = testS3Client();
  proxy = await startFaultProxy(testS3().endpoint);
  work = await makeTempDir('e2e-metrics');
});

after(async () => {
  await proxy.close();
  await removeTempDir(work);
  s3.destroy();
});

afterEach(async () => {
  proxy.clearFaults();
  assert.equal(await killAllServices(), 0, 'a test left a service process running');
});

async function call(
  service: ServiceProcess,
  method: string,
  route: string,
  options: { token?: string; body?: unknown } = {},
): Promise<{ status: number; contentType: string | null; text: string }> {
  const headers: Record<string, string> = {};
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${service.baseUrl}${route}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    text: await response.text(),
  };
}

async function details(service: ServiceProcess, uploadId: string): Promise<UploadDetails> {
  const response = await call(service, 'GET', `/uploads/${uploadId}`, { token: TOKEN });
  assert.equal(response.status, 200, response.text);
  return JSON.parse(response.text) as UploadDetails;
}

async function scrape(service: ServiceProcess, token?: string): Promise<Map<string, MetricFamily>> {
  const response = await call(service, 'GET', '/metrics', { token });
  assert.equal(response.status, 200, response.text);
  assert.match(response.contentType ?? '', /^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(response.text);
}

/** Every sample of `name` whose labels include `labels`, summed (0 when there is none). */
function sum(families: Map<string, MetricFamily>, name: string, labels: Record<string, string> = {}): number {
  return [...families.values()]
    .flatMap((family) => family.samples)
    .filter((sample) => sample.name === name)
    .filter((sample) => Object.entries(labels).every(([key, value]) => sample.labels[key] === value))
    .reduce((total, sample) => total + sample.value, 0);
}

/** The samples of `name` as "label=value,... → value", to compare whole series sets. */
function seriesOf(
  families: Map<string, MetricFamily>,
  name: string,
  labelNames: string[],
): Record<string, number> {
  const found: Record<string, number> = {};
  for (const sample of [...families.values()].flatMap((family) => family.samples)) {
    if (sample.name !== name || sample.value === 0) continue;
    found[labelNames.map((label) => sample.labels[label]).join(' ')] = sample.value;
  }
  return found;
}

describe('GET /metrics', () => {
  it('agrees with the API and with the requests S3 saw after an upload with a failure and a retry', async () => {
    const bucket = await createTestBucket(s3, 'metrics');
    const source = path.join(work, 'source');
    const sizes = { 'a.txt': 1000, 'sub/b.bin': 64 * 1024, 'big.bin': 6 * MiB, 'denied.txt': 300 };
    for (const [name, size] of Object.entries(sizes)) await writeRandomFile(path.join(source, name), size);
    // S3 refuses one file for good, and throttles another once (retried within its attempt).
    proxy.inject({ method: 'PUT', path: /\/denied\.txt$/, fault: ACCESS_DENIED });
    proxy.inject({ method: 'PUT', path: /\/a\.txt$/, times: 1, fault: SLOW_DOWN });
    proxy.resetStats();
    const service = await startService({
      databaseFile: path.join(work, 'agree.db'),
      s3Endpoint: proxy.endpoint,
      env: { API_TOKEN: TOKEN, MULTIPART_THRESHOLD_BYTES: String(5 * MiB), PART_SIZE_BYTES: String(5 * MiB) },
      built: true,
    });
    const created = await call(service, 'POST', '/uploads', {
      token: TOKEN,
      body: { source_folder: source, destination_bucket: bucket, upload_id: 'metrics-run' },
    });
    assert.equal(created.status, 201, created.text);
    const settled = async (completed: number) =>
      waitFor(
        async () => {
          const current = await details(service, 'metrics-run');
          return current.files.completed === completed && current.files.failed === 1 ? current : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 50, message: `${completed} files completed and 1 failed` },
      );
    await settled(3);
    // A file written now comes through the watch.
    await writeFile(path.join(source, 'late.txt'), 'late');
    const upload = await settled(4);

    const families = await scrape(service, TOKEN);
    const byUpload = { upload_id: 'metrics-run' };
    const completedBytes = sizes['a.txt'] + sizes['sub/b.bin'] + sizes['big.bin'] + 'late'.length;
    assert.equal(sum(families, 's3uploader_files_uploaded_total', byUpload), upload.files.completed);
    assert.equal(sum(families, 's3uploader_files_failed_total', byUpload), upload.files.failed);
    assert.equal(sum(families, 's3uploader_uploaded_bytes_total', byUpload), upload.bytes.uploaded);
    assert.equal(upload.bytes.uploaded, completedBytes);
    assert.equal(sum(families, 's3uploader_failed_bytes_total', byUpload), sizes['denied.txt']);
    assert.equal(sum(families, 's3uploader_files_retried_total', byUpload), 0, 'no file was started twice');
    assert.equal(sum(families, 's3uploader_files_skipped_total', byUpload), 0);

    // Every request the proxy saw, by operation and outcome, and nothing else.
    const seen: Record<string, number> = {};
    for (const record of proxy.log) {
      const outcome =
        record.fault === 'error'
          ? record.path.endsWith('/denied.txt')
            ? 'AccessDenied'
            : 'SlowDown'
          : record.outcome === 'reset' || record.outcome >= 300
            ? `unexpected ${String(record.outcome)}`
            : 'success';
      const key = `${record.operation} ${outcome}`;
      seen[key] = (seen[key] ?? 0) + 1;
    }
    assert.deepEqual(seriesOf(families, 's3uploader_s3_requests_total', ['operation', 'outcome']), seen);
    assert.equal(seen['PutObject SlowDown'], 1);
    assert.equal(seen['PutObject AccessDenied'], 1);
    assert.equal(seen['UploadPart success'], 2);
    assert.deepEqual(seriesOf(families, 's3uploader_s3_retries_total', ['operation']), { PutObject: 1 });
    for (const operation of ['PutObject', 'UploadPart'] as const) {
      assert.equal(
        sum(families, 's3uploader_s3_sent_bytes_total', { operation }),
        proxy.stats.bodyBytesByOperation[operation],
        `${operation}: the bytes S3 took`,
      );
      assert.equal(
        sum(families, 's3uploader_s3_request_duration_seconds_count', { operation }),
        Object.entries(seen)
          .filter(([key]) => key.startsWith(`${operation} `))
          .reduce((total, [, count]) => total + count, 0),
      );
    }
    assert.equal(sum(families, 's3uploader_s3_requests_in_flight'), 0);

    // The state, read at the scrape.
    assert.deepEqual(
      ['pending', 'in_progress', 'completed', 'failed'].map((status) =>
        sum(families, 's3uploader_queue_files', { status }),
      ),
      [0, 0, 4, 1],
    );
    assert.equal(sum(families, 's3uploader_queue_bytes', { status: 'completed' }), completedBytes);
    assert.equal(sum(families, 's3uploader_buffer_pool_leased_bytes'), 0);
    assert.equal(sum(families, 's3uploader_buffer_pool_capacity_bytes'), 256 * MiB);
    assert.ok(sum(families, 's3uploader_watch_events_total', { kind: 'rename' }) >= 1);
    assert.ok(sum(families, 's3uploader_scan_duration_seconds_count', { kind: 'initial' }) >= 1);
    assert.ok(
      sum(families, 's3uploader_store_operation_duration_seconds_count', { operation: 'completeTask' }) >= 4,
    );
    assert.ok(sum(families, 'process_cpu_seconds_total') > 0);
    assert.equal(families.get('s3uploader_build_info')?.samples.length, 1);

    // Retried once S3 lets it through: a file started again; the failure stays counted.
    proxy.clearFaults();
    const retried = await call(service, 'POST', '/uploads/metrics-run/retry', { token: TOKEN });
    assert.equal(retried.status, 200, retried.text);
    await waitFor(async () => (await details(service, 'metrics-run')).files.completed === 5, {
      timeoutMs: 30_000,
      intervalMs: 50,
      message: 'the refused file completed after its retry',
    });
    const later = await scrape(service, TOKEN);
    assert.deepEqual(
      ['files_retried_total', 'retried_bytes_total', 'files_uploaded_total', 'files_failed_total'].map(
        (name) => sum(later, `s3uploader_${name}`, byUpload),
      ),
      [1, sizes['denied.txt'], 5, 1],
    );

    // The token guards it.
    const refused = await call(service, 'GET', '/metrics');
    assert.equal(refused.status, 401);
    assert.equal((JSON.parse(refused.text) as { error: string }).error, 'unauthorized');
    await service.stop();
    await deleteBucket(s3, bucket);
  });

  it('answers without the token with METRICS_PUBLIC=true, and not at all with METRICS_ENABLED=false', async () => {
    const [open, off] = await Promise.all([
      startService({
        databaseFile: path.join(work, 'public.db'),
        env: { API_TOKEN: TOKEN, METRICS_PUBLIC: 'true' },
        built: true,
      }),
      startService({
        databaseFile: path.join(work, 'off.db'),
        env: { METRICS_ENABLED: 'false' },
        built: true,
      }),
    ]);
    assert.ok((await scrape(open)).has('s3uploader_queue_files'));
    assert.equal(
      (await call(open, 'GET', '/uploads')).status,
      401,
      'the rest of the API still needs the token',
    );
    assert.equal((await call(off, 'GET', '/metrics')).status, 404);
    assert.equal(off.logs.find((entry) => entry.msg === 'service ready')?.metrics, 'off');
    await Promise.all([open.stop(), off.stop()]);
  });
});
