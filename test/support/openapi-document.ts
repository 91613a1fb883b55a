// The OpenAPI document exactly as the service serves it at /openapi.json, from an app built with a
// store in a temporary folder and no engine or S3 (the document depends on the routes only).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildApp } from '../../src/api/app.js';
import { UploadService } from '../../src/service/upload-service.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { FakeAuditor } from './fake-auditor.js';
import { RecordingLifecycle } from './recording-lifecycle.js';

/** The version the generated client is written from, so that it does not change with each release. */
export const DOCUMENT_VERSION = '0.0.0';

/** The text of the served document; `apiToken` set: as a service with an API token serves it. */
export async function servedOpenApiText(apiToken?: string): Promise<string> {
  const root = await mkdtemp(path.join(tmpdir(), 'openapi-document-'));
  const store = openSqliteStore(path.join(root, 'state.db'));
  try {
    const service = new UploadService({
      store,
      lifecycle: new RecordingLifecycle(),
      auditor: new FakeAuditor(),
    });
    const app = await buildApp({ service, logger: false, version: DOCUMENT_VERSION, apiToken });
    try {
      const reply = await app.inject({ method: 'GET', url: '/openapi.json' });
      if (reply.statusCode !== 200)
        throw new Error(`/openapi.json answered ${reply.statusCode}: ${reply.body}`);
      return reply.body;
    } finally {
      await app.close();
    }
  } finally {
    await store.close();
    await rm(root, { recursive: true, force: true });
  }
}
