// Property-based tests of the HTTP API: every route gets random JSON, random path parameters and
// query strings, wrong content types, invalid and oversized bodies, and raw HTTP requests that no
// well-behaved client would send. Whatever arrives, the API never answers 5xx, every 4xx is the JSON
// error shape, no reply carries a stack trace, and the service still answers afterwards.
//
// Replay a failure with the seed it prints: FC_SEED=<seed> node --import tsx --test <this file>.
// FC_RUNS scales the number of runs per property (default 300).
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { buildApp, type App } from '../../src/api/app.js';
import { createLogger } from '../../src/logger.js';
import { UploadService } from '../../src/service/upload-service.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Store } from '../../src/store/store.js';
import { FakeAuditor } from '../support/fake-auditor.js';
import {
  absent,
  anyValue,
  BODY_LIMIT_BYTES,
  bucketName,
  contentType,
  deeplyNested,
  glob,
  invalidJson,
  JSON_TYPES,
  nearLimitBody,
  OTHER_METHODS,
  OTHER_TYPES,
  pathParameter,
  percentEncode,
  prefix,
  queryString,
  rawRequest,
  text,
  validBucket,
} from '../support/fuzz-arbitraries.js';
import { sendRaw } from '../support/raw-http.js';
import { RecordingLifecycle } from '../support/recording-lifecycle.js';
import { readyAt } from '../support/store-fixtures.js';

const SEED = integerFromEnv('FC_SEED') ?? randomInt(2 ** 31);
const RUNS = integerFromEnv('FC_RUNS') ?? 300;
/** Ids that exist, so that routes taking an id also run their handlers, not only their 404. */
const ACTIVE_ID = 'fuzz-active';
const CANCELLED_ID = 'fuzz-cancelled';
const ACTIVE_FILES = 7;
/** A line of a JavaScript stack trace. */
const STACK_FRAME = /^ {4}at \S/m;
/** Text of the project's package.json: a reply holding it means a path escaped the docs' static folder. */
const PACKAGE_JSON_TEXT = '"devDependencies"';

function integerFromEnv(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!Number.isSafeInteger(value)) throw new Error(`${name} must be an integer, got "${raw}"`);
  return value;
}

/** Runs a property with the file's seed; a failure says how to replay it. */
async function check<T>(property: fc.IAsyncProperty<T>, numRuns = RUNS): Promise<void> {
  try {
    await fc.assert(property, { seed: SEED, numRuns });
  } catch (error) {
    if (error instanceof Error) {
      const cause = error.cause instanceof Error ? `\n${error.cause.message}` : '';
      error.message = `replay with FC_SEED=${SEED}\n${error.message}${cause}`;
    }
    throw error;
  }
}

// --- the apps under test: real UploadServices on one SQLite store in a temp folder

/** The token of the guarded app. */
const API_TOKEN = 'fuzz-token-0123456789';

interface Fixture {
  root: string;
  folder: string;
  store: Store;
  /** As the service runs by default: no token, sources anywhere, no logging. */
  open: App;
  /** With an API token, sources only under `root`, and logging at debug level (its serialisers run too). */
  guarded: App;
  /** Where the open app listens, for the raw HTTP property. */
  port: number;
}

let fixture: Fixture;

before(async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'api-fuzz-'));
  const folder = path.join(root, 'source');
  await mkdir(folder);
  await writeFile(path.join(root, 'a-file'), 'not a folder');
  const store = openSqliteStore(path.join(root, 'state.db'));
  const serviceDeps = { store, lifecycle: new RecordingLifecycle(), auditor: new FakeAuditor() };
  const service = new UploadService(serviceDeps);
  const open = await buildApp({ service, logger: false, version: '0.0.0-fuzz' });
  const guarded = await buildApp({
    service: new UploadService({ ...serviceDeps, allowedSourceRoots: [root] }),
    logger: createLogger('debug', { destination: { write: () => undefined }, secrets: [API_TOKEN] }),
    version: '0.0.0-fuzz',
    apiToken: API_TOKEN,
  });
  await service.createUpload({ sourceFolder: folder, destinationBucket: 'fuzz-bucket', uploadId: ACTIVE_ID });
  await addTasks(store, ACTIVE_ID, ACTIVE_FILES);
  await service.createUpload({
    sourceFolder: folder,
    destinationBucket: 'fuzz-bucket',
    uploadId: CANCELLED_ID,
    allowOverlap: true,
  });
  await service.cancelUpload(CANCELLED_ID);
  await open.listen({ host: '127.0.0.1', port: 0 });
  const address = open.server.address();
  assert.ok(address !== null && typeof address === 'object');
  fixture = { root, folder, store, open, guarded, port: address.port };
});

after(async () => {
  await fixture.open.close();
  await fixture.guarded.close();
  await fixture.store.close();
  await rm(fixture.root, { recursive: true, force: true });
});

/** Pending, completed and failed tasks, as the engine would leave them. */
async function addTasks(store: Store, uploadId: string, count: number): Promise<void> {
  const now = Date.now();
  await store.activateUpload(uploadId, now);
  const files = Array.from({ length: count }, (_, i) => ({
    relativePath: `dir/file-${i}.txt`,
    size: 100 + i,
    mtimeMs: 1_700_000_000_000,
    ino: 1,
    ctimeMs: 1_700_000_000_000,
    observedAt: 1_700_000_000_000,
  }));
  await store.recordObservedFiles(uploadId, files, (p) => `prefix/${p}`, readyAt(now), now);
  const [failed, ...others] = await store.claimReadyTasks(now, 3);
  if (failed)
    await store.failTask(
      failed.taskId,
      { message: 'S3 said no', kind: 'transient', retryAt: now + 60_000 },
      now,
    );
  for (const task of others) {
    await store.completeTask(
      task.taskId,
      {
        etag: '"0123456789abcdef0123456789abcdef"',
        validation: 'etag',
        sha256: '0'.repeat(64),
        size: task.size,
        mtimeMs: task.mtimeMs,
        ino: task.ino,
        ctimeMs: task.ctimeMs,
      },
      now,
    );
  }
}

// --- what every reply must be

interface FuzzRequest {
  method: string;
  url: string;
  contentType?: string;
  payload?: string | Buffer;
  /** Sent to the guarded app, with this Authorization header (if any). */
  guarded?: { authorization: string | undefined };
}

interface Reply {
  statusCode: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: string;
}

function describeRequest(request: FuzzRequest): string {
  const size = request.payload === undefined ? 'no body' : `${Buffer.byteLength(request.payload)}-byte body`;
  const type =
    request.contentType === undefined
      ? 'no content type'
      : `content type ${JSON.stringify(request.contentType)}`;
  const url =
    request.url.length > 300 ? `${request.url.slice(0, 300)}… (${request.url.length} chars)` : request.url;
  const app = request.guarded
    ? ` to the guarded app (authorization ${JSON.stringify(request.guarded.authorization)})`
    : '';
  return `${request.method} ${url}${app} with ${type}, ${size}`;
}

/** How many replies of each status and error code the run produced: what the generators reached. */
const outcomes = new Map<string, number>();

function countOutcome(request: FuzzRequest, reply: Reply): void {
  let code = '';
  if (request.method === 'HEAD') {
    code = ' (HEAD)';
  } else if (reply.statusCode >= 400) {
    try {
      code = ` ${String((JSON.parse(reply.body) as { error?: unknown }).error)}`;
    } catch {
      code = ' (no JSON)';
    }
  }
  const key = `${reply.statusCode}${code}`;
  outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
}

/** The properties every reply has, whatever the request. */
function assertWellBehaved(request: FuzzRequest, reply: Reply): void {
  countOutcome(request, reply);
  const what = `${describeRequest(request)} → ${reply.statusCode} ${reply.body.slice(0, 400)}`;
  assert.ok(reply.statusCode >= 200 && reply.statusCode < 500, `no 5xx: ${what}`);
  assert.doesNotMatch(reply.body, STACK_FRAME, `no stack trace: ${what}`);
  assert.ok(!reply.body.includes(PACKAGE_JSON_TEXT), `nothing outside the docs is served: ${what}`);
  if (reply.statusCode < 400 || request.method === 'HEAD') return;
  assert.match(String(reply.headers['content-type']), /^application\/json/, `JSON error: ${what}`);
  let body: unknown;
  assert.doesNotThrow(() => (body = JSON.parse(reply.body)), `JSON error: ${what}`);
  assert.ok(typeof body === 'object' && body !== null, `error object: ${what}`);
  const { error, message } = body as Record<string, unknown>;
  assert.ok(typeof error === 'string' && error.length > 0, `error code: ${what}`);
  assert.ok(typeof message === 'string' && message.length > 0, `error message: ${what}`);
  assert.ok(!message.includes('    at '), `no stack in the message: ${what}`);
}

async function send(request: FuzzRequest): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (request.contentType !== undefined) headers['content-type'] = request.contentType;
  const authorization = request.guarded?.authorization;
  if (authorization !== undefined) headers.authorization = authorization;
  const app = request.guarded ? fixture.guarded : fixture.open;
  const reply = await app.inject({
    method: request.method as 'GET',
    url: request.url,
    headers,
    ...(request.payload === undefined ? {} : { payload: request.payload }),
  });
  return { statusCode: reply.statusCode, headers: reply.headers, body: reply.body };
}

async function sendAndCheck(request: FuzzRequest): Promise<Reply> {
  const reply = await send(request);
  assertWellBehaved(request, reply);
  return reply;
}

// --- generators that know the apps: their folders, ids and token

/** Folders that exist, do not, are files, devices or escape through `..`. */
const folderPath = fc.oneof(
  fc.constantFrom(
    '/',
    '/tmp',
    '/proc/self',
    '/dev/null',
    '/etc/passwd',
    '/nonexistent/folder',
    'relative/folder',
    './x',
  ),
  fc.constant(null).map(() => fixture.folder),
  fc
    .constantFrom('/..', '/../..', '/a-file', '/source/', '/source/..', '/source/../source', '/state.db')
    .map((suffix) => fixture.root + suffix),
  fc.string({ unit: 'grapheme' }).map((name) => `${fixture.root}/${name}`),
  text.map((name) => `/${name}`),
);

const uploadId = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9._~-]{1,140}$/),
  fc.constantFrom(ACTIVE_ID, CANCELLED_ID),
  text,
);

/** Close to a valid request: the required fields there, most values plausible, some not. */
const plausibleCreateBody = fc.record({
  source_folder: fc.oneof(
    { weight: 3, arbitrary: fc.constant(null).map(() => fixture.folder) },
    { weight: 2, arbitrary: folderPath },
  ),
  destination_bucket: fc.oneof({ weight: 3, arbitrary: validBucket }, { weight: 1, arbitrary: bucketName }),
  pattern: absent(glob),
  destination_prefix: absent(prefix),
  upload_id: absent(uploadId),
  allow_overlap: absent(fc.boolean()),
});

/** Objects with the real field names, each field absent, plausible, or of any type, and unknown fields. */
const randomCreateBody = fc
  .tuple(
    fc.record(
      {
        source_folder: fc.oneof(folderPath, anyValue),
        destination_bucket: fc.oneof(bucketName, anyValue),
        pattern: fc.oneof(glob, anyValue),
        destination_prefix: fc.oneof(prefix, anyValue),
        upload_id: fc.oneof(uploadId, anyValue),
        allow_overlap: fc.oneof(fc.boolean(), anyValue),
      },
      { requiredKeys: [] },
    ),
    fc.dictionary(fc.oneof(fc.string(), fc.constantFrom('__proto__', 'constructor')), anyValue, {
      maxKeys: 2,
    }),
  )
  .map(([fields, extra]) => ({ ...fields, ...extra }));

const createBody = fc.oneof(plausibleCreateBody, randomCreateBody);

const jsonText = fc.oneof(
  { weight: 3, arbitrary: fc.jsonValue().map((value) => JSON.stringify(value)) },
  { weight: 5, arbitrary: createBody.map((value) => JSON.stringify(value)) },
  { weight: 1, arbitrary: deeplyNested },
  { weight: 1, arbitrary: nearLimitBody },
  { weight: 1, arbitrary: fc.constantFrom('{"__proto__":{"x":1}}', '{"constructor":{"prototype":{"x":1}}}') },
  { weight: 1, arbitrary: fc.constantFrom('{"upload_id":"a","upload_id":"b"}', '', ' \n\t ', 'null', '0') },
);

/** For POST /uploads: mostly bodies close to valid ones, so that the service's own checks run. */
const createText = fc.oneof(
  { weight: 4, arbitrary: plausibleCreateBody.map((value) => JSON.stringify(value)) },
  { weight: 3, arbitrary: jsonText },
);

/** A body of any kind: JSON, not JSON, random bytes, over the limit, or none. */
const anyBody = fc.oneof(
  { weight: 6, arbitrary: jsonText },
  { weight: 2, arbitrary: invalidJson },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 512 }).map((bytes) => Buffer.from(bytes)) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: BODY_LIMIT_BYTES + 1, max: 2 * BODY_LIMIT_BYTES }).map((n) => 'x'.repeat(n)),
  },
  { weight: 2, arbitrary: fc.constant(undefined) },
);

type Route = (id: string) => { method: string; path: string };

const ROUTES: Route[] = [
  () => ({ method: 'GET', path: '/' }),
  () => ({ method: 'GET', path: '/uploads' }),
  () => ({ method: 'POST', path: '/uploads' }),
  (id) => ({ method: 'GET', path: `/uploads/${id}` }),
  (id) => ({ method: 'DELETE', path: `/uploads/${id}` }),
  (id) => ({ method: 'GET', path: `/uploads/${id}/files` }),
  (id) => ({ method: 'POST', path: `/uploads/${id}/retry` }),
  (id) => ({ method: 'POST', path: `/uploads/${id}/verify` }),
  () => ({ method: 'GET', path: '/openapi.json' }),
  () => ({ method: 'GET', path: '/docs' }),
  () => ({ method: 'GET', path: '/docs/json' }),
  () => ({ method: 'GET', path: '/docs/yaml' }),
  () => ({ method: 'GET', path: '/redoc' }),
  (id) => ({ method: 'GET', path: `/docs/static/${id}` }),
];

/** The right token half of the time; otherwise none, another scheme, a wrong or malformed one. */
const authorization = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom(`Bearer ${API_TOKEN}`, `bearer ${API_TOKEN}`, `Bearer  ${API_TOKEN} `),
  },
  { weight: 1, arbitrary: fc.constant(undefined) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      'Bearer',
      'Bearer ',
      `Bearer ${API_TOKEN}x`,
      `Basic ${API_TOKEN}`,
      API_TOKEN,
      `Bearer ${API_TOKEN} extra`,
      `Bearer ${API_TOKEN.slice(0, -1)}`,
      '',
      ' ',
      'Bearer \u00e9',
    ),
  },
  { weight: 1, arbitrary: fc.stringMatching(/^(Bearer )?[ -~\u00a0-\u00ff]{0,80}$/) },
);

/** A request to one of the routes, sometimes with another method, with any parameters and body. */
const anyRequest = fc
  .record({
    route: fc.constantFrom(...ROUTES),
    id: pathParameter([ACTIVE_ID, CANCELLED_ID, 'no-such-id']),
    otherMethod: fc.option(fc.constantFrom(...OTHER_METHODS), { freq: 5, nil: undefined }),
    query: queryString,
    contentType,
    payload: anyBody,
    guarded: fc.option(fc.record({ authorization }), { nil: undefined }),
  })
  .map(({ route, id, otherMethod, query, contentType: type, payload, guarded }): FuzzRequest => {
    const { method, path: routePath } = route(id);
    return { method: otherMethod ?? method, url: routePath + query, contentType: type, payload, guarded };
  });

// --- the properties

describe(`API fuzzing (FC_SEED=${SEED}, ${RUNS} runs per property)`, () => {
  test('POST /uploads with random JSON bodies: 201 for a valid one, a JSON 4xx otherwise', async () => {
    const type = fc.constantFrom(...JSON_TYPES.slice(0, 4));
    await check(
      fc.asyncProperty(createText, type, fc.boolean(), async (payload, contentType, guard) => {
        const guarded = guard ? { authorization: `Bearer ${API_TOKEN}` } : undefined;
        const request = { method: 'POST', url: '/uploads', contentType, payload, guarded };
        const reply = await sendAndCheck(request);
        assert.ok([201, 400, 403, 409, 413].includes(reply.statusCode), describeRequest(request));
        if (reply.statusCode === 201) {
          const { upload_id: id } = JSON.parse(reply.body) as { upload_id: string };
          const created = await sendAndCheck({ method: 'GET', url: `/uploads/${percentEncode(id)}` });
          assert.equal(created.statusCode, 200, `the created request ${id} exists: ${created.body}`);
        }
      }),
    );
  });

  test('every route: random path parameters, query strings, methods, content types and bodies', async () => {
    await check(fc.asyncProperty(anyRequest, async (request) => void (await sendAndCheck(request))));
  });

  test('concurrent requests on the same ids: creates, cancels, retries, verifies and reads at once', async () => {
    const sameId = fc.constantFrom(ACTIVE_ID, CANCELLED_ID, 'fuzz-raced');
    const racing = fc.tuple(sameId, fc.constantFrom(...ROUTES)).map(([id, route]): FuzzRequest => {
      const { method, path: routePath } = route(id);
      const payload = JSON.stringify({
        source_folder: fixture.folder,
        destination_bucket: 'race-1',
        upload_id: id,
      });
      return method === 'POST' && routePath === '/uploads'
        ? { method, url: routePath, contentType: 'application/json', payload }
        : { method, url: routePath };
    });
    const batch = fc.array(fc.oneof({ weight: 3, arbitrary: racing }, { weight: 1, arbitrary: anyRequest }), {
      minLength: 2,
      maxLength: 8,
    });
    await check(
      fc.asyncProperty(batch, async (requests) => void (await Promise.all(requests.map(sendAndCheck)))),
      Math.max(30, Math.round(RUNS / 3)),
    );
  });

  test('wrong content types, invalid JSON and bodies above the limit', async () => {
    const bodyRoute = fc.constantFrom(
      '/uploads',
      `/uploads/${ACTIVE_ID}/retry`,
      `/uploads/${ACTIVE_ID}/verify`,
    );
    const wrongType = fc.oneof(fc.constantFrom(...OTHER_TYPES), fc.constant(undefined));
    const oversized = fc
      .integer({ min: BODY_LIMIT_BYTES + 1, max: 2 * BODY_LIMIT_BYTES })
      .map((n) => JSON.stringify({ source_folder: 'y'.repeat(n) }));
    await check(
      fc.asyncProperty(
        bodyRoute,
        fc.oneof(
          fc.record({
            kind: fc.constant('wrong type'),
            contentType: wrongType,
            payload: jsonText.filter((t) => t.trim() !== ''),
          }),
          fc.record({
            kind: fc.constant('invalid JSON'),
            contentType: fc.constantFrom(...JSON_TYPES.slice(0, 4)),
            payload: invalidJson.filter((t) => t.trim() !== ''),
          }),
          fc.record({
            kind: fc.constant('too large'),
            contentType: fc.constantFrom(...JSON_TYPES.slice(0, 4)),
            payload: oversized,
          }),
        ),
        async (url, { kind, contentType: type, payload }) => {
          const request = { method: 'POST', url, contentType: type, payload };
          const reply = await sendAndCheck(request);
          const expected = { 'wrong type': 415, 'invalid JSON': 400, 'too large': 413 }[kind];
          assert.equal(
            reply.statusCode,
            expected,
            `${kind}: ${describeRequest(request)} → ${reply.body.slice(0, 300)}`,
          );
        },
      ),
    );
  });

  test('raw HTTP requests: `..` segments, raw bytes, bad percent-encoding, bad headers', async () => {
    await check(
      fc.asyncProperty(rawRequest, async (request) => {
        const replies = await sendRaw(fixture.port, request);
        for (const reply of replies)
          assertWellBehaved({ method: request.method, url: request.target }, reply);
      }),
      Math.max(50, Math.round(RUNS / 2)),
    );
  });

  // Found by the first property: "." and ".." were accepted, and no HTTP client could name them.
  test('upload ids that a URL cannot name are refused', async () => {
    for (const id of ['.', '..']) {
      const payload = JSON.stringify({
        source_folder: fixture.folder,
        destination_bucket: 'b-1',
        upload_id: id,
      });
      const request = { method: 'POST', url: '/uploads', contentType: 'application/json', payload };
      const reply = await sendAndCheck(request);
      assert.equal(reply.statusCode, 400, reply.body);
      assert.equal((JSON.parse(reply.body) as { error: string }).error, 'validation_error');
    }
  });

  test('afterwards the service is healthy and its data intact', async (t) => {
    const health = await sendAndCheck({ method: 'GET', url: '/' });
    assert.equal(health.statusCode, 200, health.body);
    assert.equal((JSON.parse(health.body) as { status: string }).status, 'ok');
    const files = await sendAndCheck({ method: 'GET', url: `/uploads/${ACTIVE_ID}/files?limit=1000` });
    assert.equal(files.statusCode, 200, files.body);
    assert.equal((JSON.parse(files.body) as { items: unknown[] }).items.length, ACTIVE_FILES);
    const [overSocket] = await sendRaw(fixture.port, { method: 'GET', target: '/', headers: '' });
    assert.equal(overSocket?.statusCode, 200, overSocket?.body);
    const total = [...outcomes.values()].reduce((sum, n) => sum + n, 0);
    const byCount = [...outcomes].sort((a, b) => b[1] - a[1]).map(([key, n]) => `${key}: ${n}`);
    t.diagnostic(`fuzz: ${total} requests, no 5xx; replies ${byCount.join(', ')}`);
  });
});
