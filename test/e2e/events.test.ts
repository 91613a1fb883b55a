// GET /events against the service as users run it (a child process, its own SQLite file, the real
// S3): the events of one upload in order and with their content, from creation to cancel; then a
// client that stops reading while megabytes of events flow: it is dropped, the others are not,
// and the service's memory does not grow with what it was not reading.
import assert from 'node:assert/strict';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { openEventStream, type StreamedEvent } from '../support/event-stream.js';
import { waitFor } from '../support/poll.js';
import { createTestBucket, deleteBucket, testS3Client } from '../support/s3.js';
import { killAllServices, startService, type ServiceProcess } from '../support/service-process.js';
import { makeTempDir, removeTempDir, writeRandomFile } from '../support/temp-tree.js';

const MiB = 1024 * 1024;
const TOKEN = 'events-e2e-token';
/** The flood: file.failed events of about 6 KB each. */
const FLOOD_FILES = 10_000;
const WARM_UP_FILES = 1000;

let s3: S3Client;
let work: string;

before(async () => {
  s3 = testS3Client();
  work = await makeTempDir('e2e-events');
});

after(async () => {
  await removeTempDir(work);
  s3.destroy();
});

afterEach(async () => {
  assert.equal(await killAllServices(), 0, 'a test left a service process running');
});

/** A request with the token; the answer's status and JSON body. */
async function call<T>(
  service: ServiceProcess,
  method: string,
  route: string,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  const response = await fetch(`${service.baseUrl}${route}`, {
    method,
    headers: {
      authorization: `Bearer ${TOKEN}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as T };
}

/** A relative path of about `length` characters, in folders of 200: S3 takes keys of 1,024 bytes at most. */
function longPath(length: number, name: string): string {
  const folders = Array.from({ length: Math.floor(length / 201) }, (_, i) => `${i}`.padEnd(200, 'd'));
  return [...folders, name].join('/');
}

const phasesOf = (events: StreamedEvent[]): unknown[] =>
  events.filter((event) => event.event === 'upload.phase').map((event) => event.data.phase);

describe('GET /events', () => {
  it('tells the life of an upload in order: created, phases, files started, progressing, completed, failed, cancelled', async () => {
    const bucket = await createTestBucket(s3, 'events');
    const source = path.join(work, 'order');
    await mkdir(path.join(source, 'sub'), { recursive: true });
    await writeFile(path.join(source, 'a.txt'), 'a');
    await writeFile(path.join(source, 'sub', 'b.txt'), 'bb');
    // Three parts of up to 5 MiB, one at a time, at 8 MiB/s: progress is told between them.
    await writeRandomFile(path.join(source, 'big.bin'), 12 * MiB);
    const service = await startService({
      databaseFile: path.join(work, 'order.db'),
      env: {
        API_TOKEN: TOKEN,
        MULTIPART_THRESHOLD_BYTES: String(5 * MiB),
        PART_SIZE_BYTES: String(5 * MiB),
        MAX_CONCURRENT_PARTS: '1',
        MAX_UPLOAD_BYTES_PER_SECOND: String(8 * MiB),
      },
    });
    const url = `${service.baseUrl}/events`;
    const refused = await fetch(url);
    assert.equal(refused.status, 401);
    assert.equal(((await refused.json()) as { error: string }).error, 'unauthorized');

    // Subscribed before the upload exists, to its id: nothing of it is missed.
    const uploadId = 'ev-order';
    const stream = await openEventStream(`${url}?upload_id=${uploadId}`, TOKEN);
    const everything = await openEventStream(url, TOKEN);
    const created = await call(service, 'POST', '/uploads', {
      source_folder: source,
      destination_bucket: bucket,
      destination_prefix: 'ev',
      upload_id: uploadId,
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    await waitFor(() => phasesOf(stream.events).includes('idle'), {
      timeoutMs: 30_000,
      message: 'the upload is idle',
    });

    const first = stream.events[0];
    assert.deepEqual(first?.event, 'upload.created');
    assert.equal(first.data.upload_id, uploadId);
    assert.deepEqual(phasesOf(stream.events), ['scanning', 'uploading', 'idle']);
    const phases = stream.events.filter((event) => event.event === 'upload.phase');
    assert.deepEqual(
      phases.map((event) => event.data.previous_phase),
      [null, 'scanning', 'uploading'],
    );
    const scanned = stream.events.find((event) => event.event === 'upload.scanned');
    assert.deepEqual(
      { kind: scanned?.data.kind, files_seen: scanned?.data.files_seen, error: scanned?.data.error },
      { kind: 'initial', files_seen: 3, error: null },
    );

    // Per file: started, then (for the big one) progress, then completed, with the same facts as REST.
    const files = await call<{
      items: { task_id: number; relative_path: string; object_key: string; size: number }[];
    }>(service, 'GET', `/uploads/${uploadId}/files`);
    assert.equal(files.body.items.length, 3);
    for (const item of files.body.items) {
      const ofTask = stream.events.filter((event) => event.data.task_id === item.task_id);
      const kinds = ofTask.map((event) => event.event);
      assert.equal(kinds[0], 'file.started', `${item.relative_path}: ${kinds.join(', ')}`);
      assert.equal(kinds.at(-1), 'file.completed', `${item.relative_path}: ${kinds.join(', ')}`);
      assert.ok(
        kinds.slice(1, -1).every((kind) => kind === 'file.progress'),
        `${item.relative_path}: ${kinds.join(', ')}`,
      );
      const facts = { path: item.relative_path, key: item.object_key, size: item.size };
      for (const event of [ofTask[0]!, ofTask.at(-1)!]) {
        assert.deepEqual(
          { path: event.data.path, key: event.data.key, size: event.data.size },
          facts,
          `${event.event} of ${item.relative_path}`,
        );
      }
      assert.equal(ofTask.at(-1)!.data.bytes_sent, item.size, 'every byte was sent');
      if (item.relative_path === 'big.bin') {
        const progress = ofTask.filter((event) => event.event === 'file.progress');
        const uploaded = progress.map((event) => Number(event.data.bytes_uploaded));
        assert.ok(
          uploaded.some((bytes) => bytes > 0 && bytes < item.size),
          `the big file told its progress between its parts: ${uploaded.join(', ')}`,
        );
        assert.ok(
          uploaded.every((bytes, i) => bytes <= item.size && bytes >= (uploaded[i - 1] ?? 0)),
          `progress never goes back: ${uploaded.join(', ')}`,
        );
      }
    }

    // A file whose key would pass S3's 1,024 bytes fails, with why.
    const tooLong = longPath(1300, 'late.txt');
    await mkdir(path.dirname(path.join(source, tooLong)), { recursive: true });
    await writeFile(path.join(source, tooLong), 'late');
    const failed = await waitFor(() => stream.events.find((event) => event.event === 'file.failed'), {
      timeoutMs: 20_000,
      message: 'the file with a key too long failed',
    });
    assert.equal(failed.data.path, tooLong);
    assert.equal(failed.data.key, `ev/${tooLong}`);
    assert.match(
      String(failed.data.message),
      /^the object key is \d+ bytes of UTF-8; S3 allows at most 1024/,
    );
    await waitFor(() => phasesOf(stream.events).at(-1) === 'failed', {
      timeoutMs: 10_000,
      message: 'the phase became failed',
    });

    assert.equal((await call(service, 'DELETE', `/uploads/${uploadId}`)).status, 200);
    await waitFor(() => phasesOf(stream.events).at(-1) === 'cancelled', {
      timeoutMs: 10_000,
      message: 'the phase became cancelled',
    });
    const tail = stream.events.slice(-2).map((event) => [event.event, event.data.phase ?? null]);
    assert.deepEqual(tail, [
      ['upload.cancelled', null],
      ['upload.phase', 'cancelled'],
    ]);

    // The whole stream: one upload's events, ids increasing, times in ISO 8601; the same events
    // (same ids) as an unfiltered client saw.
    const ids = stream.events.map((event) => Number(event.id));
    assert.ok(
      ids.every((id, i) => i === 0 || id > ids[i - 1]!),
      `ids increase: ${ids.join(',')}`,
    );
    for (const event of stream.events) {
      assert.equal(event.data.upload_id, uploadId);
      assert.match(String(event.data.at), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    }
    await waitFor(() => everything.events.length >= stream.events.length, {
      timeoutMs: 5000,
      message: 'the unfiltered client has them too',
    });
    assert.deepEqual(
      everything.events.filter((event) => event.data.upload_id === uploadId),
      stream.events,
    );

    stream.close();
    everything.close();
    assert.equal(await service.stop(), 0);
    await deleteBucket(s3, bucket);
  });

  it('drops a client that stops reading, keeps the others, and does not grow with what it did not read', async (t) => {
    const started = Date.now();
    const step = (what: string) => t.diagnostic(`${((Date.now() - started) / 1000).toFixed(1)} s: ${what}`);
    const bucket = await createTestBucket(s3, 'events-flood');
    const source = path.join(work, 'flood');
    // Files whose keys pass S3's limit fail at once, without a request to S3: each is one
    // file.failed of about 6 KB (its path and key), so megabytes of events flow in a few seconds.
    const folder = path.dirname(path.join(source, longPath(2900, 'x')));
    await mkdir(folder, { recursive: true });
    for (let i = 0; i < FLOOD_FILES; i++) await writeFile(path.join(folder, `f-${i}`.padEnd(100, 'f')), '');
    step(`${FLOOD_FILES} files written`);
    // Built and with npm start's flags, as users run it: its memory is then steady under load.
    const service = await startService({
      databaseFile: path.join(work, 'flood.db'),
      built: true,
      env: { LOG_LEVEL: 'info' },
    });
    const url = `${service.baseUrl}/events`;
    const stalled = await stalledClient(service);
    const reader = await countingClient(url);

    const created = await fetch(`${service.baseUrl}/uploads`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ source_folder: source, destination_bucket: bucket }),
    });
    assert.equal(created.status, 201, await created.text());
    step('upload created');
    // The memory is measured once the flood is under way (the service's first files warm it up),
    // and from then on: had the client been kept, what it does not read would pile up in it.
    await waitFor(() => reader.failedEvents() >= WARM_UP_FILES, {
      timeoutMs: 30_000,
      intervalMs: 10,
      message: `the reading client got ${WARM_UP_FILES} file.failed`,
    });
    const rssWarm = await rssOf(service);
    const flowedWarm = reader.bytes();
    let rssPeak = rssWarm;
    const sampler = setInterval(() => {
      void rssOf(service).then(
        (rss) => (rssPeak = Math.max(rssPeak, rss)),
        () => undefined,
      );
    }, 50);
    try {
      await waitFor(() => reader.failedEvents() === FLOOD_FILES, {
        timeoutMs: 30_000,
        intervalMs: 50,
        message: `the reading client got all ${FLOOD_FILES} file.failed`,
      });
    } finally {
      clearInterval(sampler);
    }
    const flowedSince = reader.bytes() - flowedWarm;
    const grown = Math.max(rssPeak, await rssOf(service)) - rssWarm;
    step(
      `every event read; RSS ${(rssWarm / MiB).toFixed(0)} MiB after the warm-up, then grew by ${(grown / MiB).toFixed(1)} MiB while ${(flowedSince / MiB).toFixed(1)} MiB of events flowed`,
    );

    const drops = service.logs.filter((line) => String(line.msg).startsWith('event stream client dropped'));
    assert.equal(drops.length, 1, 'one client was dropped');
    const [warning] = drops;
    assert.equal(warning?.level, 40);
    assert.equal(warning.client, `127.0.0.1:${stalled.socket.localPort}`, 'the one that stopped reading');
    assert.ok(Number(warning.queuedBytes) <= MiB, `queued ${String(warning.queuedBytes)} bytes`);
    assert.ok(Number(warning.queuedEvents) <= 1000, `queued ${String(warning.queuedEvents)} events`);
    assert.equal(reader.ended(), false, 'the reading client is still subscribed');

    // Reading at last, the dropped client gets what the kernel held, then the connection's end.
    stalled.socket.resume();
    await waitFor(() => stalled.closed(), { timeoutMs: 10_000, message: 'the server closed its connection' });
    assert.ok(
      stalled.received() < reader.bytes() / 4,
      `the dropped client got ${stalled.received()} of ${reader.bytes()} bytes`,
    );
    assert.ok(flowedSince > 20 * MiB, `${flowedSince} bytes of events flowed`);
    assert.ok(
      grown < flowedSince / 2,
      `RSS grew by ${(grown / MiB).toFixed(1)} MiB while ${(flowedSince / MiB).toFixed(1)} MiB of events flowed`,
    );

    // A client that goes away leaves its pool's connections behind: the service stops anyway.
    reader.close();
    const stopping = Date.now();
    assert.equal(await service.stop(), 0);
    assert.ok(Date.now() - stopping < 10_000, `stopped in ${Date.now() - stopping} ms`);
    step('stopped');
    await deleteBucket(s3, bucket);
  });
});

/** GET /events from a socket that reads nothing (until resume()). */
async function stalledClient(
  service: ServiceProcess,
): Promise<{ socket: Socket; received(): number; closed(): boolean }> {
  const { hostname, port } = new URL(service.baseUrl);
  const socket = connect(Number(port), hostname);
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.pause();
  let received = 0;
  let closed = false;
  socket.on('data', (chunk: Buffer) => (received += chunk.length));
  socket.on('error', () => undefined); // a reset is one way the server may close it
  socket.on('close', () => (closed = true));
  socket.write(`GET /events HTTP/1.1\r\nHost: ${hostname}\r\n\r\n`);
  return { socket, received: () => received, closed: () => closed };
}

/** GET /events read as fast as it comes, counting bytes and file.failed events without keeping them. */
async function countingClient(url: string): Promise<{
  bytes(): number;
  failedEvents(): number;
  ended(): boolean;
  close(): void;
}> {
  const controller = new AbortController();
  const response = await fetch(url, { signal: controller.signal });
  assert.equal(response.status, 200);
  const marker = 'event: file.failed\n';
  let bytes = 0;
  let failed = 0;
  let ended = false;
  let carry = '';
  const decoder = new TextDecoder();
  void (async () => {
    for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
      bytes += chunk.length;
      const text = carry + decoder.decode(chunk, { stream: true });
      failed += text.split(marker).length - 1;
      carry = text.slice(-(marker.length - 1));
    }
  })()
    .catch(() => undefined)
    .finally(() => (ended = true));
  return {
    bytes: () => bytes,
    failedEvents: () => failed,
    ended: () => ended,
    close: () => controller.abort(),
  };
}

/** The resident memory of the service's process, in bytes. */
async function rssOf(service: ServiceProcess): Promise<number> {
  const status = await readFile(`/proc/${service.child.pid}/status`, 'utf8');
  const kib = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
  assert.ok(kib, 'VmRSS in /proc/<pid>/status');
  return Number(kib) * 1024;
}
