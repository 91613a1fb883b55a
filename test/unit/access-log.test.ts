// The access log: one line per request, at the level its status calls for, with no secret in it;
// through inject() on the real app, and over real HTTP for streamed answers and clients that leave.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { describe, test, type TestContext } from 'node:test';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import { AccessLogController, loggableUrl, MAX_LOGGED_URL_LENGTH } from '../../src/api/access-log.js';
import { buildApp, type App } from '../../src/api/app.js';
import type { LogLevel } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { UploadService } from '../../src/service/upload-service.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Store } from '../../src/store/store.js';
import { FakeAuditor } from '../support/fake-auditor.js';
import { waitFor } from '../support/poll.js';
import { RecordingLifecycle } from '../support/recording-lifecycle.js';
import { makeTempDir, removeTempDir } from '../support/temp-tree.js';

type Line = Record<string, unknown>;

const TOKEN = 'access-log-token-0123456789';
const DEBUG = 20;
const INFO = 30;
const WARN = 40;
const ERROR = 50;

/** Every line the logger wrote, parsed, at `level` and up. */
function capture(level: LogLevel = 'debug'): { lines: Line[]; logger: ReturnType<typeof createLogger> } {
  const lines: Line[] = [];
  // No secrets given: what keeps the token out here is the access log itself.
  const logger = createLogger(level, {
    destination: { write: (line: string) => void lines.push(JSON.parse(line) as Line) },
  });
  return { lines, logger };
}

interface Fixture {
  app: App;
  store: Store;
  lines: Line[];
}

async function setUp(t: TestContext, apiToken?: string, level: LogLevel = 'debug'): Promise<Fixture> {
  const root = await makeTempDir('access-log-');
  const store = openSqliteStore(`${root}/state.db`);
  const service = new UploadService({
    store,
    lifecycle: new RecordingLifecycle(),
    auditor: new FakeAuditor(),
  });
  const { lines, logger } = capture(level);
  const app = await buildApp({ service, logger, version: '1.2.3', apiToken });
  t.after(async () => {
    await app.close();
    await store.close().catch(() => undefined);
    await removeTempDir(root);
  });
  return { app, store, lines };
}

/** The lines about one request, by its id. */
const linesOf = (lines: Line[], reqId: unknown): Line[] => lines.filter((line) => line.reqId === reqId);

describe('the access line of a request', () => {
  test('a success is one line at debug, with method, url, status, duration, size and request id', async (t) => {
    const { app, lines } = await setUp(t);
    const reply = await app.inject({ method: 'GET', url: '/uploads?status=all' });
    assert.equal(reply.statusCode, 200);
    assert.equal(lines.length, 1, JSON.stringify(lines));
    const [line] = lines as [Line];
    assert.equal(line.level, DEBUG);
    assert.equal(line.msg, 'http request');
    assert.equal(line.method, 'GET');
    assert.equal(line.url, '/uploads?status=all');
    assert.equal(line.status, 200);
    assert.equal(typeof line.durationMs, 'number');
    assert.ok((line.durationMs as number) >= 0);
    assert.equal(line.bytes, Buffer.byteLength(reply.body));
    assert.match(String(line.reqId), /./);
    assert.equal(line.remoteAddress, '127.0.0.1');
    assert.equal(line.error, undefined);
    assert.equal(line.aborted, undefined);
  });

  test('a 404 is one line at warn with the error code, and nothing else is logged for it', async (t) => {
    const { app, lines } = await setUp(t);
    const replies = [
      await app.inject({ method: 'GET', url: '/uploads/nobody' }),
      await app.inject({ method: 'GET', url: '/nowhere' }),
    ];
    assert.deepEqual(
      replies.map((reply) => reply.statusCode),
      [404, 404],
    );
    assert.equal(lines.length, 2, JSON.stringify(lines));
    assert.deepEqual(
      lines.map(({ level, status, error, url }) => ({ level, status, error, url })),
      [
        { level: WARN, status: 404, error: 'upload_not_found', url: '/uploads/nobody' },
        { level: WARN, status: 404, error: 'route_not_found', url: '/nowhere' },
      ],
    );
    assert.ok(
      lines.every((line) => line.err === undefined),
      'no cause for a client error',
    );
  });

  test('a 400 for a malformed body and one refused before routing get their line too', async (t) => {
    const { app, lines } = await setUp(t);
    const badBody = await app.inject({
      method: 'POST',
      url: '/uploads',
      headers: { 'content-type': 'application/json' },
      payload: '{"broken',
    });
    const badUrl = await app.inject({ method: 'GET', url: '/uploads/%E0%A4%A' });
    assert.equal(badBody.statusCode, 400);
    assert.equal(badUrl.statusCode, 400);
    assert.deepEqual(
      lines.map(({ level, status, error }) => ({ level, status, error })),
      [
        { level: WARN, status: 400, error: 'invalid_json' },
        { level: WARN, status: 400, error: 'bad_request' },
      ],
    );
  });

  test('an unexpected 500 is one line at error carrying the code and the cause with its stack', async (t) => {
    const { app, store, lines } = await setUp(t);
    await store.close(); // every query now throws the driver's own error
    const reply = await app.inject({ method: 'GET', url: '/uploads' });
    assert.equal(reply.statusCode, 500);
    assert.equal(lines.length, 1, JSON.stringify(lines));
    const [line] = lines as [Line];
    assert.equal(line.level, ERROR);
    assert.equal(line.status, 500);
    assert.equal(line.error, 'internal_error');
    const cause = line.err as { message: string; stack: string };
    assert.match(cause.message, /database connection is not open/);
    assert.match(cause.stack, /\n\s+at /);
    assert.match(reply.json<{ message: string }>().message, new RegExp(String(line.reqId)));
  });

  test('neither the Authorization header nor a token in the query reaches the line', async (t) => {
    const { app, lines } = await setUp(t, TOKEN);
    const allowed = await app.inject({
      method: 'GET',
      url: `/uploads?status=all&access_token=${TOKEN}`,
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    const refused = await app.inject({
      method: 'GET',
      url: `/uploads?token=${TOKEN}x`,
      headers: { authorization: `Bearer ${TOKEN}x` },
    });
    assert.equal(allowed.statusCode, 400); // access_token is not a parameter of this route
    assert.equal(refused.statusCode, 401);
    assert.equal(lines.length, 2, JSON.stringify(lines));
    const text = JSON.stringify(lines);
    assert.ok(!text.includes(TOKEN), `the token is in the log: ${text}`);
    assert.deepEqual(
      lines.map(({ url, status, error }) => ({ url, status, error })),
      [
        { url: '/uploads?status=all&access_token=[redacted]', status: 400, error: 'validation_error' },
        { url: '/uploads?token=[redacted]', status: 401, error: 'unauthorized' },
      ],
    );
  });

  test('at the default level, info, a success writes nothing and a refusal its one line', async (t) => {
    const { app, lines } = await setUp(t, undefined, 'info');
    assert.equal((await app.inject({ method: 'GET', url: '/uploads' })).statusCode, 200);
    assert.deepEqual(lines, []);
    assert.equal((await app.inject({ method: 'GET', url: '/uploads/nobody' })).statusCode, 404);
    assert.deepEqual(
      lines.map(({ level, status }) => ({ level, status })),
      [{ level: WARN, status: 404 }],
    );
  });

  test("Fastify's own request lines are gone: one line per request, whatever the answer", async (t) => {
    const { app, lines } = await setUp(t);
    const ids: unknown[] = [];
    for (const url of ['/', '/uploads', '/uploads/x', '/openapi.json', '/nowhere']) {
      await app.inject({ method: 'GET', url });
      ids.push(lines.at(-1)?.reqId);
    }
    assert.equal(new Set(ids).size, 5, 'each line is about another request');
    for (const id of ids) assert.equal(linesOf(lines, id).length, 1, JSON.stringify(lines));
    assert.ok(!lines.some((line) => /incoming request|request completed/.test(String(line.msg))));
  });
});

describe('the access line of a streamed answer and of a client that leaves', () => {
  interface Server {
    url: string;
    lines: Line[];
    /** Ends the body of the streamed answer in progress. */
    stream: PassThrough;
    arrived: Promise<void>;
  }

  /** A bare app with the access log and three routes: a streamed body, a stream that never ends, no answer at all. */
  async function serve(t: TestContext): Promise<Server> {
    const { lines, logger } = capture();
    const app = Fastify({
      loggerInstance: logger as FastifyBaseLogger,
      logController: new AccessLogController(),
      forceCloseConnections: true, // a failed test leaves no stream open to wait for
    });
    const stream = new PassThrough();
    let signalArrival: () => void = () => undefined;
    const arrived = new Promise<void>((resolve) => (signalArrival = resolve));
    app.get('/stream', (_request, reply) => reply.type('text/plain').send(stream));
    app.get('/events', (_request, reply) => {
      const endless = new PassThrough();
      endless.write('data: hello\n\n');
      return reply.type('text/event-stream').send(endless);
    });
    app.get('/slow', async (request) => {
      signalArrival();
      await once(request.raw, 'close');
      return 'too late';
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    t.after(() => app.close());
    lines.length = 0; // Fastify's "Server listening" line
    const { port } = app.server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}`, lines, stream, arrived };
  }

  function get(url: string): { request: ClientRequest; response: Promise<IncomingMessage> } {
    const request = httpRequest(url);
    const response = once(request, 'response').then(([message]) => message as IncomingMessage);
    // A request destroyed on purpose: no answer, and no error to report.
    request.on('error', () => undefined);
    response.catch(() => undefined);
    request.end();
    return { request, response };
  }

  const lineFor = (server: Server, path: string): Promise<Line> =>
    waitFor(() => server.lines.find((line) => line.url === path), { message: `the line of ${path}` });

  test('a streamed body gets its line when it ends, not before', async (t) => {
    const server = await serve(t);
    const { response } = get(`${server.url}/stream`);
    server.stream.write('first ');
    const message = await response;
    const [first] = (await once(message, 'data')) as [Buffer];
    assert.equal(first.toString(), 'first ');
    assert.deepEqual(server.lines, [], 'no line while the body is still being sent');
    server.stream.end('last');
    await once(message, 'end');
    const line = await lineFor(server, '/stream');
    assert.equal(line.level, DEBUG);
    assert.equal(line.status, 200);
    assert.equal(line.bytes, undefined, 'a streamed body has no declared size');
    assert.equal(line.aborted, undefined);
    assert.equal(server.lines.length, 1);
  });

  test('an event stream the client closes gets one line, at debug, marked aborted', async (t) => {
    const server = await serve(t);
    const { request, response } = get(`${server.url}/events`);
    const message = await response;
    await once(message, 'data');
    request.destroy();
    const line = await lineFor(server, '/events');
    assert.equal(line.level, DEBUG);
    assert.equal(line.status, 200);
    assert.equal(line.aborted, true);
    // Nothing else follows, the stream's premature close included.
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.equal(server.lines.length, 1, JSON.stringify(server.lines));
  });

  test('a request the client leaves before any answer gets one line at info, with no status', async (t) => {
    const server = await serve(t);
    const { request } = get(`${server.url}/slow`);
    await server.arrived;
    request.destroy();
    const line = await lineFor(server, '/slow');
    assert.equal(line.level, INFO);
    assert.equal(line.status, undefined);
    assert.equal(line.aborted, true);
    assert.equal(server.lines.length, 1, JSON.stringify(server.lines));
  });
});

describe('loggableUrl', () => {
  test('masks the values of query parameters that may hold a secret, and only those', () => {
    assert.equal(loggableUrl('/uploads?status=all&limit=5'), '/uploads?status=all&limit=5');
    assert.equal(
      loggableUrl('/events?token=abc&api_key=k&X-Amz-Signature=s&Password=p&cursor=c'),
      '/events?token=[redacted]&api_key=[redacted]&X-Amz-Signature=[redacted]&Password=[redacted]&cursor=c',
    );
    assert.equal(loggableUrl('/x?%74oken=abc'), '/x?%74oken=[redacted]', 'the name is decoded first');
    assert.equal(loggableUrl('/x?token'), '/x?token=[redacted]');
    assert.equal(loggableUrl('/x?%E0=1'), '/x?%E0=1', 'a name that does not decode is kept as sent');
  });

  test('masks the user information of an absolute URL', () => {
    assert.equal(loggableUrl('http://me:pass@host/uploads'), 'http://[redacted]@host/uploads');
    assert.equal(loggableUrl('/a@b'), '/a@b');
  });

  test('cuts a long URL', () => {
    const url = `/uploads/${'x'.repeat(5000)}`;
    const loggable = loggableUrl(url);
    assert.equal(loggable.length, MAX_LOGGED_URL_LENGTH + 1);
    assert.ok(loggable.endsWith('…'));
  });
});
