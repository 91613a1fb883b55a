// GET /events on a listening app (a stream cannot be inject()ed): the headers at once, one frame per
// event, the filter, the heartbeat, the token, a client that stops reading dropped with one warn
// line, and app.close() ending every open stream at once, a stalled one included, and not waiting
// for a connection that never sent a request.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { pino } from 'pino';
import { buildApp, type App, type AppDeps } from '../../src/api/app.js';
import type { ServiceEvent } from '../../src/domain/events.js';
import { EventBus } from '../../src/engine/events.js';
import { UploadService } from '../../src/service/upload-service.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { openEventStream } from '../support/event-stream.js';
import { FakeAuditor } from '../support/fake-auditor.js';
import { waitFor } from '../support/poll.js';
import { RecordingLifecycle } from '../support/recording-lifecycle.js';
import { makeTempDir, removeTempDir } from '../support/temp-tree.js';

const TOKEN = 'events-test-token';

interface Listening {
  app: App;
  bus: EventBus;
  url: string;
  port: number;
  logs: Record<string, unknown>[];
}

async function listen(t: TestContext, deps: Partial<AppDeps> = {}): Promise<Listening> {
  const root = await makeTempDir('events-api');
  const store = openSqliteStore(path.join(root, 'state.db'));
  const service = new UploadService({
    store,
    lifecycle: new RecordingLifecycle(),
    auditor: new FakeAuditor(),
  });
  const bus = new EventBus();
  const logs: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'warn' },
    { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) },
  );
  const app = await buildApp({ service, logger, version: '0', events: bus, ...deps });
  await app.listen({ port: 0, host: '127.0.0.1' });
  t.after(async () => {
    await app.close();
    await store.close();
    await removeTempDir(root);
  });
  const { port } = app.server.address() as { port: number };
  return { app, bus, url: `http://127.0.0.1:${port}/events`, port, logs };
}

const created = (uploadId: string): ServiceEvent => ({ type: 'upload.created', uploadId, at: 0 });

/** A socket that sends GET /events and never reads what comes back. */
async function stalledClient(port: number, extraHeaders = ''): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.pause();
  socket.write(`GET /events HTTP/1.1\r\nHost: localhost\r\n${extraHeaders}\r\n`);
  return socket;
}

describe('GET /events', () => {
  test('sends the headers at once, then each event as one frame, with ids in order', async (t) => {
    const { bus, url } = await listen(t);
    const client = await openEventStream(url);
    t.after(() => client.close());
    // fetch() resolved on the headers alone: nothing was published yet.
    assert.equal(client.response.headers.get('cache-control'), 'no-cache');
    assert.equal(client.response.headers.get('x-accel-buffering'), 'no');
    bus.publish(created('a'));
    bus.publish({
      type: 'file.failed',
      uploadId: 'a',
      taskId: 7,
      path: 'x/y.txt',
      size: 10,
      key: 'p/x/y.txt',
      message: 'no',
      at: Date.UTC(2026, 0, 2),
    });
    await waitFor(() => client.events.length === 2, { timeoutMs: 5000, message: 'two events' });
    assert.deepEqual(client.events, [
      { id: '1', event: 'upload.created', data: { upload_id: 'a', at: '1970-01-01T00:00:00.000Z' } },
      {
        id: '2',
        event: 'file.failed',
        data: {
          upload_id: 'a',
          task_id: 7,
          path: 'x/y.txt',
          key: 'p/x/y.txt',
          message: 'no',
          at: '2026-01-02T00:00:00.000Z',
        },
      },
    ]);
  });

  test('?upload_id= keeps one upload; a malformed one or another parameter is a 400', async (t) => {
    const { app, bus, url } = await listen(t);
    const one = await openEventStream(`${url}?upload_id=b`);
    const all = await openEventStream(url);
    t.after(() => {
      one.close();
      all.close();
    });
    for (const id of ['a', 'b', 'c', 'b']) bus.publish(created(id));
    await waitFor(() => all.events.length === 4, { timeoutMs: 5000, message: 'all four' });
    await waitFor(() => one.events.length === 2, { timeoutMs: 5000, message: "b's two" });
    assert.deepEqual(
      one.events.map((event) => event.id),
      ['2', '4'],
      'the same ids as every client sees',
    );
    for (const query of ['upload_id=..', `upload_id=${'x'.repeat(129)}`, 'upload_id=a%20b', 'since=3']) {
      const reply = await app.inject({ method: 'GET', url: `/events?${query}` });
      assert.equal(reply.statusCode, 400, query);
      assert.equal(reply.json<{ error: string }>().error, 'validation_error', query);
    }
  });

  test('beats a heartbeat comment', async (t) => {
    const { url } = await listen(t, { eventStream: { heartbeatMs: 50 } });
    const client = await openEventStream(url);
    t.after(() => client.close());
    await waitFor(() => client.comments.length >= 2, { timeoutMs: 5000, message: 'two heartbeats' });
    assert.deepEqual(client.comments.slice(0, 2), ['heartbeat', 'heartbeat']);
  });

  test('needs the API token like every route; HEAD answers the headers alone', async (t) => {
    const { app, bus, url } = await listen(t, { apiToken: TOKEN });
    const refused = await fetch(url);
    assert.equal(refused.status, 401);
    assert.equal(((await refused.json()) as { error: string }).error, 'unauthorized');
    const wrong = await fetch(url, { headers: { authorization: 'Bearer nope' } });
    assert.equal(wrong.status, 401);
    await wrong.body?.cancel();
    const client = await openEventStream(url, TOKEN);
    t.after(() => client.close());
    bus.publish(created('a'));
    await waitFor(() => client.events.length === 1, { timeoutMs: 5000, message: 'the event' });
    const head = await app.inject({
      method: 'HEAD',
      url: '/events',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(head.statusCode, 200);
    assert.match(String(head.headers['content-type']), /^text\/event-stream/);
  });

  test('a client that stops reading is dropped: one warn line, its connection closed, no listener left', async (t) => {
    const maxBytes = 256 * 1024;
    const { bus, port, logs } = await listen(t, {
      eventStream: { queueLimits: { maxEvents: 1000, maxBytes } },
    });
    const socket = await stalledClient(port);
    t.after(() => socket.destroy());
    await waitFor(() => bus.listenerCount === 1, { timeoutMs: 5000, message: 'the client is subscribed' });
    // Events of 64 KiB: the kernel's buffers (a few MiB on loopback) fill, then the queue.
    const path = 'p'.repeat(64 * 1024);
    let published = 0;
    while (bus.listenerCount > 0 && published < 2000) {
      bus.publish({
        type: 'file.progress',
        uploadId: 'a',
        taskId: published,
        path,
        bytesUploaded: 0,
        size: 1,
        at: 0,
      });
      published += 1;
    }
    assert.equal(bus.listenerCount, 0, `dropped within ${published} events of 64 KiB`);
    const warnings = logs.filter((line) => line.level === 40);
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    const warning = warnings[0]!;
    assert.match(String(warning.msg), /event stream client dropped/);
    assert.equal(warning.client, `127.0.0.1:${socket.localPort}`);
    assert.ok(Number(warning.queuedBytes) <= maxBytes && Number(warning.queuedBytes) > maxBytes - 70_000);
    assert.ok(Number(warning.queuedEvents) >= 3);

    // Reading now, the client gets what was in flight, then the end: far less than was published.
    let received = 0;
    socket.on('data', (chunk: Buffer) => (received += chunk.length));
    socket.resume();
    await new Promise((resolve) => socket.once('close', resolve));
    assert.ok(received < published * path.length, `${received} bytes of ${published * path.length}`);
  });

  test('app.close() ends every open stream at once, one whose client stopped reading included', async (t) => {
    // Limits high enough that the stalled client is not dropped before the close.
    const { app, bus, url, port } = await listen(t, {
      eventStream: { queueLimits: { maxEvents: 1000, maxBytes: 64 * 1024 * 1024 } },
    });
    const reading = await openEventStream(`${url}?upload_id=b`);
    const stalled = await stalledClient(port);
    t.after(() => stalled.destroy());
    await waitFor(() => bus.listenerCount === 1, { timeoutMs: 5000, message: 'subscribed' });
    // 6 MiB for the stalled client: more than the kernel holds, so frames wait in its queue.
    const path = 'p'.repeat(64 * 1024);
    for (let n = 0; n < 100; n++) {
      bus.publish({
        type: 'file.progress',
        uploadId: 'a',
        taskId: n,
        path,
        bytesUploaded: 0,
        size: 1,
        at: 0,
      });
    }
    bus.publish(created('b'));
    await waitFor(() => reading.events.length === 1, { timeoutMs: 5000, message: "b's event" });
    const started = Date.now();
    await app.close();
    const tookMs = Date.now() - started;
    assert.ok(tookMs < 2000, `closed in ${tookMs} ms`);
    assert.equal(await reading.ended, undefined, 'the reading client saw the stream end cleanly');
    assert.equal(bus.listenerCount, 0);
  });

  test('app.close() does not wait for a connection that has sent no request yet', async (t) => {
    const { app, port } = await listen(t);
    // What a client's connection pool may hold open: connected, nothing sent.
    const idle = connect(port, '127.0.0.1');
    t.after(() => idle.destroy());
    await new Promise((resolve) => idle.once('connect', resolve));
    const closed = new Promise((resolve) => idle.once('close', resolve));
    const started = Date.now();
    await app.close();
    await closed;
    const tookMs = Date.now() - started;
    assert.ok(tookMs < 5000, `closed in ${tookMs} ms`);
  });
});
