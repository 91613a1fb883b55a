// The dashboard's route through inject(): the page at /ui and /ui/, its assets with their content
// types and caching, no token needed for them while the API still needs one, nothing of it in the
// OpenAPI document, and a clear 503 until it is built.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { buildApp, type App } from '../../src/api/app.js';
import { UploadService } from '../../src/service/upload-service.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { FakeAuditor } from '../support/fake-auditor.js';
import { RecordingLifecycle } from '../support/recording-lifecycle.js';
import { makeTempDir, removeTempDir } from '../support/temp-tree.js';

const TOKEN = 'dashboard-test-token-0123456789';
const PAGE = `<!doctype html>
<html lang="en">
  <head>
    <link rel="stylesheet" href="./styles-AAAA.css" />
    <script type="module" src="./main-BBBB.js"></script>
  </head>
  <body></body>
</html>
`;

interface Setup {
  app: App;
  directory: string;
}

async function setUp(t: TestContext, options: { built?: boolean; apiToken?: string } = {}): Promise<Setup> {
  const root = await makeTempDir('ui-route');
  const directory = path.join(root, 'dist-ui');
  if (options.built ?? true) await writeDashboard(directory);
  const store = openSqliteStore(path.join(root, 'state.db'));
  const service = new UploadService({
    store,
    lifecycle: new RecordingLifecycle(),
    auditor: new FakeAuditor(),
  });
  const app = await buildApp({
    service,
    logger: false,
    version: '0',
    dashboardDirectory: directory,
    ...(options.apiToken !== undefined && { apiToken: options.apiToken }),
  });
  t.after(async () => {
    await app.close();
    await store.close();
    await removeTempDir(root);
  });
  return { app, directory };
}

async function writeDashboard(directory: string): Promise<void> {
  await mkdir(directory, { recursive: true });
  await writeFile(path.join(directory, 'main-BBBB.js'), 'console.log("dashboard");\n');
  await writeFile(path.join(directory, 'styles-AAAA.css'), 'body { margin: 0; }\n');
  await writeFile(path.join(directory, 'notes.map'), '{}'); // not a kind of file the route serves
  await writeFile(path.join(directory, 'index.html'), PAGE);
}

describe('the dashboard at /ui', () => {
  test('/ui/ is the page as built; /ui is the same page with a base, so that its relative URLs stay under /ui/', async (t) => {
    const { app } = await setUp(t);
    const withSlash = await app.inject({ method: 'GET', url: '/ui/' });
    assert.equal(withSlash.statusCode, 200);
    assert.equal(withSlash.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(withSlash.body, PAGE);
    assert.equal(withSlash.headers['cache-control'], 'no-cache');
    assert.match(String(withSlash.headers['content-security-policy']), /script-src 'self'/);
    assert.match(String(withSlash.headers['content-security-policy']), /connect-src 'self'/);
    assert.equal(withSlash.headers['x-content-type-options'], 'nosniff');

    const withoutSlash = await app.inject({ method: 'GET', url: '/ui?from=bookmark' });
    assert.equal(withoutSlash.statusCode, 200);
    assert.equal(withoutSlash.body, PAGE.replace('<head>', '<head>\n    <base href="ui/">'));
    assert.notEqual(withoutSlash.headers.etag, withSlash.headers.etag);

    const named = await app.inject({ method: 'GET', url: '/ui/index.html' });
    assert.equal(named.body, PAGE);
  });

  test('serves the assets with their content types, cached for ever since their names hold their hash', async (t) => {
    const { app } = await setUp(t);
    const script = await app.inject({ method: 'GET', url: '/ui/main-BBBB.js' });
    assert.equal(script.statusCode, 200);
    assert.equal(script.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(script.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(script.body, 'console.log("dashboard");\n');
    assert.equal(script.headers['content-security-policy'], undefined, 'only the page carries the policy');

    const style = await app.inject({ method: 'GET', url: '/ui/styles-AAAA.css' });
    assert.equal(style.headers['content-type'], 'text/css; charset=utf-8');

    const head = await app.inject({ method: 'HEAD', url: '/ui/main-BBBB.js' });
    assert.equal(head.statusCode, 200);
    assert.equal(head.body, '');
  });

  test('answers 304 to a request that holds the current ETag', async (t) => {
    const { app } = await setUp(t);
    const first = await app.inject({ method: 'GET', url: '/ui/' });
    const etag = String(first.headers.etag);
    assert.match(etag, /^"[\w-]+"$/);
    for (const header of [etag, `W/${etag}`, `"other", ${etag}`]) {
      const again = await app.inject({ method: 'GET', url: '/ui/', headers: { 'if-none-match': header } });
      assert.equal(again.statusCode, 304, header);
      assert.equal(again.body, '');
      assert.equal(again.headers.etag, etag);
    }
    const changed = await app.inject({ method: 'GET', url: '/ui/', headers: { 'if-none-match': '"other"' } });
    assert.equal(changed.statusCode, 200);
  });

  test('a file it does not hold, or a path out of its folder, is a 404 route_not_found', async (t) => {
    const { app } = await setUp(t);
    for (const url of [
      '/ui/nothing.js',
      '/ui/notes.map',
      '/ui/..%2Fstate.db',
      '/ui/%2e%2e%2Findex.html',
      '/ui/a/b.js',
    ]) {
      const reply = await app.inject({ method: 'GET', url });
      assert.equal(reply.statusCode, 404, url);
      assert.equal(reply.json<{ error: string }>().error, 'route_not_found', url);
    }
  });

  test('needs no token, while every API route still does', async (t) => {
    const { app } = await setUp(t, { apiToken: TOKEN });
    for (const url of ['/ui', '/ui/', '/ui/main-BBBB.js', '/ui/styles-AAAA.css']) {
      const reply = await app.inject({ method: 'GET', url });
      assert.equal(reply.statusCode, 200, url);
    }
    for (const url of ['/uploads', '/ui/../uploads', '/ui/%2e%2e/uploads', '/settings']) {
      const reply = await app.inject({ method: 'GET', url });
      assert.equal(reply.statusCode, 401, url);
    }
    const write = await app.inject({ method: 'POST', url: '/ui/' });
    assert.equal(write.statusCode, 401, 'only reading the page is public');
  });

  test('is not part of the OpenAPI document', async (t) => {
    const { app } = await setUp(t);
    const document = (await app.inject({ method: 'GET', url: '/openapi.json' })).json<{
      paths: Record<string, unknown>;
    }>();
    assert.deepEqual(
      Object.keys(document.paths).filter((route) => route.startsWith('/ui')),
      [],
    );
  });

  test('not built: a 503 dashboard_not_built saying to run npm run build, until the files appear', async (t) => {
    const { app, directory } = await setUp(t, { built: false });
    for (const url of ['/ui', '/ui/', '/ui/main-BBBB.js']) {
      const reply = await app.inject({ method: 'GET', url });
      assert.equal(reply.statusCode, 503, url);
      const body = reply.json<{ error: string; message: string }>();
      assert.equal(body.error, 'dashboard_not_built');
      assert.match(body.message, /npm run build/);
      assert.doesNotMatch(body.message, new RegExp(directory), 'the message names no path of the server');
    }
    await writeDashboard(directory);
    const built = await app.inject({ method: 'GET', url: '/ui/' });
    assert.equal(built.statusCode, 200);
    assert.equal(built.body, PAGE);
  });
});
