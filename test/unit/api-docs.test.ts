// The API's documentation: the OpenAPI document, Swagger UI and ReDoc, all served by the app.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildApp, type App } from '../../src/api/app.js';
import { ERROR_CATALOGUE, ERROR_CODES, type ErrorCode } from '../../src/api/errors.js';
import type { Upload, UploadCounts } from '../../src/domain/model.js';
import { progressOf } from '../../src/engine/progress.js';
import { UploadService } from '../../src/service/upload-service.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Store } from '../../src/store/store.js';
import { FakeAuditor } from '../support/fake-auditor.js';

// oas-validator checks a document against the OpenAPI 3.0 specification; it comes with redoc's
// tooling (swagger2openapi) and has no type declarations.
const { validate: validateOpenApi } = createRequire(import.meta.url)('oas-validator') as {
  validate: (document: unknown, options: Record<string, unknown>) => Promise<unknown>;
};

interface MediaType {
  schema: Schema;
  examples?: Record<string, { summary?: string; value: { error: string; message: string } }>;
}
interface Operation {
  operationId?: string;
  parameters?: { name: string; in: string; description?: string }[];
  requestBody?: { content: Record<string, { schema: Schema }> };
  responses: Record<string, { description: string; content?: Record<string, MediaType> }>;
  summary?: string;
  tags?: string[];
}
interface Schema {
  $ref?: string;
  type?: string;
  properties?: Record<string, Schema>;
  enum?: unknown[];
  description?: string;
  example?: unknown;
  items?: Schema;
}
interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string; license?: { name: string } };
  servers?: { url: string }[];
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema> };
}

/** Every operation, by method and path, with its operationId. */
const EXPECTED_OPERATIONS: Record<string, string> = {
  'get /': 'getHealth',
  'post /uploads': 'createUpload',
  'get /uploads': 'listUploads',
  'get /uploads/{upload_id}': 'getUpload',
  'delete /uploads/{upload_id}': 'cancelUpload',
  'post /uploads/{upload_id}/retry': 'retryUploadFiles',
  'post /uploads/{upload_id}/verify': 'verifyUpload',
  'post /uploads/{upload_id}/rescan': 'rescanUpload',
  'get /uploads/{upload_id}/files': 'listUploadFiles',
  'get /instances': 'listInstances',
  'get /settings': 'getSettings',
  'patch /settings': 'updateSettings',
  'get /events': 'streamEvents',
};

/** The schema itself, when it is a reference to a component. */
function resolved(document: OpenApiDocument, schema: Schema | undefined): Schema | undefined {
  const name = schema?.$ref?.replace('#/components/schemas/', '');
  return name === undefined ? schema : document.components.schemas[name];
}

describe('documentation', () => {
  let root: string;
  let store: Store;
  let app: App;

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'api-docs-'));
    store = openSqliteStore(path.join(root, 'state.db'));
    const lifecycle = {
      uploadCreated: () => {},
      uploadCancelled: async () => {},
      tasksRequeued: () => {},
      rescan: () => 'started' as const,
      lastScan: () => null,
      s3Health: () => ({ status: 'reachable' as const, since: 0, lastError: null }),
      progress: (upload: Upload, counts: UploadCounts) =>
        progressOf(upload, counts, { initialScanRunning: false, bytesPerSecond: 0 }),
    };
    app = await buildApp({
      service: new UploadService({ store, lifecycle, auditor: new FakeAuditor() }),
      logger: false,
      version: '9.8.7',
    });
  });

  after(async () => {
    await app.close();
    await store.close();
    await rm(root, { recursive: true, force: true });
  });

  async function openApi(): Promise<OpenApiDocument> {
    const reply = await app.inject({ method: 'GET', url: '/openapi.json' });
    assert.equal(reply.statusCode, 200);
    assert.match(String(reply.headers['content-type']), /^application\/json/);
    return reply.json<OpenApiDocument>();
  }

  test('/openapi.json is a valid OpenAPI 3 document of exactly the API routes, each with its operationId', async () => {
    const document = await openApi();
    assert.match(document.openapi, /^3\.0\.\d$/);
    assert.equal(document.info.version, '9.8.7');
    assert.deepEqual(
      document.info.license,
      { name: 'Proprietary' },
      'no LICENSE file, no license in package.json',
    );
    assert.deepEqual(
      document.servers?.map((server) => server.url),
      ['/'],
    );
    await validateOpenApi(document, {});
    const operations = Object.fromEntries(
      Object.entries(document.paths).flatMap(([route, methods]) =>
        Object.entries(methods).map(([method, operation]) => [`${method} ${route}`, operation.operationId]),
      ),
    );
    assert.deepEqual(operations, EXPECTED_OPERATIONS);
  });

  test('the shapes are named components, and the error body is written once', async () => {
    const document = await openApi();
    assert.deepEqual(Object.keys(document.components.schemas).sort(), [
      'Arrival',
      'CreatedUpload',
      'Error',
      'FilePage',
      'FileTask',
      'Health',
      'Instance',
      'Manifest',
      'Notification',
      'ObjectProperties',
      'RescanResult',
      'RetryResult',
      'Scan',
      'Settings',
      'Upload',
      'UploadDetails',
      'UploadProgress',
      'UploadSummary',
      'VerifyResult',
    ]);
    const text = JSON.stringify(document);
    assert.equal(text.split('"A stable code for programs').length - 1, 1, 'the Error schema once');
    // A bound that catches a schema inlined at every use rather than named once.
    assert.ok(text.length < 125_000, `the document is ${text.length} bytes`);
  });

  test('every operation documents its success and error replies with the error schema', async () => {
    const document = await openApi();
    for (const [route, methods] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(methods)) {
        const where = `${method.toUpperCase()} ${route}`;
        assert.ok(operation.summary, `${where} has a summary`);
        assert.ok(operation.tags?.length, `${where} has a tag`);
        const statuses = Object.keys(operation.responses);
        assert.ok(
          statuses.some((status) => status.startsWith('2')),
          `${where} documents its success`,
        );
        assert.ok(statuses.includes('500'), `${where} documents the 500`);
        const errorStatuses = statuses.filter((s) => /^[45]/.test(s) && !(route === '/' && s === '503'));
        for (const status of errorStatuses) {
          const media = operation.responses[status]?.content?.['application/json'];
          assert.equal(
            media?.schema.$ref,
            '#/components/schemas/Error',
            `${where} ${status} uses the error schema`,
          );
          const examples = Object.entries(media?.examples ?? {});
          assert.ok(examples.length > 0, `${where} ${status} has examples`);
          for (const [code, example] of examples) {
            assert.equal(example.value.error, code, `${where} ${status}: the example ${code} is of its code`);
            assert.equal(
              ERROR_CATALOGUE[code as ErrorCode]?.status,
              Number(status),
              `${where} ${status}: ${code} is a ${status}`,
            );
            assert.ok(example.value.message.length > 0);
          }
        }
        if (route.includes('{upload_id}')) {
          assert.ok(statuses.includes('404'), `${where} documents the 404`);
          const parameter = operation.parameters?.find((p) => p.name === 'upload_id');
          assert.equal(parameter?.in, 'path');
        }
      }
    }
    const error = document.components.schemas.Error;
    assert.deepEqual(error?.properties?.error?.enum, ERROR_CODES);
    assert.ok(error?.properties?.details, 'the Error schema documents details');
    const create = document.paths['/uploads']?.post;
    assert.deepEqual(Object.keys(create?.responses ?? {}).sort(), [
      '201',
      '400',
      '403',
      '409',
      '413',
      '415',
      '500',
      '503',
    ]);
  });

  test('the fields are described, with examples', async () => {
    const document = await openApi();
    const body = document.paths['/uploads']?.post?.requestBody?.content['application/json']?.schema;
    assert.deepEqual(Object.keys(body?.properties ?? {}).sort(), [
      'allow_overlap',
      'check_bucket',
      'complete_markers',
      'destination_bucket',
      'destination_prefix',
      'if_exists',
      'manifest',
      'manifest_key',
      'notify_url',
      'object_properties',
      'pattern',
      'source_folder',
      'upload_id',
      'watch',
    ]);
    for (const [name, field] of Object.entries(body?.properties ?? {})) {
      assert.ok(field.description, `${name} is described`);
      assert.notEqual(field.example, undefined, `${name} has an example`);
    }
    assert.match(body?.properties?.upload_id?.description ?? '', /1 to 128 characters of A-Z, a-z, 0-9/);
    const files = document.paths['/uploads/{upload_id}/files']?.get;
    assert.deepEqual(files?.parameters?.map((p) => `${p.in}:${p.name}`).sort(), [
      'path:upload_id',
      'query:cursor',
      'query:limit',
      'query:status',
    ]);
    const page = resolved(document, files?.responses['200']?.content?.['application/json']?.schema);
    const item = resolved(document, page?.properties?.items?.items);
    assert.ok(Object.keys(item?.properties ?? {}).length > 10, 'the file fields are listed');
    for (const [name, field] of Object.entries(item?.properties ?? {})) {
      assert.ok(field.description, `file field ${name} is described`);
    }
  });

  test('/docs is the Swagger UI page, with its assets served locally', async () => {
    const page = await app.inject({ method: 'GET', url: '/docs' });
    assert.equal(page.statusCode, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.match(page.body, /swagger-ui/i);
    const assets = [...page.body.matchAll(/(?:href|src)="([^"]+)"/g)].map((match) => match[1] ?? '');
    assert.ok(assets.length > 0);
    for (const asset of assets.filter((url) => url.startsWith('/') || url.startsWith('.'))) {
      const url = asset.startsWith('.') ? `/docs/${asset.replace(/^\.\//, '')}` : asset;
      assert.equal((await app.inject({ method: 'GET', url })).statusCode, 200, `${url} is served`);
    }
    assert.ok(!assets.some((url) => /^https?:/.test(url)), 'no asset from the Internet');
  });

  test('/redoc is a page that loads the bundled ReDoc and the OpenAPI document from the app', async () => {
    const page = await app.inject({ method: 'GET', url: '/redoc' });
    assert.equal(page.statusCode, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.match(page.body, /<redoc spec-url="\.\/openapi\.json"><\/redoc>/);
    const script = /<script src="\.(\/[^"]+)"><\/script>/.exec(page.body)?.[1];
    assert.ok(script, 'the page loads a script of the app');
    assert.doesNotMatch(page.body, /https?:\/\//, 'nothing is loaded from the Internet');

    const bundle = await app.inject({ method: 'GET', url: script });
    assert.equal(bundle.statusCode, 200);
    assert.match(String(bundle.headers['content-type']), /^text\/javascript/);
    assert.ok(bundle.body.length > 100_000, 'the whole standalone bundle');
    assert.match(bundle.body, /Redoc/);
    // Its first line sends readers to the licenses of what it bundles, next to it.
    const notice = /For license information please see ([\w.]+)/.exec(bundle.body.slice(0, 200))?.[1];
    assert.ok(notice, 'the bundle names its license file');
    const licenses = await app.inject({ method: 'GET', url: script.replace(/[^/]+$/, notice) });
    assert.equal(licenses.statusCode, 200);
    assert.match(licenses.body, /@license|MIT/);
  });
});
