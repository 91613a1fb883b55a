// GET and PATCH /settings through inject(): the bandwidth limit the app was given is the one read
// and changed, at once, and a bad value changes nothing.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { buildApp, type App } from '../../src/api/app.js';
import { SettingsService } from '../../src/service/settings.js';
import { UploadService } from '../../src/service/upload-service.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { TokenBucket } from '../../src/transfer/token-bucket.js';
import { FakeAuditor } from '../support/fake-auditor.js';
import { RecordingLifecycle } from '../support/recording-lifecycle.js';
import { makeTempDir, removeTempDir } from '../support/temp-tree.js';

async function setUp(t: TestContext, bandwidth: TokenBucket): Promise<App> {
  const root = await makeTempDir('settings-api');
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
    settings: new SettingsService(bandwidth),
  });
  t.after(async () => {
    await app.close();
    await store.close();
    await removeTempDir(root);
  });
  return app;
}

describe('/settings', () => {
  test('reads the limit the service started with', async (t) => {
    const app = await setUp(t, new TokenBucket(4 * 1024 * 1024));
    const reply = await app.inject({ method: 'GET', url: '/settings' });
    assert.equal(reply.statusCode, 200);
    assert.deepEqual(reply.json(), { max_upload_bytes_per_second: 4 * 1024 * 1024 });
  });

  test('changes the limit of the bucket at once, lifts it with 0, and keeps it for an empty change', async (t) => {
    const bandwidth = new TokenBucket(0);
    const app = await setUp(t, bandwidth);
    const patch = (payload: object) => app.inject({ method: 'PATCH', url: '/settings', payload });

    const set = await patch({ max_upload_bytes_per_second: 1_000_000 });
    assert.equal(set.statusCode, 200);
    assert.deepEqual(set.json(), { max_upload_bytes_per_second: 1_000_000 });
    assert.equal(bandwidth.bytesPerSecond, 1_000_000);

    const unchanged = await patch({});
    assert.deepEqual(unchanged.json(), { max_upload_bytes_per_second: 1_000_000 });

    await patch({ max_upload_bytes_per_second: 0 });
    assert.equal(bandwidth.bytesPerSecond, 0);
    const read = await app.inject({ method: 'GET', url: '/settings' });
    assert.deepEqual(read.json(), { max_upload_bytes_per_second: 0 });
  });

  test('refuses a bad value with a 400 that names the field, and changes nothing', async (t) => {
    const bandwidth = new TokenBucket(5000);
    const app = await setUp(t, bandwidth);
    for (const value of [-1, 1.5, '1000', null, true, Number.MAX_SAFE_INTEGER + 2]) {
      const reply = await app.inject({
        method: 'PATCH',
        url: '/settings',
        payload: { max_upload_bytes_per_second: value },
      });
      assert.equal(reply.statusCode, 400, JSON.stringify(value));
      const body = reply.json<{ error: string; details?: { field: string }[] }>();
      assert.equal(body.error, 'validation_error');
      assert.equal(body.details?.[0]?.field, 'max_upload_bytes_per_second', JSON.stringify(body));
    }
    const unknown = await app.inject({ method: 'PATCH', url: '/settings', payload: { max_speed: 1 } });
    assert.equal(unknown.statusCode, 400);
    assert.equal(bandwidth.bytesPerSecond, 5000);
  });
});
