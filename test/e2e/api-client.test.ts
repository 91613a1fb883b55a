// A client generated from the OpenAPI document (openapi-typescript's types, openapi-fetch) drives
// the service end to end: create an upload, poll it, list its files, retry the failed ones, cancel.
// That it typechecks (npm run typecheck) is half the test: a route or field the document does not
// give cannot be written here.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import createClient from 'openapi-fetch';
import type { components, paths } from '../../src/api/openapi-types.js';
import { waitFor } from '../support/poll.js';
import { deleteBucket, listKeys, testS3Client, uniqueBucketName } from '../support/s3.js';
import { startService, type ServiceProcess } from '../support/service-process.js';
import { makeTempDir, removeTempDir } from '../support/temp-tree.js';

type UploadDetails = components['schemas']['UploadDetails'];

let s3: S3Client;
let work: string;
let service: ServiceProcess;

before(async () => {
  s3 = testS3Client();
  work = await makeTempDir('e2e-api-client');
  service = await startService({ databaseFile: path.join(work, 'state.db') });
});

after(async () => {
  await service.stop();
  await removeTempDir(work);
  s3.destroy();
});

describe('a client generated from the OpenAPI document', () => {
  it('creates an upload, polls it, lists its files, retries the failed ones and cancels it', async () => {
    const client = createClient<paths>({ baseUrl: service.baseUrl });
    const bucket = uniqueBucketName('client'); // created only later: the files fail first
    const source = path.join(work, 'source');
    await mkdir(source, { recursive: true });
    await writeFile(path.join(source, 'a.txt'), 'a');
    await writeFile(path.join(source, 'b.txt'), 'b');

    const created = await client.POST('/uploads', {
      body: { source_folder: source, destination_bucket: bucket, upload_id: 'client-1', check_bucket: false },
    });
    assert.equal(created.response.status, 201, JSON.stringify(created.error));
    assert.equal(created.data?.upload_id, 'client-1');
    const params = { path: { upload_id: 'client-1' } };

    const poll = (done: (upload: UploadDetails) => boolean, message: string): Promise<UploadDetails> =>
      waitFor(
        async () => {
          const { data } = await client.GET('/uploads/{upload_id}', { params });
          return data && done(data) ? data : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 100, message },
      );

    const failed = await poll((upload) => upload.files.failed === 2, 'both files failed: no bucket');
    assert.match(failed.last_error ?? '', /NoSuchBucket/);
    const failedFiles = await client.GET('/uploads/{upload_id}/files', {
      params: { ...params, query: { status: 'failed', limit: 10 } },
    });
    assert.deepEqual(failedFiles.data?.items.map((file) => file.relative_path).sort(), ['a.txt', 'b.txt']);
    assert.equal(failedFiles.data?.next_cursor, null);

    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const retried = await client.POST('/uploads/{upload_id}/retry', { params });
    assert.deepEqual(retried.data, { upload_id: 'client-1', requeued: 2 });
    const completed = await poll((upload) => upload.files.completed === 2, 'both files completed');
    assert.equal(completed.bytes.uploaded, 2);
    assert.deepEqual(await listKeys(s3, bucket), ['a.txt', 'b.txt']);
    const files = await client.GET('/uploads/{upload_id}/files', { params });
    for (const file of files.data?.items ?? []) {
      assert.equal(file.status, 'completed');
      assert.match(file.sha256 ?? '', /^[0-9a-f]{64}$/);
    }

    const cancelled = await client.DELETE('/uploads/{upload_id}', { params });
    assert.equal(cancelled.data?.status, 'cancelled');
    const again = await client.POST('/uploads/{upload_id}/retry', { params });
    assert.equal(again.response.status, 409);
    assert.equal(again.error?.error, 'upload_cancelled');
    const unknown = await client.GET('/uploads/{upload_id}', { params: { path: { upload_id: 'nobody' } } });
    assert.equal(unknown.error?.error, 'upload_not_found');

    await deleteBucket(s3, bucket);
  });
});
