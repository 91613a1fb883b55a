// The OpenAPI document against what the routes really answer: each operation is driven into its
// successes and errors (a bad body, one too large or not JSON, a lost database, a missing token,
// the domain's refusals), and every status and code seen must be among those the document gives
// that operation. A known path asked with another method is a 405 whose Allow header lists the
// methods the document gives that path.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildApp, type App } from '../../src/api/app.js';
import { resolveSourceRoots } from '../../src/config.js';
import { UploadService } from '../../src/service/upload-service.js';
import { openSqliteStore, type SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { FakeAuditor } from '../support/fake-auditor.js';
import { waitFor } from '../support/poll.js';
import { RecordingLifecycle } from '../support/recording-lifecycle.js';

const TOKEN = 'contract-test-token';

type Method = 'GET' | 'HEAD' | 'POST' | 'PATCH' | 'DELETE';

interface Operation {
  operationId: string;
  responses: Record<string, { content?: Record<string, { examples?: Record<string, unknown> }> }>;
}
interface OpenApiDocument {
  paths: Record<string, Record<string, Operation>>;
}

/** One request and the operation it is addressed to. */
interface Call {
  operationId: string;
  method: Method;
  url: string;
  headers?: Record<string, string>;
  payload?: string | object;
}

/** What an operation answered: `status` alone for a success, `status code` for an error. */
type Seen = Map<string, Set<string>>;

interface Fixture {
  root: string;
  folder: string;
  allowed: string;
  dbFile: string;
  store: SqliteStore;
  app: App;
}

async function fixture(root: string, apiToken?: string): Promise<Fixture> {
  const folder = path.join(root, 'allowed', 'source');
  await mkdir(folder, { recursive: true });
  await writeFile(path.join(folder, 'a.txt'), 'a');
  const dbFile = path.join(root, 'state.db');
  const store = openSqliteStore(dbFile);
  const service = new UploadService({
    store,
    lifecycle: new RecordingLifecycle(),
    auditor: new FakeAuditor(),
    allowedSourceRoots: await resolveSourceRoots([path.join(root, 'allowed')]),
  });
  const app = await buildApp({ service, logger: false, version: '0.0.0', apiToken });
  return { root, folder, allowed: path.join(root, 'allowed'), dbFile, store, app };
}

const ONE_UPLOAD_OPERATIONS: [operationId: string, method: Method, suffix: string][] = [
  ['getUpload', 'GET', ''],
  ['cancelUpload', 'DELETE', ''],
  ['retryUploadFiles', 'POST', '/retry'],
  ['rescanUpload', 'POST', '/rescan'],
  ['verifyUpload', 'POST', '/verify'],
  ['listUploadFiles', 'GET', '/files'],
];
const ALL_OPERATIONS: [operationId: string, method: Method, url: string][] = [
  ['getHealth', 'GET', '/'],
  ['createUpload', 'POST', '/uploads'],
  ['listUploads', 'GET', '/uploads'],
  ['listInstances', 'GET', '/instances'],
  ...ONE_UPLOAD_OPERATIONS.map(([id, method, suffix]): [string, Method, string] => [
    id,
    method,
    `/uploads/kept${suffix}`,
  ]),
];
/** The operations that read a body when one is sent. */
const READS_BODY = ALL_OPERATIONS.filter(([, method]) => method !== 'GET');

describe('the OpenAPI document declares every status and code the routes answer', () => {
  let root: string;
  let plain: Fixture;
  let guarded: Fixture;
  let document: OpenApiDocument;
  let guardedDocument: OpenApiDocument;
  const seen: Seen = new Map();
  const seenGuarded: Seen = new Map();

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'api-contract-'));
    await mkdir(path.join(root, 'plain'));
    await mkdir(path.join(root, 'guarded'));
    plain = await fixture(path.join(root, 'plain'));
    guarded = await fixture(path.join(root, 'guarded'), TOKEN);
    document = (await plain.app.inject({ method: 'GET', url: '/openapi.json' })).json<OpenApiDocument>();
    guardedDocument = (
      await guarded.app.inject({ method: 'GET', url: '/openapi.json' })
    ).json<OpenApiDocument>();
  });

  after(async () => {
    for (const { app, store } of [plain, guarded]) {
      await app.close();
      await store.close();
    }
    await rm(root, { recursive: true, force: true });
  });

  async function call(f: Fixture, record: Seen, request: Call): Promise<number> {
    const reply = await f.app.inject({
      method: request.method,
      url: request.url,
      headers: request.headers,
      payload: request.payload,
    });
    const code = reply.statusCode >= 400 ? (reply.json<{ error?: string }>().error ?? '?') : undefined;
    const outcome = code === undefined ? String(reply.statusCode) : `${reply.statusCode} ${code}`;
    const outcomes = record.get(request.operationId) ?? new Set<string>();
    outcomes.add(outcome);
    record.set(request.operationId, outcomes);
    return reply.statusCode;
  }

  const create = (payload: object): Call => ({
    operationId: 'createUpload',
    method: 'POST',
    url: '/uploads',
    payload,
  });

  test('successes and the refusals of each operation', async () => {
    const f = plain;
    const ok = { source_folder: f.folder, destination_bucket: 'my-bucket' };
    assert.equal(await call(f, seen, create({ ...ok, upload_id: 'kept', destination_prefix: 'kept' })), 201);
    assert.equal(await call(f, seen, create({ ...ok, upload_id: 'gone', destination_prefix: 'gone' })), 201);
    for (const payload of [
      { source_folder: f.folder },
      { ...ok, source_folder: path.join(f.folder, 'missing') },
      { ...ok, destination_bucket: 'My_Bucket' },
      { ...ok, pattern: '[z-a]' },
      { ...ok, destination_prefix: '/abs' },
      { ...ok, upload_id: '..' },
      { ...ok, source_folder: f.root },
      { ...ok, upload_id: 'kept', destination_prefix: 'other' },
      { ...ok, destination_prefix: 'kept/deeper' },
    ]) {
      assert.ok((await call(f, seen, create(payload))) >= 400, JSON.stringify(payload));
    }
    for (const [operationId, method, url] of ALL_OPERATIONS.filter(
      ([id]) => id !== 'createUpload' && id !== 'cancelUpload', // cancel: below, another upload
    )) {
      assert.ok((await call(f, seen, { operationId, method, url })) < 300, `${method} ${url}`);
    }
    await call(f, seen, { operationId: 'listUploads', method: 'GET', url: '/uploads?status=some' });
    await call(f, seen, {
      operationId: 'listUploadFiles',
      method: 'GET',
      url: '/uploads/kept/files?limit=0',
    });
    await call(f, seen, {
      operationId: 'listUploadFiles',
      method: 'GET',
      url: '/uploads/kept/files?cursor=zz',
    });
    for (const [operationId, method, suffix] of ONE_UPLOAD_OPERATIONS) {
      await call(f, seen, { operationId, method, url: `/uploads/nobody${suffix}` });
      await call(f, seen, { operationId, method, url: `/uploads/${'x'.repeat(300)}${suffix}` });
    }
    // A cancelled upload cannot be retried nor rescanned.
    assert.equal(
      await call(f, seen, { operationId: 'cancelUpload', method: 'DELETE', url: '/uploads/gone' }),
      200,
    );
    await call(f, seen, { operationId: 'retryUploadFiles', method: 'POST', url: '/uploads/gone/retry' });
    await call(f, seen, { operationId: 'rescanUpload', method: 'POST', url: '/uploads/gone/rescan' });
    // (verify's 503 s3_unavailable needs completed files: test/unit/api.test.ts checks it.)
    assertDocumented(document, seen);
  });

  test('a body that is not JSON, not JSON at all, or too large, on every POST and DELETE', async () => {
    for (const [operationId, method, url] of READS_BODY) {
      const json = { 'content-type': 'application/json' };
      assert.equal(
        await call(plain, seen, { operationId, method, url, headers: json, payload: '{"a":' }),
        400,
      );
      assert.equal(
        await call(plain, seen, {
          operationId,
          method,
          url,
          headers: { 'content-type': 'text/plain' },
          payload: 'a',
        }),
        415,
      );
      const large = JSON.stringify({ filler: 'x'.repeat(100 * 1024) });
      assert.equal(await call(plain, seen, { operationId, method, url, headers: json, payload: large }), 413);
    }
    assertDocumented(document, seen);
  });

  test('without the API token every operation but the health check is a 401', async () => {
    for (const [operationId, method, url] of ALL_OPERATIONS) {
      const status = await call(guarded, seenGuarded, { operationId, method, url });
      assert.equal(status === 401, operationId !== 'getHealth', `${method} ${url}: ${status}`);
    }
    assertDocumented(guardedDocument, seenGuarded);
  });

  test('a wrong method on a known path is a 405 listing the methods the document gives the path', async () => {
    for (const [route, operations] of Object.entries(document.paths)) {
      const url = route.replace('{upload_id}', 'kept');
      const documented = Object.keys(operations).map((method) => method.toUpperCase());
      const expected = ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE'].filter(
        (method) => documented.includes(method) || (method === 'HEAD' && documented.includes('GET')),
      );
      const reply = await plain.app.inject({ method: 'PUT', url });
      assert.equal(reply.statusCode, 405, `PUT ${url}: ${reply.body}`);
      assert.equal(reply.json<{ error: string }>().error, 'method_not_allowed');
      assert.equal(reply.headers.allow, expected.join(', '), `PUT ${url}`);
    }
  });

  test('the settings: read, changed, refused, and behind the API token', async () => {
    const settings = (payload?: string | object, headers?: Record<string, string>): Call =>
      payload === undefined && headers === undefined
        ? { operationId: 'getSettings', method: 'GET', url: '/settings' }
        : { operationId: 'updateSettings', method: 'PATCH', url: '/settings', payload, headers };
    assert.equal(await call(plain, seen, settings()), 200);
    assert.equal(await call(plain, seen, settings({ max_upload_bytes_per_second: 4096 })), 200);
    assert.equal(await call(plain, seen, settings({ max_upload_bytes_per_second: 0 })), 200);
    for (const refused of [
      { max_upload_bytes_per_second: -1 },
      { max_upload_bytes_per_second: 1.5 },
      { other: 1 },
    ]) {
      assert.equal(await call(plain, seen, settings(refused)), 400, JSON.stringify(refused));
    }
    const json = { 'content-type': 'application/json' };
    assert.equal(await call(plain, seen, settings('{"a":', json)), 400);
    assert.equal(await call(plain, seen, settings('a', { 'content-type': 'text/plain' })), 415);
    const large = JSON.stringify({ filler: 'x'.repeat(100 * 1024) });
    assert.equal(await call(plain, seen, settings(large, json)), 413);
    assertDocumented(document, seen);
    assert.equal(await call(guarded, seenGuarded, settings()), 401);
    assert.equal(await call(guarded, seenGuarded, settings({ max_upload_bytes_per_second: 1 })), 401);
    assertDocumented(guardedDocument, seenGuarded);
  });

  test('the event stream: refused queries, and behind the API token', async () => {
    // A stream never ends, so inject() cannot wait for a success: HEAD answers its headers alone.
    const events = (url: string, method: Method = 'GET'): Call => ({
      operationId: 'streamEvents',
      method,
      url,
    });
    assert.equal(await call(plain, seen, events('/events?upload_id=kept', 'HEAD')), 200);
    for (const url of ['/events?upload_id=..', '/events?other=1']) {
      assert.equal(await call(plain, seen, events(url)), 400, url);
    }
    assertDocumented(document, seen);
    assert.equal(await call(guarded, seenGuarded, events('/events')), 401);
    assertDocumented(guardedDocument, seenGuarded);
  });

  // Last: the database's file is removed, and is gone for good until a restart.
  test('with the database lost, every operation is a 503 (the health check says degraded)', async () => {
    const f = plain;
    await rm(f.dbFile);
    await rm(`${f.dbFile}-wal`, { force: true });
    await waitFor(async () => (await f.store.health()) === 'missing', {
      timeoutMs: 5000,
      message: 'the store reports its file missing',
    });
    const ok = { source_folder: f.folder, destination_bucket: 'my-bucket', destination_prefix: 'late' };
    for (const [operationId, method, url] of ALL_OPERATIONS) {
      const payload = operationId === 'createUpload' ? ok : undefined;
      assert.equal(await call(f, seen, { operationId, method, url, payload }), 503, `${method} ${url}`);
    }
    assertDocumented(document, seen);
  });
});

/** Every outcome seen for an operation is a status the document gives it, with that code among its examples. */
function assertDocumented(document: OpenApiDocument, seen: Seen): void {
  const operations = new Map<string, Operation>();
  for (const methods of Object.values(document.paths)) {
    for (const operation of Object.values(methods)) operations.set(operation.operationId, operation);
  }
  for (const [operationId, outcomes] of seen) {
    const operation = operations.get(operationId);
    assert.ok(operation, `${operationId} is in the document`);
    for (const outcome of outcomes) {
      const [status = '', code] = outcome.split(' ');
      const response = operation.responses[status];
      assert.ok(response, `${operationId} answered ${outcome}: the document gives it no ${status}`);
      if (code !== undefined && !(operationId === 'getHealth' && status === '503')) {
        const examples = Object.keys(response.content?.['application/json']?.examples ?? {});
        assert.ok(
          examples.includes(code),
          `${operationId} answered ${outcome}: its ${status} lists ${examples.join(', ')}`,
        );
      }
    }
  }
}
