// The metrics' collectors, each fed the way the service feeds it: the engine's event bus, a real
// SQLite store through timedStore, a real buffer pool, a real folder watch; every scrape read back
// with the strict text-format parser. The S3 middleware is tested against S3 in
// test/integration/s3-observer.test.ts, the whole service in test/e2e/metrics.test.ts.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { buildApp } from '../../src/api/app.js';
import type { ServiceEvent } from '../../src/domain/events.js';
import { EventBus } from '../../src/engine/events.js';
import { createLogger } from '../../src/logger.js';
import { ServiceMetrics } from '../../src/metrics/service-metrics.js';
import { UploadService } from '../../src/service/upload-service.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { timedStore } from '../../src/store/timed-store.js';
import { BufferPool } from '../../src/transfer/buffer-pool.js';
import { watchFolder } from '../../src/watch/watcher.js';
import { FakeAuditor } from '../support/fake-auditor.js';
import { waitFor } from '../support/poll.js';
import { parsePrometheusText, type MetricFamily } from '../support/prometheus-text.js';
import { RecordingLifecycle } from '../support/recording-lifecycle.js';
import { keyFor, newUpload, observed, readyAt, T0 } from '../support/store-fixtures.js';

const silent = createLogger('silent');

function newMetrics(options: { cancelledKeptMs?: number; processMetrics?: boolean } = {}): ServiceMetrics {
  return new ServiceMetrics({ version: '9.8.7', logger: silent, processMetrics: false, ...options });
}

async function scrape(metrics: ServiceMetrics): Promise<Map<string, MetricFamily>> {
  return parsePrometheusText(await metrics.scrape());
}

/** The value of the one sample named `name` whose labels include `labels`; undefined when none. */
function valueOf(
  families: Map<string, MetricFamily>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const matching = [...families.values()]
    .flatMap((family) => family.samples)
    .filter(
      (sample) =>
        sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
    );
  assert.ok(matching.length <= 1, `${name} ${JSON.stringify(labels)} names one series`);
  return matching[0]?.value;
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'metrics-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const file = { taskId: 1, path: 'a/b.txt', key: 'k/a/b.txt', at: T0 };

describe('the Prometheus text parser of the tests', () => {
  it('reads a valid exposition: HELP and TYPE, escapes, a histogram', () => {
    const families = parsePrometheusText(
      [
        '# HELP a_total Things, with a \\\\ and a\\nline.',
        '# TYPE a_total counter',
        'a_total{path="x\\"y\\\\z\\n",b="1"} 3',
        'a_total{path="other"} 0 1700000000000',
        '# A plain comment.',
        '',
        '# TYPE h histogram',
        'h_bucket{le="0.5"} 1',
        'h_bucket{le="+Inf"} 2',
        'h_sum 0.75',
        'h_count 2',
        'g NaN',
        'n Nan',
        '',
      ].join('\n'),
    );
    assert.equal(families.get('a_total')?.help, 'Things, with a \\ and a\nline.');
    assert.deepEqual(families.get('a_total')?.samples[0]?.labels, { path: 'x"y\\z\n', b: '1' });
    assert.equal(families.get('h')?.samples.length, 4);
    assert.equal(families.get('g')?.type, 'untyped');
  });

  it('refuses what the format does not allow', () => {
    const bad: Record<string, string> = {
      'no final line feed': 'a 1',
      'a second TYPE': '# TYPE a gauge\n# TYPE a gauge\na 1\n',
      'an unknown type': '# TYPE a meter\na 1\n',
      'TYPE after samples': 'a 1\n# TYPE a gauge\n',
      'samples apart': '# TYPE a gauge\na{x="1"} 1\nb 2\na{x="2"} 3\n',
      'a series twice': 'a{x="1"} 1\na{x="1"} 2\n',
      'a bad value': 'a one\n',
      'an unquoted label': 'a{x=1} 1\n',
      'a bad escape in a label': 'a{x="\\t"} 1\n',
      'a bad name': '1a 1\n',
      'a negative counter': '# TYPE a counter\na -1\n',
      'buckets not cumulative':
        '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
      'no +Inf bucket': '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n',
      '+Inf not _count': '# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 2\n',
    };
    for (const [why, text] of Object.entries(bad)) assert.throws(() => parsePrometheusText(text), Error, why);
  });
});

describe('metrics from the events', () => {
  it('counts files and bytes by upload: uploaded, failed, retried, skipped; progress is ignored', async () => {
    const metrics = newMetrics();
    const bus = new EventBus();
    metrics.listen(bus);
    const events: ServiceEvent[] = [
      { type: 'upload.created', uploadId: 'u1', at: T0 },
      { type: 'file.started', uploadId: 'u1', ...file, size: 100, attempt: 1 },
      { type: 'file.progress', uploadId: 'u1', ...file, bytesUploaded: 50, size: 100 },
      {
        type: 'file.completed',
        uploadId: 'u1',
        ...file,
        size: 100,
        bytesSent: 100,
        method: 'single',
        skipped: null,
      },
      { type: 'file.started', uploadId: 'u1', ...file, taskId: 2, size: 30, attempt: 1 },
      { type: 'file.failed', uploadId: 'u1', ...file, taskId: 2, size: 30, message: 'AccessDenied' },
      { type: 'file.started', uploadId: 'u1', ...file, taskId: 2, size: 30, attempt: 2 },
      {
        type: 'file.completed',
        uploadId: 'u1',
        ...file,
        taskId: 2,
        size: 30,
        bytesSent: 30,
        method: 'multipart',
        skipped: null,
      },
      {
        type: 'file.completed',
        uploadId: 'u2',
        ...file,
        size: 7,
        bytesSent: 0,
        method: 'unchanged',
        skipped: null,
      },
      {
        type: 'file.completed',
        uploadId: 'u2',
        ...file,
        taskId: 3,
        size: 5,
        bytesSent: 0,
        method: 'skipped',
        skipped: 'already in S3',
      },
    ];
    for (const event of events) bus.publish(event);
    const families = await scrape(metrics);
    const of = (name: string, uploadId: string, reason?: string) =>
      valueOf(families, name, { upload_id: uploadId, ...(reason ? { reason } : {}) });
    assert.deepEqual(
      [
        of('s3uploader_files_uploaded_total', 'u1'),
        of('s3uploader_uploaded_bytes_total', 'u1'),
        of('s3uploader_files_failed_total', 'u1'),
        of('s3uploader_failed_bytes_total', 'u1'),
        of('s3uploader_files_retried_total', 'u1'),
        of('s3uploader_retried_bytes_total', 'u1'),
        of('s3uploader_files_skipped_total', 'u1', 'unchanged'),
      ],
      [2, 130, 1, 30, 1, 30, 0],
    );
    assert.deepEqual(
      [
        of('s3uploader_files_uploaded_total', 'u2'),
        of('s3uploader_files_skipped_total', 'u2', 'unchanged'),
        of('s3uploader_skipped_bytes_total', 'u2', 'unchanged'),
        of('s3uploader_files_skipped_total', 'u2', 'already_in_s3'),
        of('s3uploader_skipped_bytes_total', 'u2', 'already_in_s3'),
      ],
      [0, 1, 7, 1, 5],
    );
    assert.equal(valueOf(families, 's3uploader_build_info', { version: '9.8.7' }), 1);
    metrics.stop();
    bus.publish(events[3]!);
    assert.equal(
      valueOf(await scrape(metrics), 's3uploader_files_uploaded_total', { upload_id: 'u1' }),
      2,
      'stopped: no longer listening',
    );
  });

  it("times scans, counts failed ones, and shows the last scan's names that are not UTF-8", async () => {
    const metrics = newMetrics();
    const bus = new EventBus();
    metrics.listen(bus);
    const scan = { uploadId: 'u1', filesSeen: 10, filesChanged: 2, at: T0 };
    bus.publish({
      type: 'upload.scanned',
      ...scan,
      kind: 'initial',
      filesNotUtf8: 3,
      durationMs: 40,
      error: null,
    });
    bus.publish({
      type: 'upload.scanned',
      ...scan,
      kind: 'rescan',
      filesNotUtf8: 1,
      durationMs: 2000,
      error: null,
    });
    bus.publish({
      type: 'upload.scanned',
      ...scan,
      kind: 'rescan',
      filesNotUtf8: 0,
      durationMs: 1,
      error: 'gone',
    });
    const families = await scrape(metrics);
    const duration = 's3uploader_scan_duration_seconds';
    assert.equal(valueOf(families, `${duration}_count`, { kind: 'initial' }), 1);
    assert.equal(valueOf(families, `${duration}_bucket`, { kind: 'initial', le: '0.05' }), 1);
    assert.equal(valueOf(families, `${duration}_bucket`, { kind: 'initial', le: '0.01' }), 0);
    assert.equal(valueOf(families, `${duration}_sum`, { kind: 'rescan' }), 2);
    assert.equal(
      valueOf(families, `${duration}_count`, { kind: 'rescan' }),
      1,
      'the failed scan is not timed',
    );
    assert.equal(valueOf(families, 's3uploader_scan_failures_total', { kind: 'rescan' }), 1);
    assert.equal(
      valueOf(families, 's3uploader_files_not_utf8', { upload_id: 'u1' }),
      1,
      'the last good scan',
    );
    metrics.stop();
  });

  it("forgets a cancelled upload's series after a while, and only its own", async () => {
    const metrics = newMetrics({ cancelledKeptMs: 50 });
    const bus = new EventBus();
    metrics.listen(bus);
    bus.publish({ type: 'upload.created', uploadId: 'gone', at: T0 });
    bus.publish({ type: 'upload.created', uploadId: 'kept', at: T0 });
    bus.publish({ type: 'upload.cancelled', uploadId: 'gone', at: T0 });
    const uploadIds = async () =>
      new Set(
        [...(await scrape(metrics)).values()]
          .flatMap((family) => family.samples)
          .map((sample) => sample.labels.upload_id)
          .filter((id) => id !== undefined),
      );
    assert.deepEqual(await uploadIds(), new Set(['gone', 'kept']), 'still there just after the cancel');
    await waitFor(async () => !(await uploadIds()).has('gone'), {
      message: 'the cancelled upload is forgotten',
    });
    assert.deepEqual(await uploadIds(), new Set(['kept']));
    metrics.stop();
  });
});

describe('metrics of the service itself', () => {
  it('times every store call by operation, failures included', async (t) => {
    const metrics = newMetrics();
    const real = openSqliteStore(path.join(await tempDir(t), 'state.db'));
    const store = timedStore(real, metrics.store);
    await store.createUpload(newUpload('u1'), T0);
    await store.getUpload('u1');
    await store.getUpload('u2');
    await assert.rejects(store.createUpload(newUpload('u1'), T0));
    await store.close();
    const families = await scrape(metrics);
    const count = (operation: string) =>
      valueOf(families, 's3uploader_store_operation_duration_seconds_count', { operation });
    assert.deepEqual(
      [count('createUpload'), count('getUpload'), count('close'), count('listUploads')],
      [2, 2, 1, undefined],
    );
    assert.equal(await real.health(), 'unreachable', 'the wrapper closed the real store');
  });

  it('reads the queue by status, the instances and the buffer pool at each scrape', async (t) => {
    const metrics = newMetrics();
    const store = openSqliteStore(path.join(await tempDir(t), 'state.db'));
    t.after(() => store.close());
    const buffers = new BufferPool(1000);
    metrics.readState({ store, buffers });
    await store.registerInstance({ host: 'uploader-1', pid: 1, version: '0.0.0', sourceRoots: null });
    await store.createUpload(newUpload('u1'), T0);
    await store.activateUpload('u1', T0);
    await store.recordObservedFiles('u1', observed(3, 40), keyFor, readyAt(T0), T0);
    await store.claimReadyTasks(T0, 1);
    const lease = await buffers.lease(300);
    let families = await scrape(metrics);
    const queue = (name: string, status: string) => valueOf(families, name, { status });
    assert.deepEqual(
      [queue('s3uploader_queue_files', 'pending'), queue('s3uploader_queue_files', 'in_progress')],
      [2, 1],
    );
    assert.deepEqual(
      [queue('s3uploader_queue_bytes', 'pending'), queue('s3uploader_queue_files', 'failed')],
      [80, 0],
    );
    assert.equal(valueOf(families, 's3uploader_buffer_pool_leased_bytes'), 300);
    assert.equal(valueOf(families, 's3uploader_buffer_pool_capacity_bytes'), 1000);
    const inProgress = { instance: store.instanceId, host: 'uploader-1' };
    assert.equal(valueOf(families, 's3uploader_instance_files_in_progress', inProgress), 1);
    lease.release();
    await store.cancelUpload('u1', T0 + 1);
    families = await scrape(metrics);
    assert.equal(valueOf(families, 's3uploader_buffer_pool_leased_bytes'), 0);
    assert.equal(queue('s3uploader_queue_files', 'pending'), 0, 'a cancelled upload is out of the queue');
  });

  it('scrapes without the queue while the database refuses', async (t) => {
    const metrics = newMetrics();
    const store = openSqliteStore(path.join(await tempDir(t), 'state.db'));
    metrics.readState({ store, buffers: new BufferPool(10) });
    await store.close();
    const families = await scrape(metrics);
    assert.equal(families.get('s3uploader_queue_files')?.samples.length, 0);
    assert.equal(valueOf(families, 's3uploader_buffer_pool_capacity_bytes'), 10);
  });

  it('counts the file-system events a watch receives, by kind', async (t) => {
    const metrics = newMetrics();
    const folder = await tempDir(t);
    const watch = await watchFolder(
      folder,
      () => true,
      { filesChanged: () => undefined, error: () => undefined },
      {
        observer: metrics.watch,
      },
    );
    t.after(() => watch.close());
    const count = async (kind: string) =>
      valueOf(await scrape(metrics), 's3uploader_watch_events_total', { kind }) ?? 0;
    await writeFile(path.join(folder, 'a.txt'), 'a'); // a creation (rename), then a write (change)
    await waitFor(async () => (await count('rename')) >= 1 && (await count('change')) >= 1, {
      message: 'the creation and the write are counted',
    });
    const renamed = await count('rename');
    await rm(path.join(folder, 'a.txt'));
    await waitFor(async () => (await count('rename')) > renamed, { message: 'the deletion is counted' });
    const families = await scrape(metrics);
    assert.equal(families.get('s3uploader_watch_events_total')?.type, 'counter');
  });

  it("includes prom-client's process metrics, and every family has a HELP and a TYPE", async () => {
    const metrics = newMetrics({ processMetrics: true });
    const families = await scrape(metrics);
    assert.ok((valueOf(families, 'process_cpu_seconds_total') ?? -1) >= 0);
    assert.ok(families.has('nodejs_heap_size_used_bytes'));
    for (const [name, family] of families) {
      assert.ok(family.help !== undefined && family.help !== '', `${name} has a HELP`);
      if (name.startsWith('s3uploader_')) {
        assert.notEqual(family.type, 'untyped', `${name} has a TYPE`);
        assert.match(
          name,
          family.type === 'counter' ? /_total$/ : /^(?!.*_total$)/,
          `${name}: _total on counters only`,
        );
      }
    }
    assert.match(metrics.contentType, /^text\/plain; version=0\.0\.4/);
  });
});

describe('GET /metrics', () => {
  const TOKEN = 'metrics-test-token-0123456789';

  async function appWith(
    t: TestContext,
    options: { apiToken?: string; public?: boolean; metrics?: boolean },
  ) {
    const store = openSqliteStore(path.join(await tempDir(t), 'state.db'));
    const service = new UploadService({
      store,
      lifecycle: new RecordingLifecycle(),
      auditor: new FakeAuditor(),
    });
    const metrics = newMetrics();
    const app = await buildApp({
      service,
      logger: false,
      version: '0.0.0',
      apiToken: options.apiToken,
      metrics:
        options.metrics === false ? undefined : { exposition: metrics, public: options.public ?? false },
    });
    t.after(async () => {
      await app.close();
      await store.close();
    });
    return app;
  }

  it('serves the text format behind the token, and without it when public', async (t) => {
    const guarded = await appWith(t, { apiToken: TOKEN });
    const refused = await guarded.inject({ method: 'GET', url: '/metrics' });
    assert.equal(refused.statusCode, 401);
    assert.equal(refused.json<{ error: string }>().error, 'unauthorized');
    const wrong = await guarded.inject({
      method: 'GET',
      url: '/metrics',
      headers: { authorization: 'Bearer nope-nope-nope-nope' },
    });
    assert.equal(wrong.statusCode, 401);
    const served = await guarded.inject({
      method: 'GET',
      url: '/metrics',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(served.statusCode, 200);
    assert.match(String(served.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    assert.ok(parsePrometheusText(served.body).has('s3uploader_build_info'));

    const open = await appWith(t, { apiToken: TOKEN, public: true });
    assert.equal((await open.inject({ method: 'GET', url: '/metrics' })).statusCode, 200);
    assert.equal((await open.inject({ method: 'HEAD', url: '/metrics' })).statusCode, 200);
    assert.equal(
      (await open.inject({ method: 'GET', url: '/uploads' })).statusCode,
      401,
      'only /metrics is open',
    );
  });

  it('is absent when metrics are off, and never in the OpenAPI document', async (t) => {
    const off = await appWith(t, { metrics: false });
    assert.equal((await off.inject({ method: 'GET', url: '/metrics' })).statusCode, 404);
    const on = await appWith(t, {});
    const document = (await on.inject({ method: 'GET', url: '/openapi.json' })).json<{
      paths: Record<string, unknown>;
    }>();
    assert.equal(document.paths['/metrics'], undefined);
  });
});
