// The delivery of an arrival's notification against a real HTTP receiver on 127.0.0.1: what it
// sends, which answers it tries again after (and how soon), which end it, what each attempt
// records, and how a stop or a newer arrival ends it. Backoffs are made tiny, or long enough to be
// sure to be waiting, by the sender's options; nothing sleeps for a fixed time.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import { pino } from 'pino';
import {
  arrivalDocument,
  idempotencyKey,
  NotificationSender,
  type NotificationSenderOptions,
  type UploadArrived,
} from '../../src/arrival/notification.js';
import type { NotificationOutcome } from '../../src/domain/model.js';
import { VERSION } from '../../src/version.js';
import { waitFor } from '../support/poll.js';

const ARRIVAL: UploadArrived = {
  type: 'upload.arrived',
  uploadId: 'run-42',
  bucket: 'b',
  prefix: 'runs/42/',
  files: 1200,
  bytes: 123456789,
  manifestKey: 'runs/42/_manifest.json',
  markerKey: 'runs/42/RTAComplete.txt',
  at: Date.parse('2026-12-05T01:02:03.456Z'),
};

const WIRE_BODY =
  '{"event":"upload.arrived","upload_id":"run-42","bucket":"b","prefix":"runs/42/","files":1200,"bytes":123456789,"manifest_key":"runs/42/_manifest.json","marker_key":"runs/42/RTAComplete.txt","at":"2026-12-05T01:02:03.456Z"}';

const NOW = 1_800_000_000_000;
const HOUR_MS = 3_600_000;

interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** Answers the n-th request (from 1); one that does not end the response leaves it unanswered. */
type Answer = (response: ServerResponse, n: number) => void;

function answerWith(status: number, body = '', headers: Record<string, string> = {}): Answer {
  return (response) => {
    response.writeHead(status, headers);
    response.end(body);
  };
}

/** An HTTP receiver on 127.0.0.1, closed with its connections when the test ends. */
async function receiver(t: TestContext, answer: Answer): Promise<{ base: string; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push({
        method: request.method ?? '',
        url: request.url ?? '',
        headers: request.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      answer(response, received.length);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(async () => {
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  });
  const { port } = server.address() as AddressInfo;
  return { base: `http://127.0.0.1:${port}`, received };
}

/** A port nothing listens on: one that was just listened on and closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

interface LogLine {
  level: number;
  msg: string;
  uploadId?: string;
  attempt?: number;
  attempts?: number;
  url?: string;
  error?: string;
}

const WARN = 40;
const ERROR = 50;
const INFO = 30;

function setUp(options: Partial<NotificationSenderOptions> = {}) {
  const lines: LogLine[] = [];
  const raw: string[] = [];
  const logger = pino(
    { level: 'debug' },
    {
      write: (line: string) => {
        raw.push(line);
        lines.push(JSON.parse(line) as LogLine);
      },
    },
  );
  const sender = new NotificationSender({
    logger,
    baseDelayMs: 1,
    maxDelayMs: 5,
    attemptTimeoutMs: 5_000,
    now: () => NOW,
    ...options,
  });
  const records: NotificationOutcome[] = [];
  let keep = true;
  const record = (outcome: NotificationOutcome) => {
    records.push(outcome);
    return keep;
  };
  return {
    sender,
    lines,
    /** Every log line as written, to look for secrets in. */
    logText: () => raw.join(''),
    records,
    record,
    supersede: () => (keep = false),
  };
}

const never = new AbortController().signal;

describe('the arrival document', () => {
  it('is snake_case with the time in ISO 8601', () => {
    assert.equal(JSON.stringify(arrivalDocument(ARRIVAL)), WIRE_BODY);
    const bare = arrivalDocument({ ...ARRIVAL, manifestKey: null, markerKey: null });
    assert.equal(bare.manifest_key, null);
    assert.equal(bare.marker_key, null);
  });

  it('has an idempotency key of the upload and the arrival time', () => {
    assert.equal(idempotencyKey(ARRIVAL), `run-42:${ARRIVAL.at}`);
  });
});

describe('NotificationSender', () => {
  it('POSTs the arrival once on 200, with its exact body and headers', async (t) => {
    const { base, received } = await receiver(t, answerWith(200, 'ok'));
    const { sender, records, record, lines } = setUp();
    const result = await sender.deliver({
      arrival: ARRIVAL,
      url: `${base}/hooks/arrived`,
      record,
      signal: never,
    });

    assert.deepEqual(result, { end: 'delivered', attempts: 1, lastError: null });
    assert.equal(received.length, 1);
    const [request] = received;
    assert.equal(request!.method, 'POST');
    assert.equal(request!.url, '/hooks/arrived');
    assert.equal(request!.body, WIRE_BODY);
    assert.equal(request!.headers['content-type'], 'application/json');
    assert.equal(request!.headers['user-agent'], `s3-folder-uploader/${VERSION}`);
    assert.equal(request!.headers['idempotency-key'], `run-42:${ARRIVAL.at}`);
    assert.equal(request!.headers.authorization, undefined);
    assert.deepEqual(records, [{ status: 'delivered', attempts: 1, lastError: null, at: NOW }]);
    const delivered = lines.find((line) => line.level === INFO && line.msg === 'notification delivered');
    assert.equal(delivered?.uploadId, 'run-42');
    assert.equal(delivered?.url, `${base}/hooks/arrived`);
  });

  it('delivers on attempt 2 after a 500, recording each attempt in order', async (t) => {
    const { base, received } = await receiver(t, (response, n) =>
      n === 1 ? answerWith(500, 'database is down')(response, n) : answerWith(204)(response, n),
    );
    const { sender, records, record, lines } = setUp();
    const url = `${base}/x?token=s3cret`;
    const result = await sender.deliver({ arrival: ARRIVAL, url, record, signal: never });

    assert.deepEqual(result, { end: 'delivered', attempts: 2, lastError: null });
    assert.equal(received.length, 2);
    assert.equal(received[1]!.body, WIRE_BODY);
    assert.equal(received[1]!.headers['idempotency-key'], received[0]!.headers['idempotency-key']);
    assert.deepEqual(
      records.map(({ status, attempts }) => [status, attempts]),
      [
        ['pending', 1],
        ['delivered', 2],
      ],
    );
    assert.equal(records[0]!.lastError, `${base}/x?token=*** answered 500: database is down`);
    assert.equal(records[1]!.lastError, null);
    const warned = lines.filter((line) => line.level === WARN);
    assert.equal(warned.length, 1);
    assert.equal(warned[0]!.uploadId, 'run-42');
    assert.equal(warned[0]!.attempt, 1);
    assert.equal(warned[0]!.url, `${base}/x?token=***`);
    assert.match(warned[0]!.error ?? '', /answered 500/);
  });

  it('honours Retry-After on 429 rather than its backoff', async (t) => {
    const { base, received } = await receiver(t, (response, n) =>
      n === 1 ? answerWith(429, '', { 'Retry-After': '0' })(response, n) : answerWith(200)(response, n),
    );
    // Without the header, the wait would be drawn from up to an hour.
    const { sender, records, record } = setUp({ baseDelayMs: HOUR_MS, maxDelayMs: HOUR_MS });
    const result = await sender.deliver({ arrival: ARRIVAL, url: `${base}/`, record, signal: never });
    assert.equal(result.end, 'delivered');
    assert.equal(received.length, 2);
    assert.match(records[0]!.lastError ?? '', /answered 429/);
  });

  it('caps a Retry-After at the longest delay', async (t) => {
    const { base, received } = await receiver(t, (response, n) =>
      n === 1 ? answerWith(503, '', { 'Retry-After': '86400' })(response, n) : answerWith(200)(response, n),
    );
    const { sender, record, lines } = setUp({ maxDelayMs: 20 });
    const result = await sender.deliver({ arrival: ARRIVAL, url: `${base}/`, record, signal: never });
    assert.equal(result.end, 'delivered');
    assert.equal(received.length, 2);
    assert.equal((lines.find((line) => line.level === WARN) as { retryInMs?: number }).retryInMs, 20);
  });

  it('retries 408 and 425 too', async (t) => {
    const { base, received } = await receiver(t, (response, n) =>
      answerWith(n === 1 ? 408 : n === 2 ? 425 : 200)(response, n),
    );
    const { sender, record } = setUp();
    const result = await sender.deliver({ arrival: ARRIVAL, url: `${base}/`, record, signal: never });
    assert.deepEqual(result, { end: 'delivered', attempts: 3, lastError: null });
    assert.equal(received.length, 3);
  });

  it('fails at once on 404, quoting the start of the answer', async (t) => {
    const { base, received } = await receiver(t, answerWith(404, `no such hook\n${'x'.repeat(500)}`));
    const { sender, records, record, lines } = setUp();
    const result = await sender.deliver({ arrival: ARRIVAL, url: `${base}/h`, record, signal: never });

    assert.equal(result.end, 'failed');
    assert.equal(result.attempts, 1);
    assert.equal(received.length, 1);
    assert.equal(records.length, 1);
    assert.equal(records[0]!.status, 'failed');
    const excerpt = `no such hook ${'x'.repeat(200 - 'no such hook '.length)}…`;
    assert.equal(records[0]!.lastError, `${base}/h answered 404: ${excerpt}`);
    const errors = lines.filter((line) => line.level === ERROR);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.attempts, 1);
    assert.equal(errors[0]!.error, records[0]!.lastError);
    assert.equal(lines.filter((line) => line.level === WARN).length, 0);
  });

  it('fails at once on a redirect, without following it, saying where it pointed', async (t) => {
    const { base, received } = await receiver(t, (response, n) =>
      n === 1
        ? answerWith(302, '', { Location: '/elsewhere?token=abc123' })(response, n)
        : answerWith(200)(response, n),
    );
    const { sender, records, record } = setUp();
    const result = await sender.deliver({ arrival: ARRIVAL, url: `${base}/h`, record, signal: never });

    assert.equal(result.end, 'failed');
    assert.equal(received.length, 1);
    assert.equal(records.length, 1);
    assert.match(
      records[0]!.lastError ?? '',
      /answered 302, a redirect to http:\/\/127\.0\.0\.1:\d+\/elsewhere\?token=\*\*\*/,
    );
    assert.ok(!records[0]!.lastError?.includes('abc123'));
  });

  it('retries a refused connection, then fails after maxAttempts with the last error', async () => {
    const port = await closedPort();
    const { sender, records, record, lines, logText } = setUp({ maxAttempts: 3 });
    const url = `http://127.0.0.1:${port}/h?token=s3cret`;
    const result = await sender.deliver({ arrival: ARRIVAL, url, record, signal: never });

    assert.equal(result.end, 'failed');
    assert.equal(result.attempts, 3);
    assert.deepEqual(
      records.map(({ status, attempts }) => [status, attempts]),
      [
        ['pending', 1],
        ['pending', 2],
        ['failed', 3],
      ],
    );
    for (const { lastError } of records) {
      assert.match(
        lastError ?? '',
        /^cannot reach http:\/\/127\.0\.0\.1:\d+\/h\?token=\*\*\*: connect ECONNREFUSED 127\.0\.0\.1:\d+$/,
      );
    }
    assert.equal(result.lastError, records[2]!.lastError);
    assert.equal(lines.filter((line) => line.level === WARN).length, 2);
    const given = lines.filter((line) => line.level === ERROR);
    assert.equal(given.length, 1);
    assert.match(given[0]!.msg, /given up \(3 attempts failed\)/);
    assert.ok(!logText().includes('s3cret'));
  });

  it('retries an attempt that gets no answer in time', async (t) => {
    const { base, received } = await receiver(t, (response, n) => {
      if (n > 1) answerWith(200)(response, n);
    });
    const { sender, records, record } = setUp({ attemptTimeoutMs: 200 });
    const result = await sender.deliver({ arrival: ARRIVAL, url: `${base}/slow`, record, signal: never });

    // Attempt 2 is answered at once; only a machine too slow to answer within 200 ms needs a third.
    assert.equal(result.end, 'delivered');
    assert.ok(result.attempts >= 2);
    assert.equal(received.length, result.attempts);
    assert.equal(records[0]!.status, 'pending');
    assert.equal(records[0]!.lastError, `no answer from ${base}/slow within 200 ms`);
  });

  it('ends at once, with no other record, when stopped during a backoff', async (t) => {
    const { base, received } = await receiver(t, answerWith(503, '', { 'Retry-After': '3600' }));
    const { sender, records, record } = setUp({ maxDelayMs: HOUR_MS });
    const stop = new AbortController();
    const delivering = sender.deliver({ arrival: ARRIVAL, url: `${base}/`, record, signal: stop.signal });
    await waitFor(() => records.length === 1, { message: 'the first attempt is recorded' });

    const stoppedAt = Date.now();
    stop.abort();
    const result = await delivering;
    assert.ok(Date.now() - stoppedAt < 1_000, 'the wait of an hour ended with the stop');
    assert.equal(result.end, 'stopped');
    assert.equal(result.attempts, 1);
    assert.match(result.lastError ?? '', /answered 503/);
    assert.equal(records.length, 1);
    assert.equal(received.length, 1);
  });

  it('ends the attempt in flight when stopped, and records nothing of it', async (t) => {
    const { base, received } = await receiver(t, () => undefined);
    const { sender, records, record } = setUp({ attemptTimeoutMs: HOUR_MS });
    const stop = new AbortController();
    const delivering = sender.deliver({ arrival: ARRIVAL, url: `${base}/`, record, signal: stop.signal });
    await waitFor(() => received.length === 1, { message: 'the receiver got the request' });

    stop.abort();
    assert.deepEqual(await delivering, { end: 'stopped', attempts: 0, lastError: null });
    assert.equal(records.length, 0);
  });

  it('sends nothing when stopped before it starts', async (t) => {
    const { base, received } = await receiver(t, answerWith(200));
    const { sender, records, record } = setUp();
    const stop = new AbortController();
    stop.abort();
    const result = await sender.deliver({ arrival: ARRIVAL, url: `${base}/`, record, signal: stop.signal });
    assert.equal(result.end, 'stopped');
    assert.equal(received.length, 0);
    assert.equal(records.length, 0);
  });

  it('stops when record says a newer arrival replaced this one', async (t) => {
    const { base, received } = await receiver(t, answerWith(500));
    const { sender, records, record, supersede } = setUp();
    supersede();
    const result = await sender.deliver({ arrival: ARRIVAL, url: `${base}/`, record, signal: never });
    assert.equal(result.end, 'superseded');
    assert.equal(result.attempts, 1);
    assert.equal(records.length, 1);
    assert.equal(received.length, 1);
  });

  it('goes on from the attempts made before a restart', async (t) => {
    const { base, received } = await receiver(t, answerWith(500));
    const { sender, records, record } = setUp({ maxAttempts: 5 });
    const result = await sender.deliver({
      arrival: ARRIVAL,
      url: `${base}/`,
      attemptsSoFar: 4,
      record,
      signal: never,
    });
    assert.equal(result.end, 'failed');
    assert.deepEqual(
      records.map(({ status, attempts }) => [status, attempts]),
      [['failed', 5]],
    );
    assert.equal(received.length, 1);
  });

  it('makes one last attempt when resumed past maxAttempts', async (t) => {
    const { base, received } = await receiver(t, answerWith(200));
    const { sender, records, record } = setUp({ maxAttempts: 3 });
    const result = await sender.deliver({
      arrival: ARRIVAL,
      url: `${base}/`,
      attemptsSoFar: 7,
      record,
      signal: never,
    });
    assert.deepEqual(result, { end: 'delivered', attempts: 8, lastError: null });
    assert.equal(records.length, 1);
    assert.equal(received.length, 1);
  });

  it('sends the user information as Basic authorization, and logs no secret', async (t) => {
    const { base, received } = await receiver(t, (response, n) =>
      answerWith(n === 1 ? 500 : 200, 'try again')(response, n),
    );
    const { sender, records, record, logText } = setUp();
    const url = base.replace('http://', 'http://alice:p%40ss-w0rd@') + '/h?token=s3cret&tenant=t1';
    const result = await sender.deliver({ arrival: ARRIVAL, url, record, signal: never });

    assert.equal(result.end, 'delivered');
    assert.equal(received[0]!.url, '/h?token=s3cret&tenant=t1');
    assert.equal(
      received[0]!.headers.authorization,
      `Basic ${Buffer.from('alice:p@ss-w0rd').toString('base64')}`,
    );
    const shown = `${base.replace('http://', 'http://alice:***@')}/h?token=***&tenant=***`;
    assert.equal(records[0]!.lastError, `${shown} answered 500: try again`);
    for (const secret of ['p%40ss-w0rd', 'p@ss-w0rd', 's3cret', 't1']) {
      assert.ok(!logText().includes(secret), `${secret} in the log`);
      assert.ok(!JSON.stringify(records).includes(secret), `${secret} in a record`);
    }
  });

  it('sends nothing to a host the allowed hosts no longer include', async (t) => {
    const { base, received } = await receiver(t, answerWith(200));
    const { sender, records, record } = setUp({ allowedHosts: ['hooks.example.org'] });
    const result = await sender.deliver({ arrival: ARRIVAL, url: `${base}/`, record, signal: never });
    assert.equal(result.end, 'failed');
    assert.equal(received.length, 0);
    assert.deepEqual(records, [
      {
        status: 'failed',
        attempts: 0,
        lastError:
          "notify_url's host 127.0.0.1:" +
          new URL(base).port +
          ' is not allowed by NOTIFY_ALLOWED_HOSTS (allowed: hooks.example.org)',
        at: NOW,
      },
    ]);
  });
});
