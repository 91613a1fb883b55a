// The check of a new upload's bucket against the real S3 server: a usable bucket, a missing one,
// credentials S3 rejects (a wrong secret, an unknown access key), and what the check cannot tell
// (listing denied, no answer in time), through the fault proxy.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.js';
import { checkBucket } from '../../src/transfer/bucket-check.js';
import { createS3Client } from '../../src/transfer/s3-client.js';
import { createTransferContext } from '../../src/transfer/s3-request.js';
import type { S3Settings } from '../../src/config.js';
import { ACCESS_DENIED, startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import {
  createTestBucket,
  deleteBucket,
  testS3,
  testS3Client,
  testS3Settings,
  uniqueBucketName,
} from '../support/s3.js';

const transfer = loadConfig({ RETRY_MAX_ATTEMPTS: '3', RETRY_BASE_DELAY_MS: '10' }).transfer;
const silent = pino({ level: 'silent' });

function contextFor(settings: S3Settings) {
  return createTransferContext(createS3Client(settings, { maxSockets: 2 }), transfer, silent);
}

describe('the check of a bucket', () => {
  const s3 = testS3Client();
  let bucket: string;
  let proxy: FaultProxy;

  before(async () => {
    bucket = await createTestBucket(s3, 'check');
    proxy = await startFaultProxy(testS3().endpoint);
  });

  after(async () => {
    await proxy.close();
    await deleteBucket(s3, bucket);
    s3.destroy();
  });

  it('finds a bucket usable, with or without a prefix, in one request', async () => {
    const context = contextFor(testS3Settings(proxy.endpoint));
    proxy.resetStats();
    assert.deepEqual(await checkBucket(context, bucket, ''), { result: 'usable' });
    assert.deepEqual(await checkBucket(context, bucket, 'runs/42'), { result: 'usable' });
    assert.deepEqual(
      proxy.log.map((request) => `${request.method} ${request.query.get('prefix') ?? ''}`),
      ['GET ', 'GET runs/42'],
    );
  });

  it('refuses a bucket that does not exist', async () => {
    const missing = uniqueBucketName('missing');
    const check = await checkBucket(contextFor(testS3Settings()), missing, '');
    assert.equal(check.result, 'refused');
    assert.ok(check.result === 'refused');
    assert.equal(check.problem, 'bucket_not_found');
    assert.match(
      check.message,
      new RegExp(`bucket '${missing}' does not exist \\(NoSuchBucket, HTTP 404\\)`),
    );
  });

  it('refuses credentials S3 rejects: a wrong secret, an unknown access key', async () => {
    const wrongSecret = await checkBucket(
      contextFor({ ...testS3Settings(), secretAccessKey: 'not-the-secret' }),
      bucket,
      '',
    );
    assert.ok(wrongSecret.result === 'refused', JSON.stringify(wrongSecret));
    assert.equal(wrongSecret.problem, 's3_credentials_rejected');
    assert.match(wrongSecret.message, /S3 rejected the request signature: check the secret access key/);
    assert.ok(!wrongSecret.message.includes('not-the-secret'), 'the secret is never in a message');

    const unknownKey = await checkBucket(
      contextFor({ ...testS3Settings(), accessKeyId: 'nobody:nothing' }),
      bucket,
      '',
    );
    assert.ok(unknownKey.result === 'refused', JSON.stringify(unknownKey));
    assert.equal(unknownKey.problem, 's3_credentials_rejected');
    // AWS answers InvalidAccessKeyId; Swift's tempauth, SignatureDoesNotMatch: both are rejected credentials.
    assert.match(unknownKey.message, /\((InvalidAccessKeyId|SignatureDoesNotMatch), HTTP 403\)/);
  });

  it('cannot tell when listing is denied, or when S3 does not answer in time: unchecked, asked once', async () => {
    const context = contextFor(testS3Settings(proxy.endpoint));
    const denied = proxy.inject({ fault: ACCESS_DENIED, bucket, method: 'GET' });
    const check = await checkBucket(context, bucket, '');
    denied.remove();
    assert.deepEqual(check, {
      result: 'unchecked',
      message: `access denied to bucket '${bucket}' (AccessDenied, HTTP 403) [ListObjectsV2 s3://${bucket}]`,
    });
    assert.equal(denied.hits, 1, 'no retry');

    const slow = proxy.inject({ fault: { type: 'delay', ms: 2_000 }, bucket, method: 'GET' });
    const started = Date.now();
    const timedOut = await checkBucket(context, bucket, '', 300);
    slow.remove();
    assert.deepEqual(timedOut, { result: 'unchecked', message: 'S3 did not answer within 0.3 s' });
    assert.ok(Date.now() - started < 1_500, `answered after ${Date.now() - started} ms`);
  });
});
