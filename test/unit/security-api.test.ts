// The API's defences through inject() (and a real socket where HTTP framing matters): the bearer
// token, the allowed source roots, body limits, destination prefixes, secrets in logs and stack
// traces in replies.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { buildApp, type App } from '../../src/api/app.js';
import { DISCARD_LIMIT_BYTES, DISCARD_LIMIT_MS } from '../../src/api/oversized-body.js';
import { resolveSourceRoots } from '../../src/config.js';
import { ERROR_CODES } from '../../src/api/errors.js';
import { UploadService, type UploadServiceDeps } from '../../src/service/upload-service.js';
import { createLogger, type Logger } from '../../src/logger.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Store } from '../../src/store/store.js';
import { FakeAuditor } from '../support/fake-auditor.js';
import { RecordingLifecycle } from '../support/recording-lifecycle.js';

const { validate: validateOpenApi } = createRequire(import.meta.url)('oas-validator') as {
  validate: (document: unknown, options: Record<string, unknown>) => Promise<unknown>;
};

const TOKEN = 'Zm9vYmFyYmF6cXV4LXNlY3VyaXR5LXRva2Vu';
const CHALLENGE = 'Bearer realm="s3-folder-uploader"';
const INVALID_TOKEN_CHALLENGE = /^Bearer realm="s3-folder-uploader", error="invalid_token"/;
const BODY_LIMIT = 64 * 1024;
const execFileAsync = promisify(execFile);

type Reply = Awaited<ReturnType<App['inject']>>;
type Json = Record<string, unknown>;

interface Fixture {
  root: string;
  folder: string;
  store: Store;
  lifecycle: RecordingLifecycle;
  app: App;
}

interface FixtureOptions {
  apiToken?: string;
  /** Folders under the fixture's root, made before the service starts; their real paths are allowed. */
  allowedRoots?: string[];
  logger?: Logger | false;
  /** A service of the test's own instead of the real one. */
  service?: (deps: UploadServiceDeps) => UploadService;
}

async function setUp(t: TestContext, options: FixtureOptions = {}): Promise<Fixture> {
  const root = await mkdtemp(path.join(tmpdir(), 'security-api-'));
  const folder = path.join(root, 'source');
  await mkdir(folder);
  const store = openSqliteStore(path.join(root, 'state.db'));
  const lifecycle = new RecordingLifecycle();
  let allowedSourceRoots: string[] | undefined;
  if (options.allowedRoots) {
    const roots = options.allowedRoots.map((relative) => path.join(root, relative));
    for (const allowed of roots) await mkdir(allowed, { recursive: true });
    allowedSourceRoots = await resolveSourceRoots(roots);
  }
  const deps: UploadServiceDeps = { store, lifecycle, auditor: new FakeAuditor(), allowedSourceRoots };
  const service = options.service ? options.service(deps) : new UploadService(deps);
  const app = await buildApp({
    service,
    logger: options.logger ?? false,
    version: '1.2.3',
    ...(options.apiToken !== undefined && { apiToken: options.apiToken }),
  });
  t.after(async () => {
    await app.close();
    await store.close();
    await rm(root, { recursive: true, force: true });
  });
  return { root, folder, store, lifecycle, app };
}

function assertError(reply: Reply, status: number, code: string, messagePart?: RegExp): Json {
  assert.equal(reply.statusCode, status, reply.body);
  assert.match(String(reply.headers['content-type']), /^application\/json/);
  const body = reply.json<Json>();
  assert.equal(body.error, code, reply.body);
  assert.equal(typeof body.message, 'string');
  assert.ok((body.message as string).length > 0);
  if (messagePart) assert.match(body.message as string, messagePart);
  return body;
}

function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

function create(app: App, payload: Json, headers: Record<string, string> = {}): Promise<Reply> {
  return app.inject({ method: 'POST', url: '/uploads', payload, headers });
}

const PROTECTED_REQUESTS: { method: 'GET' | 'POST' | 'DELETE' | 'HEAD'; url: string }[] = [
  { method: 'GET', url: '/uploads' },
  { method: 'HEAD', url: '/uploads' },
  { method: 'POST', url: '/uploads' },
  { method: 'GET', url: '/uploads/some-id' },
  { method: 'DELETE', url: '/uploads/some-id' },
  { method: 'POST', url: '/uploads/some-id/retry' },
  { method: 'POST', url: '/uploads/some-id/verify' },
  { method: 'GET', url: '/uploads/some-id/files' },
  // No route: still a 401, so that a stranger learns nothing of what exists.
  { method: 'GET', url: '/no-such-route' },
  { method: 'POST', url: '/' },
  { method: 'DELETE', url: '/docs' },
  // Spellings that might slip past a check on the URL's text.
  { method: 'GET', url: '/docs/../uploads' },
  { method: 'GET', url: '/redoc/%2e%2e/uploads' },
  { method: 'GET', url: '//uploads' },
  { method: 'GET', url: '/uploads/' },
  { method: 'GET', url: '/%75ploads' },
  { method: 'GET', url: '/uploads?docs=/docs' },
];

const PUBLIC_URLS = [
  '/',
  '/docs',
  '/docs/',
  '/docs/json',
  '/docs/yaml',
  '/docs/static/swagger-initializer.js',
  '/openapi.json',
  '/redoc',
  '/redoc/redoc.standalone.js',
];

describe('API_TOKEN', () => {
  test('without a token configured, every route answers without Authorization', async (t) => {
    const { app, folder } = await setUp(t);
    assert.equal((await app.inject({ method: 'GET', url: '/uploads' })).statusCode, 200);
    assert.equal(
      (await create(app, { source_folder: folder, destination_bucket: 'my-bucket' })).statusCode,
      201,
    );
  });

  test('every API route and unknown path needs the token: 401, a challenge and a JSON error', async (t) => {
    const { app, lifecycle } = await setUp(t, { apiToken: TOKEN });
    for (const { method, url } of PROTECTED_REQUESTS) {
      const reply = await app.inject({ method, url, payload: method === 'POST' ? {} : undefined });
      const where = `${method} ${url}`;
      assert.equal(reply.statusCode, 401, `${where}: ${reply.body}`);
      assert.equal(reply.headers['www-authenticate'], CHALLENGE, where);
      if (method !== 'HEAD') assertError(reply, 401, 'unauthorized', /Authorization: Bearer <token>/);
    }
    assert.deepEqual(lifecycle.created, [], 'nothing was created');
  });

  test('the health check and the documentation stay open', async (t) => {
    const { app } = await setUp(t, { apiToken: TOKEN });
    for (const url of PUBLIC_URLS) {
      for (const method of ['GET', 'HEAD'] as const) {
        const reply = await app.inject({ method, url });
        assert.equal(reply.statusCode, 200, `${method} ${url}: ${reply.body.slice(0, 200)}`);
        assert.equal(reply.headers['www-authenticate'], undefined);
      }
    }
  });

  test('a wrong token is refused with error="invalid_token", whatever its length', async (t) => {
    const { app } = await setUp(t, { apiToken: TOKEN });
    const sameLength = TOKEN.slice(0, -1) + (TOKEN.endsWith('A') ? 'B' : 'A');
    for (const wrong of [
      sameLength,
      TOKEN.slice(0, -1),
      `${TOKEN}x`,
      'x',
      'y'.repeat(10_000),
      TOKEN.toLowerCase(),
    ]) {
      const reply = await app.inject({ method: 'GET', url: '/uploads', headers: bearer(wrong) });
      const body = assertError(reply, 401, 'unauthorized', /token is wrong/);
      assert.match(String(reply.headers['www-authenticate']), INVALID_TOKEN_CHALLENGE);
      assert.ok(!JSON.stringify(body).includes(TOKEN), 'the reply does not carry the token');
    }
  });

  test('only a well-formed Bearer header counts', async (t) => {
    const { app } = await setUp(t, { apiToken: TOKEN });
    for (const header of [
      TOKEN,
      `Basic ${TOKEN}`,
      `Bearer`,
      `Bearer `,
      `Bearer ${TOKEN} extra`,
      `Token ${TOKEN}`,
      `Bearer\t${TOKEN}`,
    ]) {
      const reply = await app.inject({ method: 'GET', url: '/uploads', headers: { authorization: header } });
      assertError(reply, 401, 'unauthorized');
      assert.equal(reply.headers['www-authenticate'], CHALLENGE, header);
    }
    const viaQuery = await app.inject({ method: 'GET', url: `/uploads?access_token=${TOKEN}` });
    assertError(viaQuery, 401, 'unauthorized');
  });

  test('the right token opens every route (the scheme in any case)', async (t) => {
    const { app, folder, lifecycle } = await setUp(t, { apiToken: TOKEN });
    const created = await create(
      app,
      { source_folder: folder, destination_bucket: 'my-bucket', upload_id: 'u1' },
      bearer(TOKEN),
    );
    assert.equal(created.statusCode, 201, created.body);
    assert.deepEqual(lifecycle.created, ['u1']);
    for (const authorization of [`Bearer ${TOKEN}`, `bearer ${TOKEN}`, `BEARER  ${TOKEN}`]) {
      const reply = await app.inject({ method: 'GET', url: '/uploads/u1', headers: { authorization } });
      assert.equal(reply.statusCode, 200, `${authorization}: ${reply.body}`);
    }
    const files = await app.inject({ method: 'GET', url: '/uploads/u1/files', headers: bearer(TOKEN) });
    assert.equal(files.statusCode, 200);
    const missing = await app.inject({ method: 'GET', url: '/no-such-route', headers: bearer(TOKEN) });
    assertError(missing, 404, 'route_not_found');
  });

  test('an unauthenticated body is not read: a 401 even when it is over the limit', async (t) => {
    const { app } = await setUp(t, { apiToken: TOKEN });
    const reply = await app.inject({
      method: 'POST',
      url: '/uploads',
      headers: { 'content-type': 'application/json' },
      payload: 'x'.repeat(1024 * 1024),
    });
    assertError(reply, 401, 'unauthorized');
  });

  test('the OpenAPI document declares the bearer scheme, the open health check and the 401s', async (t) => {
    const { app } = await setUp(t, { apiToken: TOKEN });
    const reply = await app.inject({ method: 'GET', url: '/openapi.json' });
    assert.equal(reply.statusCode, 200);
    const document = reply.json<{
      security?: Record<string, string[]>[];
      paths: Record<
        string,
        Record<
          string,
          {
            security?: unknown[];
            responses: Record<
              string,
              {
                headers?: Record<string, unknown>;
                content?: Record<string, { schema: { $ref?: string }; examples?: Record<string, unknown> }>;
              }
            >;
          }
        >
      >;
      components: {
        securitySchemes?: Record<string, { type: string; scheme: string }>;
        schemas: Record<string, { properties: { error: { enum: string[] } } }>;
      };
    }>();
    await validateOpenApi(document, {});
    assert.deepEqual(document.components.schemas.Error?.properties.error.enum, ERROR_CODES);
    assert.deepEqual(document.components.securitySchemes?.bearerAuth, {
      type: 'http',
      scheme: 'bearer',
      description: 'The API_TOKEN the service was started with.',
    });
    assert.deepEqual(document.security, [{ bearerAuth: [] }]);
    assert.deepEqual(document.paths['/']?.get?.security, []);
    for (const [route, methods] of Object.entries(document.paths)) {
      if (route === '/') continue;
      for (const [method, operation] of Object.entries(methods)) {
        const unauthorized = operation.responses['401'];
        const media = unauthorized?.content?.['application/json'];
        assert.equal(
          media?.schema.$ref,
          '#/components/schemas/Error',
          `${method} ${route} documents the 401`,
        );
        assert.deepEqual(Object.keys(media?.examples ?? {}), ['unauthorized']);
        assert.ok(unauthorized?.headers?.['WWW-Authenticate'], `${method} ${route} documents the challenge`);
        assert.equal(operation.security, undefined, `${method} ${route} uses the document's security`);
      }
    }
  });

  test('without a token the document declares no security at all', async (t) => {
    const { app } = await setUp(t);
    const document = (await app.inject({ method: 'GET', url: '/openapi.json' })).json<Json>();
    assert.deepEqual(document.security, [], 'no security requirement, for the whole document');
    assert.equal((document.components as Json | undefined)?.securitySchemes, undefined);
    assert.doesNotMatch(JSON.stringify(document.paths), /"401"/);
  });
});

describe('ALLOWED_SOURCE_ROOTS', () => {
  async function rootsFixture(t: TestContext): Promise<Fixture & { allowed: string; outside: string }> {
    const fixture = await setUp(t, { allowedRoots: ['allowed', 'also-allowed'] });
    const allowed = path.join(fixture.root, 'allowed');
    const outside = path.join(fixture.root, 'outside');
    await mkdir(path.join(allowed, 'inside'));
    await mkdir(path.join(allowed, '..data'));
    await mkdir(outside);
    await mkdir(path.join(fixture.root, 'allowed-sibling'));
    await symlink(outside, path.join(allowed, 'link-out'));
    await symlink(path.join(allowed, 'inside'), path.join(allowed, 'link-in'));
    await symlink(path.join(allowed, 'inside'), path.join(outside, 'link-back-in'));
    return { ...fixture, allowed, outside };
  }

  test('a folder inside a root is accepted and stored by its real path', async (t) => {
    const { app, root, allowed } = await rootsFixture(t);
    const cases: [string, string][] = [
      [allowed, allowed],
      [path.join(allowed, 'inside'), path.join(allowed, 'inside')],
      [path.join(allowed, 'link-in'), path.join(allowed, 'inside')],
      [path.join(root, 'outside', 'link-back-in'), path.join(allowed, 'inside')],
      [path.join(allowed, '..data'), path.join(allowed, '..data')],
      [path.join(root, 'also-allowed'), path.join(root, 'also-allowed')],
      [`${path.join(allowed, 'inside')}/../inside/`, path.join(allowed, 'inside')],
    ];
    for (const [index, [given, stored]] of cases.entries()) {
      const destination = { destination_bucket: 'my-bucket', destination_prefix: `case-${index}` };
      const reply = await create(app, { source_folder: given, ...destination });
      assert.equal(reply.statusCode, 201, `${given}: ${reply.body}`);
      assert.equal(reply.json<Json>().source_folder, stored, given);
    }
  });

  test("a folder outside every root is a 403, whether reached by '..', a link or a look-alike name", async (t) => {
    const { app, root, allowed, outside, lifecycle } = await rootsFixture(t);
    for (const folder of [
      outside,
      path.join(allowed, '..', 'outside'),
      path.join(allowed, 'inside', '..', '..', 'outside'),
      path.join(allowed, 'link-out'),
      path.join(allowed, 'link-in', '..', '..', 'outside'),
      path.join(root, 'allowed-sibling'),
      root,
      '/',
      '/etc',
    ]) {
      const reply = await create(app, { source_folder: folder, destination_bucket: 'my-bucket' });
      const body = assertError(reply, 403, 'source_folder_not_allowed', /^source_folder: /);
      assert.match(body.message as string, new RegExp(`${allowed}, ${root}/also-allowed$`));
      assert.deepEqual(
        (body.details as Json[]).map((detail) => detail.field),
        ['source_folder'],
      );
    }
    assert.deepEqual(lifecycle.created, []);
  });

  test('outside the roots, whether a folder exists is not told; inside, it is', async (t) => {
    const { app, allowed, outside } = await rootsFixture(t);
    for (const folder of [
      path.join(outside, 'missing'),
      '/no/such/folder',
      path.join(allowed, 'link-out', 'missing'),
      // The kernel follows the link before the '..': this is <root>/no-such, outside.
      `${allowed}/link-out/../no-such`,
      `${allowed}/link-out/../outside`,
    ]) {
      const reply = await create(app, { source_folder: folder, destination_bucket: 'my-bucket' });
      assertError(reply, 403, 'source_folder_not_allowed');
    }
    const missingInside = await create(app, {
      source_folder: path.join(allowed, 'missing'),
      destination_bucket: 'b-1',
    });
    assertError(missingInside, 400, 'invalid_source_folder', /does not exist/);
    await writeFile(path.join(allowed, 'a-file'), 'x');
    const fileInside = await create(app, {
      source_folder: path.join(allowed, 'a-file'),
      destination_bucket: 'b-1',
    });
    assertError(fileInside, 400, 'invalid_source_folder', /is a file/);
  });
});

describe('body limit', () => {
  async function listening(t: TestContext): Promise<{ port: number; folder: string }> {
    const { app, folder } = await setUp(t, { apiToken: TOKEN });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const address = app.server.address();
    assert.ok(address !== null && typeof address === 'object');
    return { port: address.port, folder };
  }

  /** Sends a POST /uploads over a real socket; the server may answer before the body is all sent. */
  function post(
    port: number,
    headers: Record<string, string>,
    chunks: Buffer[],
  ): Promise<{ status: number; body: Json }> {
    return new Promise((resolve, reject) => {
      const request = httpRequest(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/uploads',
          headers: { ...bearer(TOKEN), 'content-type': 'application/json', ...headers },
        },
        (response) => {
          let text = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => (text += chunk));
          response.on('end', () =>
            resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) as Json }),
          );
        },
      );
      // Writes after the answer may fail (the server closes): the answer is what is tested.
      request.on('error', (error) => (request.writableEnded ? undefined : reject(error)));
      for (const chunk of chunks) request.write(chunk);
      request.end();
    });
  }

  test('a 1 MiB body is a 413 JSON error naming the limit', async (t) => {
    const { app } = await setUp(t, { apiToken: TOKEN });
    const reply = await app.inject({
      method: 'POST',
      url: '/uploads',
      headers: { ...bearer(TOKEN), 'content-type': 'application/json' },
      payload: JSON.stringify({ pattern: 'x'.repeat(1024 * 1024) }),
    });
    assertError(reply, 413, 'payload_too_large', new RegExp(`limit of ${BODY_LIMIT} bytes`));
  });

  test('over a socket: a 1 MiB body with Content-Length, and a chunked body past the limit, are 413s', async (t) => {
    const { port, folder } = await listening(t);
    const body = Buffer.from(
      JSON.stringify({ source_folder: folder, destination_bucket: 'b-1', pattern: 'x'.repeat(1024 * 1024) }),
    );
    const withLength = await post(port, { 'content-length': String(body.length) }, [body]);
    assert.equal(withLength.status, 413);
    assert.equal(withLength.body.error, 'payload_too_large');
    assert.match(String(withLength.body.message), /limit of 65536 bytes/);

    const chunks = Array.from({ length: 64 }, (_, i) => body.subarray(i * 16_384, (i + 1) * 16_384));
    const chunked = await post(port, { 'transfer-encoding': 'chunked' }, chunks);
    assert.equal(chunked.status, 413);
    assert.equal(chunked.body.error, 'payload_too_large');

    const small = Buffer.from(JSON.stringify({ source_folder: folder, destination_bucket: 'b-1' }));
    const fine = await post(port, { 'transfer-encoding': 'chunked' }, [
      small.subarray(0, 10),
      small.subarray(10),
    ]);
    assert.equal(fine.status, 201, JSON.stringify(fine.body));
  });
  /**
   * POSTs `size` bytes with Node's fetch from a child process: a client in the server's own event
   * loop sends at the server's pace and never sees the socket closed under it.
   */
  async function fetchFromChild(
    port: number,
    size: number,
  ): Promise<{ status?: number; body?: Json; error?: string }> {
    const script = `
      const [port, size, token] = process.argv.slice(1);
      try {
        const response = await fetch('http://127.0.0.1:' + port + '/uploads', {
          method: 'POST',
          headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json' },
          body: Buffer.alloc(Number(size), 'x'),
        });
        console.log(JSON.stringify({ status: response.status, body: await response.json() }));
      } catch (error) {
        console.log(JSON.stringify({ error: error.message + ': ' + (error.cause?.message ?? '') }));
      }`;
    const { stdout } = await execFileAsync(
      process.execPath,
      ['--input-type=module', '-e', script, String(port), String(size), TOKEN],
      { timeout: 60_000 },
    );
    return JSON.parse(stdout) as { status?: number; body?: Json; error?: string };
  }

  test("a body far over the limit sent with Node's fetch gets a 413 it can read", async (t) => {
    const { port } = await listening(t);
    const started = Date.now();
    const outcome = await fetchFromChild(port, 10 * 1024 * 1024);
    assert.equal(outcome.status, 413, JSON.stringify(outcome));
    assert.equal(outcome.body?.error, 'payload_too_large');
    assert.match(String(outcome.body?.message), /limit of 65536 bytes/);
    t.diagnostic(`10 MiB body: 413 read by the client after ${Date.now() - started} ms`);

    // Past the 64 MiB the server discards, the connection is closed while fetch may still be
    // sending: it reads the 413 if it got there first, or sees the connection closed.
    const beyond = await fetchFromChild(port, 100 * 1024 * 1024);
    if (beyond.status !== undefined) assert.equal(beyond.status, 413, JSON.stringify(beyond));
    else assert.match(String(beyond.error), /EPIPE|ECONNRESET|other side closed|socket/i);
    t.diagnostic(`100 MiB body: ${JSON.stringify(beyond.status ?? beyond.error)}`);
  });

  /**
   * Sends headers announcing `announced` bytes, then zeros as fast as the server takes them, until
   * `sendBytes` are written or the server closes; resolves with what was written and read. `stall`:
   * the client then waits, neither sending nor closing, until the server closes.
   */
  function sendRaw(
    port: number,
    announced: number,
    sendBytes: number,
    stall = false,
  ): Promise<{ written: number; answer: string; closedByServer: boolean }> {
    return new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1');
      const chunk = Buffer.alloc(1024 * 1024);
      let written = 0;
      let answer = '';
      let closedByServer = false;
      socket.setEncoding('utf8');
      socket.on('data', (text: string) => (answer += text));
      socket.on('error', () => (closedByServer = true));
      socket.on('end', () => (closedByServer = true));
      socket.on('close', () => resolve({ written, answer, closedByServer }));
      const pump = (): void => {
        while (written < sendBytes && !socket.destroyed) {
          written += chunk.length;
          if (!socket.write(chunk)) {
            socket.once('drain', pump);
            return;
          }
        }
        if (written >= sendBytes && !socket.destroyed && !stall) socket.end();
      };
      socket.write(
        `POST /uploads HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${announced}\r\n\r\n`,
      );
      pump();
    });
  }

  test('the rest of a refused body is discarded up to 64 MiB, then the connection is closed', async (t) => {
    const { port } = await listening(t);
    const hundredMiB = 100 * 1024 * 1024;
    const outcome = await sendRaw(port, hundredMiB, hundredMiB);
    assert.match(outcome.answer, /^HTTP\/1\.1 413 /);
    assert.match(outcome.answer, /"error":"payload_too_large"/);
    assert.ok(outcome.closedByServer, 'the server closes the connection past the bound');
    // What the kernels' socket buffers hold on both sides comes on top of the 64 MiB read.
    assert.ok(
      outcome.written < DISCARD_LIMIT_BYTES + 32 * 1024 * 1024,
      `${outcome.written} bytes were taken: the server read past its bound`,
    );
    t.diagnostic(`100 MiB announced: connection closed after ${outcome.written / 1024 / 1024} MiB written`);

    // Below the bound the whole body is read: the connection stays usable for the next request.
    const tenMiB = 10 * 1024 * 1024;
    const full = await sendRaw(port, tenMiB, tenMiB);
    assert.match(full.answer, /^HTTP\/1\.1 413 /);
    assert.equal(full.written, tenMiB);
    assert.ok(!/connection: close/i.test(full.answer), full.answer);
  });

  test('a client that stops sending a refused body is cut off after a few seconds', async (t) => {
    const { port } = await listening(t);
    const started = Date.now();
    // Announces 10 MiB and sends 1: the server answers, waits for the rest, then gives up.
    const outcome = await sendRaw(port, 10 * 1024 * 1024, 1024 * 1024, true);
    assert.match(outcome.answer, /^HTTP\/1\.1 413 /);
    assert.ok(outcome.closedByServer);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= DISCARD_LIMIT_MS - 500 && elapsed < 30_000, `closed after ${elapsed} ms`);
  });
});

describe('destination_prefix', () => {
  test('cannot smuggle path steps, a leading slash, empty segments, backslashes or control characters', async (t) => {
    const { app, folder, lifecycle } = await setUp(t);
    const refused: [string, RegExp][] = [
      ['..', /'\.\.' segment/],
      ['../escape', /'\.\.' segment/],
      ['a/../../b', /'\.\.' segment/],
      ['a/..', /'\.\.' segment/],
      ['a/../', /'\.\.' segment/],
      ['.', /'\.' segment/],
      ['./a', /'\.' segment/],
      ['a/./b', /'\.' segment/],
      ['/', /starts with '\/'/],
      ['/etc', /starts with '\/'/],
      ['//a', /starts with '\/'/],
      ['a//b', /empty segment/],
      ['a//', /empty segment/],
      ['a\\..\\b', /backslash/],
      ['a\\b', /backslash/],
      ['a\nb', /control character \(U\+000A\)/],
      ['a\rb', /control character \(U\+000D\)/],
      ['a\tb', /control character \(U\+0009\)/],
      ['a\u0000b', /NUL/],
      ['a\u001bb', /control character \(U\+001B\)/],
      ['a\u007fb', /control character \(U\+007F\)/],
    ];
    for (const [prefix, reason] of refused) {
      const reply = await create(app, {
        source_folder: folder,
        destination_bucket: 'my-bucket',
        destination_prefix: prefix,
      });
      const body = assertError(reply, 400, 'invalid_destination_prefix', /^destination_prefix: /);
      assert.match(body.message as string, reason, JSON.stringify(prefix));
      assert.deepEqual(
        (body.details as Json[]).map((detail) => detail.field),
        ['destination_prefix'],
      );
    }
    assert.deepEqual(lifecycle.created, []);
  });

  test('ordinary prefixes are accepted; one trailing slash is dropped', async (t) => {
    const { app, folder } = await setUp(t);
    for (const [index, [prefix, stored]] of [
      ['backups/2024/', 'backups/2024'],
      ['a/..b/c..', 'a/..b/c..'],
      ['..hidden', '..hidden'],
      ['spaces are fine', 'spaces are fine'],
      ['', ''],
    ].entries()) {
      const reply = await create(app, {
        source_folder: folder,
        destination_bucket: `bucket-${index}`,
        destination_prefix: prefix,
      });
      assert.equal(reply.statusCode, 201, `${prefix}: ${reply.body}`);
      assert.equal(reply.json<Json>().destination_prefix, stored);
    }
  });
});

describe('secrets and stack traces', () => {
  test('the Authorization header never reaches a log line, at any level', async (t) => {
    const lines: string[] = [];
    const logger = createLogger('trace', {
      secrets: [TOKEN],
      destination: { write: (line: string) => void lines.push(line) },
    });
    const { app, folder } = await setUp(t, { apiToken: TOKEN, logger });
    await app.inject({ method: 'GET', url: '/uploads', headers: bearer(TOKEN) });
    await app.inject({ method: 'GET', url: '/uploads', headers: bearer(`${TOKEN}-wrong`) });
    await create(app, { source_folder: folder, destination_bucket: 'my-bucket' }, bearer(TOKEN));
    await app.inject({ method: 'GET', url: '/nowhere', headers: bearer(TOKEN) });
    assert.ok(lines.length >= 4, `the requests were logged: ${lines.join('')}`);
    const text = lines.join('');
    assert.ok(!text.includes(TOKEN), `the token is in the logs: ${text}`);
    assert.match(text, /"status":401,.*"error":"unauthorized"/, 'the refusal is logged');
  });

  test('an unexpected error is a 500 with a message and no stack, whatever was thrown', async (t) => {
    const thrown: unknown[] = [
      new Error('database exploded at /srv/app/src/store.ts:12:3'),
      new TypeError("Cannot read properties of undefined (reading 'x')"),
      Object.assign(new Error('with a status'), { statusCode: 400, code: 'SOMETHING' }),
      'a bare string',
      { message: 'an object', stack: 'at secret (/x.ts:1:1)' },
    ];
    let next = 0;
    class ThrowingService extends UploadService {
      override async listUploads(): Promise<never> {
        throw thrown[next++ % thrown.length];
      }
    }
    const lines: string[] = [];
    const logger = createLogger('info', { destination: { write: (line: string) => void lines.push(line) } });
    const { app } = await setUp(t, { logger, service: (deps) => new ThrowingService(deps) });
    for (let i = 0; i < thrown.length; i++) {
      const reply = await app.inject({ method: 'GET', url: '/uploads' });
      const body = assertError(
        reply,
        500,
        'internal_error',
        /An unexpected error occurred on the server \(request id [^)]+\)\.$/,
      );
      assert.deepEqual(Object.keys(body).sort(), ['error', 'message']);
      assert.doesNotMatch(
        reply.body,
        /\bat \S|\.ts:\d|stack|exploded|Cannot read|with a status|bare string|an object/,
      );
    }
    assert.match(lines.join(''), /database exploded/, 'the cause is logged for the operator');
  });

  test('client errors carry no stack either', async (t) => {
    const { app } = await setUp(t);
    const replies = [
      await app.inject({
        method: 'POST',
        url: '/uploads',
        headers: { 'content-type': 'application/json' },
        payload: '{"broken',
      }),
      await app.inject({
        method: 'POST',
        url: '/uploads',
        payload: { source_folder: 'relative', destination_bucket: 'b-1' },
      }),
      await app.inject({ method: 'POST', url: '/uploads', payload: { unknown: 1 } }),
      await app.inject({ method: 'GET', url: '/uploads/%E0%A4%A' }),
    ];
    for (const reply of replies) {
      assert.ok(reply.statusCode >= 400 && reply.statusCode < 500, reply.body);
      assert.doesNotMatch(reply.body, /\bat \S+ \(|\.ts:\d|"stack"/);
    }
  });
});
