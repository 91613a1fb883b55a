// POST /uploads checks the bucket with the service's own credentials before it answers, the
// service running as users run it (a child process) against the real S3: a missing bucket, a wrong
// secret and no credentials at all are each a 422 with the message files would have shown, and
// nothing is created; a listing denied by policy (through the fault proxy) creates the upload with
// a warning; check_bucket: false skips the check.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { ACCESS_DENIED, startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { createTestBucket, deleteBucket, testS3, testS3Client, uniqueBucketName } from '../support/s3.js';
import { api, killAllServices, startService, type ServiceOptions } from '../support/service-process.js';
import { makeTempDir, removeTempDir } from '../support/temp-tree.js';

interface Refusal {
  error: string;
  message: string;
  details?: { field: string; message: string }[];
}

let s3: S3Client;
let work: string;
let source: string;
let bucket: string;
let proxy: FaultProxy;

before(async () => {
  s3 = testS3Client();
  work = await makeTempDir('e2e-bucket-check');
  source = path.join(work, 'run');
  await mkdir(source, { recursive: true });
  await writeFile(path.join(source, 'a.txt'), 'a');
  bucket = await createTestBucket(s3, 'check');
  proxy = await startFaultProxy(testS3().endpoint);
});

after(async () => {
  await proxy.close();
  await deleteBucket(s3, bucket);
  await removeTempDir(work);
  s3.destroy();
});

afterEach(async () => {
  assert.equal(await killAllServices(), 0, 'a test left a service process running');
});

let databases = 0;
function start(options: Partial<ServiceOptions> = {}) {
  return startService({ databaseFile: path.join(work, `state-${++databases}.db`), ...options });
}

describe('POST /uploads checks the bucket', () => {
  it('refuses a bucket that does not exist, with the message files would show; check_bucket: false skips it', async () => {
    const service = await start();
    const missing = uniqueBucketName('missing');
    const refused = await api<Refusal>(service, 'POST', '/uploads', {
      source_folder: source,
      destination_bucket: missing,
    });
    assert.equal(refused.status, 422, JSON.stringify(refused.body));
    assert.equal(refused.body.error, 'bucket_not_found');
    assert.match(
      refused.body.message,
      new RegExp(
        `^destination_bucket '${missing}' cannot be used: bucket '${missing}' does not exist \\(NoSuchBucket, HTTP 404\\)`,
      ),
    );
    assert.equal(refused.body.details?.[0]?.field, 'destination_bucket');
    assert.deepEqual(
      (await api<unknown[]>(service, 'GET', '/uploads?status=all')).body,
      [],
      'nothing created',
    );

    const created = await api<{ upload_id: string; warnings: string[] }>(service, 'POST', '/uploads', {
      source_folder: source,
      destination_bucket: missing,
      check_bucket: false,
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.deepEqual(created.body.warnings, []);

    const usable = await api<{ warnings: string[] }>(service, 'POST', '/uploads', {
      source_folder: source,
      destination_bucket: bucket,
    });
    assert.equal(usable.status, 201, JSON.stringify(usable.body));
    assert.deepEqual(usable.body.warnings, []);
    assert.equal(await service.stop(), 0);
  });

  it('refuses when S3 rejects the service’s secret, and when the service has no credentials', async () => {
    const wrongSecret = await start({ env: { AWS_SECRET_ACCESS_KEY: 'not-the-secret' } });
    const rejected = await api<Refusal>(wrongSecret, 'POST', '/uploads', {
      source_folder: source,
      destination_bucket: bucket,
    });
    assert.equal(rejected.status, 422, JSON.stringify(rejected.body));
    assert.equal(rejected.body.error, 's3_credentials_rejected');
    assert.match(rejected.body.message, /S3 rejected the request signature: check the secret access key/);
    assert.ok(!JSON.stringify(rejected.body).includes('not-the-secret'), 'the secret is not returned');
    assert.ok(!wrongSecret.output.join('').includes('not-the-secret'), 'nor logged');
    assert.equal(await wrongSecret.stop(), 0);

    const { endpoint, region } = testS3();
    const noCredentials = await start({
      withoutS3Settings: true,
      env: { AWS_ENDPOINT_URL_S3: endpoint, AWS_REGION: region, S3_FORCE_PATH_STYLE: 'true' },
    });
    const missing = await api<Refusal>(noCredentials, 'POST', '/uploads', {
      source_folder: source,
      destination_bucket: bucket,
    });
    assert.equal(missing.status, 422, JSON.stringify(missing.body));
    assert.equal(missing.body.error, 's3_credentials_missing');
    assert.match(missing.body.message, /no AWS credentials found/);
    assert.equal(await noCredentials.stop(), 0);
  });

  it('creates the upload with a warning when the listing is denied (a write-only policy)', async () => {
    const service = await start({ s3Endpoint: proxy.endpoint });
    const denied = proxy.inject({ fault: ACCESS_DENIED, bucket, method: 'GET', query: ['list-type'] });
    const created = await api<{ upload_id: string; warnings: string[] }>(service, 'POST', '/uploads', {
      source_folder: source,
      destination_bucket: bucket,
      destination_prefix: 'denied',
    });
    denied.remove();
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.deepEqual(created.body.warnings, [
      `destination_bucket '${bucket}' was not checked: access denied to bucket '${bucket}' (AccessDenied, HTTP 403) [ListObjectsV2 s3://${bucket}/denied]`,
    ]);
    const warned = service.logs.find(
      (line) => line.msg === 'upload created, but not everything could be checked',
    );
    assert.equal(warned?.level, 40);
    assert.equal(warned.uploadId, created.body.upload_id);
    assert.equal(await service.stop(), 0);
  });
});
