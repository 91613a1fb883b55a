// The event stream's parts without HTTP: the mapping of every event to its wire form, the bounded
// queue of one client (a writable that never drains is dropped, one that drains gets every frame
// in order), and the stream's listener, which goes away with its last client.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { PassThrough, Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import type { ServiceEvent, ServiceEventType } from '../../src/domain/events.js';
import { EVENT_TYPES, EVENT_TYPE_NAMES, wireEvent } from '../../src/api/event-catalogue.js';
import { EventStream, eventFrame, HEARTBEAT_FRAME } from '../../src/api/event-stream.js';
import { EventWriter, type Backlog } from '../../src/api/event-writer.js';
import { EventBus } from '../../src/engine/events.js';
import { waitFor } from '../support/poll.js';

const AT = Date.UTC(2026, 11, 4, 12, 0, 0, 250);
const AT_ISO = '2026-12-04T12:00:00.250Z';
const FILE = { uploadId: 'run-7', taskId: 12, path: 'lane1/a b.fastq.gz', at: AT };

/** One event of each type: a type left out here does not compile. */
const SAMPLES: { [T in ServiceEventType]: Extract<ServiceEvent, { type: T }> } = {
  'upload.created': { type: 'upload.created', uploadId: 'run-7', at: AT },
  'upload.cancelled': { type: 'upload.cancelled', uploadId: 'run-7', at: AT },
  'upload.completed': { type: 'upload.completed', uploadId: 'run-7', at: AT },
  'upload.arrived': {
    type: 'upload.arrived',
    uploadId: 'run-7',
    bucket: 'seq',
    prefix: 'runs/run-7',
    files: 12,
    bytes: 4096,
    manifestKey: 'runs/run-7/_manifest.json',
    markerKey: null,
    at: AT,
  },
  'upload.phase': {
    type: 'upload.phase',
    uploadId: 'run-7',
    phase: 'uploading',
    previousPhase: 'scanning',
    at: AT,
  },
  'upload.scanned': {
    type: 'upload.scanned',
    uploadId: 'run-7',
    kind: 'rescan',
    filesSeen: 120,
    filesChanged: 3,
    filesNotUtf8: 0,
    durationMs: 35,
    error: null,
    at: AT,
  },
  'file.started': { type: 'file.started', ...FILE, key: 'runs/lane1/a b.fastq.gz', size: 2048, attempt: 1 },
  'file.progress': { type: 'file.progress', ...FILE, bytesUploaded: 1024, size: 2048 },
  'file.completed': {
    type: 'file.completed',
    ...FILE,
    key: 'runs/lane1/a b.fastq.gz',
    size: 2048,
    bytesSent: 0,
    method: 'skipped',
    skipped: 'already in S3',
  },
  'file.failed': {
    type: 'file.failed',
    ...FILE,
    key: 'k',
    size: 2048,
    message: 'cannot read the local file: EACCES',
  },
};

/** The data each sample must become. */
const EXPECTED: Record<ServiceEventType, Record<string, unknown>> = {
  'upload.created': { upload_id: 'run-7', at: AT_ISO },
  'upload.cancelled': { upload_id: 'run-7', at: AT_ISO },
  'upload.completed': { upload_id: 'run-7', at: AT_ISO },
  'upload.arrived': {
    upload_id: 'run-7',
    bucket: 'seq',
    prefix: 'runs/run-7',
    files: 12,
    bytes: 4096,
    manifest_key: 'runs/run-7/_manifest.json',
    marker_key: null,
    at: AT_ISO,
  },
  'upload.phase': { upload_id: 'run-7', phase: 'uploading', previous_phase: 'scanning', at: AT_ISO },
  'upload.scanned': {
    upload_id: 'run-7',
    kind: 'rescan',
    files_seen: 120,
    files_changed: 3,
    duration_ms: 35,
    error: null,
    at: AT_ISO,
  },
  'file.started': {
    upload_id: 'run-7',
    task_id: 12,
    path: 'lane1/a b.fastq.gz',
    key: 'runs/lane1/a b.fastq.gz',
    size: 2048,
    at: AT_ISO,
  },
  'file.progress': {
    upload_id: 'run-7',
    task_id: 12,
    path: 'lane1/a b.fastq.gz',
    bytes_uploaded: 1024,
    size: 2048,
    at: AT_ISO,
  },
  'file.completed': {
    upload_id: 'run-7',
    task_id: 12,
    path: 'lane1/a b.fastq.gz',
    key: 'runs/lane1/a b.fastq.gz',
    size: 2048,
    bytes_sent: 0,
    skipped: 'already in S3',
    at: AT_ISO,
  },
  'file.failed': {
    upload_id: 'run-7',
    task_id: 12,
    path: 'lane1/a b.fastq.gz',
    key: 'k',
    message: 'cannot read the local file: EACCES',
    at: AT_ISO,
  },
};

function validatorOf(type: ServiceEventType): (data: unknown) => unknown {
  return TypeBoxValidatorCompiler({
    schema: EVENT_TYPES[type].data,
    method: 'GET',
    url: '/events',
    httpPart: 'body',
  }) as (data: unknown) => unknown;
}

function isValid(type: ServiceEventType, data: unknown): boolean {
  const result = validatorOf(type)(data) as { error?: unknown } | boolean;
  return typeof result === 'object' ? !result.error : result;
}

describe('the wire form of events', () => {
  test('every type maps to its snake_case data with an ISO time, as its schema and example say', () => {
    assert.deepEqual(Object.keys(SAMPLES).sort(), [...EVENT_TYPE_NAMES].sort());
    for (const type of EVENT_TYPE_NAMES) {
      const wire = wireEvent(SAMPLES[type]);
      assert.equal(wire.type, type);
      assert.deepEqual(wire.data, EXPECTED[type], type);
      assert.ok(isValid(type, wire.data), `${type}: the data matches its schema`);
      const example = EVENT_TYPES[type].example;
      assert.ok(isValid(type, example), `${type}: the documented example matches its schema`);
      assert.deepEqual(Object.keys(example).sort(), Object.keys(wire.data).sort(), `${type}: example fields`);
    }
    // A schema that would accept anything would make the check above worthless.
    assert.equal(isValid('upload.created', { upload_id: 'x' }), false, 'at is required');
    assert.equal(isValid('upload.created', { upload_id: 'x', at: AT_ISO, more: 1 }), false, 'no other field');
  });

  test('a frame is id, event and one line of data, whatever the path holds', () => {
    const event: ServiceEvent = { ...SAMPLES['file.failed'], path: 'odd\nname\r.txt', message: 'a\nb' };
    const frame = eventFrame(42, event);
    const lines = frame.split('\n');
    assert.equal(lines.length, 5, JSON.stringify(frame));
    assert.equal(lines[0], 'id: 42');
    assert.equal(lines[1], 'event: file.failed');
    assert.ok(lines[2]?.startsWith('data: {'));
    assert.deepEqual(lines.slice(3), ['', '']);
    assert.ok(!frame.includes('\r'));
    const data = JSON.parse(lines[2]!.slice('data: '.length)) as { path: string; message: string };
    assert.equal(data.path, 'odd\nname\r.txt');
    assert.equal(data.message, 'a\nb');
  });
});

/** A socket whose peer never reads: the first write fills it, and it never drains. */
class StalledSocket extends Writable {
  written = 0;
  constructor() {
    super({ highWaterMark: 16, decodeStrings: false });
  }
  override _write(chunk: string, _encoding: BufferEncoding, _callback: () => void): void {
    this.written += chunk.length;
    // The callback is never called: the data never leaves.
  }
}

/** A socket that holds what it is given until release() lets it go. */
class HeldSocket extends Writable {
  readonly frames: string[] = [];
  private held: (() => void)[] = [];
  constructor() {
    super({ highWaterMark: 64, decodeStrings: false });
  }
  override _write(chunk: string, _encoding: BufferEncoding, callback: () => void): void {
    this.frames.push(chunk);
    this.held.push(callback);
  }
  release(): void {
    const held = this.held;
    this.held = [];
    for (const callback of held) callback();
  }
}

const frame = (n: number): string => `id: ${n}\nevent: upload.created\ndata: {"n":${n}}\n\n`;

describe('one client of the stream', () => {
  test('a client that never drains is dropped once its queue is full, and costs nothing after', () => {
    const socket = new StalledSocket();
    const dropped: Backlog[] = [];
    let closed = 0;
    const writer = new EventWriter(
      socket,
      { maxEvents: 10, maxBytes: 1024 * 1024 },
      { dropped: (backlog) => dropped.push(backlog), closed: () => (closed += 1) },
    );
    writer.write(frame(0));
    writer.flush(); // written: more than the socket's 16 bytes, so it is full
    assert.equal(socket.writableNeedDrain, true);
    for (let n = 1; n <= 10; n++) {
      writer.write(frame(n));
      writer.flush(); // the socket is full: nothing is written
    }
    assert.deepEqual(dropped, [], 'ten frames wait: within the limit');
    assert.equal(writer.backlog.events, 10);
    assert.equal(socket.writableLength, frame(0).length, 'the socket holds only what it was given first');
    writer.write(frame(11));
    assert.equal(dropped.length, 1, 'the eleventh is one too many');
    const queuedBytes = Array.from({ length: 10 }, (_, n) => Buffer.byteLength(frame(n + 1)));
    assert.deepEqual(dropped[0], { events: 10, bytes: queuedBytes.reduce((a, b) => a + b) });
    assert.equal(socket.destroyed, true, 'its connection is closed, not ended behind unread bytes');
    assert.equal(writer.isOpen, false);
    assert.equal(closed, 1);
    for (let n = 12; n < 1000; n++) writer.write(frame(n));
    assert.equal(socket.written, frame(0).length, 'nothing more reached the socket');
    assert.deepEqual(writer.backlog, { events: 0, bytes: 0 }, 'nothing more is held');
    assert.equal(dropped.length, 1, 'dropped once');
  });

  test('the bound in bytes drops a client before the bound in events does', () => {
    const socket = new StalledSocket();
    const dropped: Backlog[] = [];
    const writer = new EventWriter(
      socket,
      { maxEvents: 1000, maxBytes: 1000 },
      { dropped: (backlog) => dropped.push(backlog), closed: () => undefined },
    );
    const big = `data: ${'x'.repeat(300)}\n\n`;
    writer.write(big);
    writer.flush();
    for (let n = 0; n < 3; n++) writer.write(big);
    assert.deepEqual(dropped, [], '3 × 308 bytes wait');
    writer.write(big);
    assert.deepEqual(dropped, [{ events: 3, bytes: 3 * big.length }]);
    assert.equal(socket.destroyed, true);
  });

  test('a burst that fills the queue before the next flush goes out at once when the socket takes it', () => {
    const socket = new HeldSocket();
    const writer = new EventWriter(
      socket,
      { maxEvents: 3, maxBytes: 1024 * 1024 },
      { dropped: () => assert.fail('a client that reads is not dropped'), closed: () => undefined },
    );
    for (let n = 1; n <= 4; n++) writer.write(frame(n));
    assert.deepEqual(socket.frames, [frame(1) + frame(2) + frame(3)], 'written when the fourth came');
    assert.equal(writer.backlog.events, 1);
    assert.equal(writer.isOpen, true);
  });

  test('the frames queued between two flushes go to the socket in one write', () => {
    const socket = new HeldSocket();
    const writer = new EventWriter(
      socket,
      { maxEvents: 100, maxBytes: 1024 * 1024 },
      { dropped: () => assert.fail('not dropped'), closed: () => undefined },
    );
    writer.write(frame(1));
    writer.write(frame(2));
    writer.write(frame(3));
    assert.deepEqual(socket.frames, [], 'nothing before the flush');
    assert.equal(writer.backlog.events, 3);
    writer.flush();
    assert.deepEqual(socket.frames, [frame(1) + frame(2) + frame(3)]);
    assert.deepEqual(writer.backlog, { events: 0, bytes: 0 });
    writer.flush();
    assert.equal(socket.frames.length, 1, 'an empty queue writes nothing');
  });

  test('a client that drains gets every frame, in order, from the queue', async () => {
    const socket = new HeldSocket();
    const writer = new EventWriter(
      socket,
      { maxEvents: 100, maxBytes: 1024 * 1024 },
      { dropped: () => assert.fail('not dropped'), closed: () => undefined },
    );
    for (let n = 0; n < 50; n++) {
      writer.write(frame(n));
      writer.flush();
    }
    assert.ok(writer.backlog.events > 40, 'most wait while the socket is full');
    while (writer.backlog.events > 0 || socket.writableLength > 0) {
      socket.release();
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(socket.frames.join(''), Array.from({ length: 50 }, (_, n) => frame(n)).join(''));
    assert.ok(socket.frames.length < 10, `the queue went out in a few writes: ${socket.frames.length}`);
    assert.equal(writer.isOpen, true);
  });

  test('end() ends a client that keeps up, and closes the connection of one that does not', () => {
    const keepingUp = new PassThrough();
    const stalled = new StalledSocket();
    const hooks = { dropped: () => assert.fail('not dropped'), closed: () => undefined };
    const limits = { maxEvents: 100, maxBytes: 1024 * 1024 };
    const first = new EventWriter(keepingUp, limits, hooks);
    const second = new EventWriter(stalled, limits, hooks);
    first.write(frame(1)); // queued: end() writes it
    second.write(frame(1));
    second.flush(); // fills the socket, which never drains
    second.write(frame(2));
    first.end();
    second.end();
    assert.equal(keepingUp.writableEnded, true);
    assert.equal(keepingUp.destroyed, false);
    assert.equal(keepingUp.read()?.toString(), frame(1));
    assert.equal(stalled.destroyed, true);
  });
});

describe('the stream', () => {
  test('listens while it has clients, and stops listening when the last one leaves', async () => {
    const bus = new EventBus();
    const stream = new EventStream(bus, {
      flushMs: 1,
      heartbeatMs: 60_000,
      queueLimits: { maxEvents: 10, maxBytes: 1024 },
    });
    assert.equal(bus.listenerCount, 0, 'no client, no listener');
    const all = new PassThrough();
    const one = new PassThrough();
    stream.add(all, { dropped: () => assert.fail('not dropped') });
    stream.add(one, { uploadId: 'b', dropped: () => assert.fail('not dropped') });
    assert.equal(bus.listenerCount, 1, 'one listener for every client');
    bus.publish({ type: 'upload.created', uploadId: 'a', at: AT });
    bus.publish({ type: 'upload.created', uploadId: 'b', at: AT });
    assert.equal(all.read(), null, 'the events wait for the flush');
    await once(all, 'readable');
    assert.equal(
      all.read()?.toString(),
      eventFrame(1, { type: 'upload.created', uploadId: 'a', at: AT }) +
        eventFrame(2, { type: 'upload.created', uploadId: 'b', at: AT }),
    );
    assert.equal(
      one.read()?.toString(),
      eventFrame(2, { type: 'upload.created', uploadId: 'b', at: AT }),
      'only its upload, with the same id as the others see',
    );

    all.destroy();
    await new Promise((resolve) => all.once('close', resolve));
    assert.equal(stream.clientCount, 1);
    assert.equal(bus.listenerCount, 1);
    one.destroy();
    await new Promise((resolve) => one.once('close', resolve));
    assert.equal(stream.clientCount, 0);
    assert.equal(bus.listenerCount, 0, 'the last client gone, the listener is gone');
  });

  test('a burst of events goes to each client in one write', async () => {
    const bus = new EventBus();
    const stream = new EventStream(bus, {
      flushMs: 20,
      heartbeatMs: 60_000,
      queueLimits: { maxEvents: 100, maxBytes: 1024 * 1024 },
    });
    const socket = new HeldSocket();
    stream.add(socket, { dropped: () => assert.fail('not dropped') });
    const events: ServiceEvent[] = Array.from({ length: 5 }, (_, n) => ({
      type: 'upload.created',
      uploadId: `u${n}`,
      at: AT,
    }));
    for (const event of events) bus.publish(event);
    await waitFor(() => socket.frames.length > 0, { timeoutMs: 5_000, message: 'the flush' });
    assert.deepEqual(socket.frames, [events.map((event, n) => eventFrame(n + 1, event)).join('')]);
    stream.close();
  });

  test('a dropped client takes its listener with it', () => {
    const bus = new EventBus();
    const stream = new EventStream(bus, {
      flushMs: 1,
      heartbeatMs: 60_000,
      queueLimits: { maxEvents: 3, maxBytes: 1024 * 1024 },
    });
    const dropped: Backlog[] = [];
    stream.add(new StalledSocket(), { dropped: (backlog) => dropped.push(backlog) });
    for (let n = 0; n < 10; n++) bus.publish({ type: 'upload.created', uploadId: `u${n}`, at: AT });
    assert.equal(dropped.length, 1);
    assert.equal(dropped[0]?.events, 3);
    assert.equal(stream.clientCount, 0);
    assert.equal(bus.listenerCount, 0);
  });

  test('beats a heartbeat to every client', async () => {
    const stream = new EventStream(undefined, {
      flushMs: 1,
      heartbeatMs: 20,
      queueLimits: { maxEvents: 10, maxBytes: 1024 },
    });
    const client = new PassThrough();
    stream.add(client, { dropped: () => assert.fail('not dropped') });
    // The stream's timer does not keep a process alive (a server does): this one does, meanwhile.
    const keepAlive = setTimeout(() => undefined, 5_000);
    const chunk = await new Promise<Buffer>((resolve) => client.once('data', resolve));
    clearTimeout(keepAlive);
    assert.equal(chunk.toString(), HEARTBEAT_FRAME);
    stream.close();
    assert.equal(client.writableEnded, true);
    assert.equal(stream.clientCount, 0);
    const late = new PassThrough();
    stream.add(late, { dropped: () => assert.fail('not dropped') });
    assert.equal(late.writableEnded, true, 'a closed stream takes no new client');
  });
});
