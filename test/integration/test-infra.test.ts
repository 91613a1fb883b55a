// The test infrastructure itself: the S3 server is the strict one (Swift's s3api), the fault proxy
// injects what it says and streams, and the small helpers do what the other tests rely on.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type UploadPartCommandOutput,
} from '@aws-sdk/client-s3';
import { INTERNAL_ERROR, SLOW_DOWN, startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { waitFor } from '../support/poll.js';
import { createTestBucket, deleteBucket, getObjectBytes, testS3, testS3Client } from '../support/s3.js';
import { makeTempDir, md5OfFile, removeTempDir, writeRandomFile } from '../support/temp-tree.js';

const MiB = 1024 * 1024;

function md5Base64(bytes: Uint8Array): string {
  return createHash('md5').update(bytes).digest('base64');
}

function md5Hex(bytes: Uint8Array): string {
  return createHash('md5').update(bytes).digest('hex');
}

/** A client through the proxy that tries once, so that each injected fault reaches the test. */
function clientVia(endpoint: string): S3Client {
  const s3 = testS3();
  return new S3Client({
    endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 1,
  });
}

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

/** An error with no HTTP answer behind it: the connection was reset. */
function isConnectionError(error: unknown): boolean {
  const { code, message, $metadata } = error as SdkError;
  return (
    $metadata?.httpStatusCode === undefined && /ECONNRESET|EPIPE|socket hang up/i.test(`${code} ${message}`)
  );
}

async function objectExists(client: S3Client, bucket: string, key: string): Promise<boolean> {
  try {
    await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch (error) {
    if ((error as SdkError).$metadata?.httpStatusCode === 404) return false;
    throw error;
  }
}

describe('the test S3 server is strict', () => {
  let client: S3Client;
  let bucket: string;

  before(async () => {
    client = testS3Client();
    bucket = await createTestBucket(client, 'infra-strict');
  });
  after(async () => {
    await deleteBucket(client, bucket);
    client.destroy();
  });

  it('rejects a PutObject whose Content-MD5 does not match the body (BadDigest)', async () => {
    await assert.rejects(
      client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: 'bad-digest.txt',
          Body: 'the body',
          ContentMD5: md5Base64(Buffer.from('another body')),
        }),
      ),
      { name: 'BadDigest' },
    );
    await client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: 'good-digest.txt',
        Body: 'the body',
        ContentMD5: md5Base64(Buffer.from('the body')),
      }),
    );
    assert.equal(await objectExists(client, bucket, 'bad-digest.txt'), false);
    assert.equal((await getObjectBytes(client, bucket, 'good-digest.txt')).toString(), 'the body');
  });

  it('rejects a request signed with a wrong secret', async () => {
    const s3 = testS3();
    const impostor = new S3Client({
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: `${s3.secretAccessKey}-wrong` },
      maxAttempts: 1,
    });
    try {
      await assert.rejects(impostor.send(new ListObjectsV2Command({ Bucket: bucket })), {
        name: 'SignatureDoesNotMatch',
      });
    } finally {
      impostor.destroy();
    }
  });

  it('lists the parts of a multipart upload and completes it with an md5-of-md5s-N ETag', async () => {
    const key = 'multipart/object.bin';
    const parts = [randomBytes(5 * MiB), randomBytes(1234)];
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    assert.ok(UploadId);
    const etags: string[] = [];
    for (const [index, body] of parts.entries()) {
      const { ETag }: UploadPartCommandOutput = await client.send(
        new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: index + 1, Body: body }),
      );
      assert.equal(ETag, `"${md5Hex(body)}"`);
      etags.push(ETag);
    }

    const listed = await client.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId }));
    assert.deepEqual(
      (listed.Parts ?? []).map(({ PartNumber, Size, ETag }) => ({ PartNumber, Size, ETag })),
      parts.map((body, index) => ({ PartNumber: index + 1, Size: body.length, ETag: etags[index] })),
    );

    const completed = await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId,
        MultipartUpload: { Parts: etags.map((ETag, index) => ({ ETag, PartNumber: index + 1 })) },
      }),
    );
    const md5OfMd5s = createHash('md5')
      .update(Buffer.concat(parts.map((body) => createHash('md5').update(body).digest())))
      .digest('hex');
    assert.equal(completed.ETag, `"${md5OfMd5s}-2"`);
    assert.ok((await getObjectBytes(client, bucket, key)).equals(Buffer.concat(parts)));
  });
});

describe('the fault proxy in front of S3', () => {
  let direct: S3Client;
  let bucket: string;
  let proxy: FaultProxy;
  let viaProxy: S3Client;

  before(async () => {
    direct = testS3Client();
    bucket = await createTestBucket(direct, 'infra-proxy');
    proxy = await startFaultProxy(testS3().endpoint);
    viaProxy = clientVia(proxy.endpoint);
  });
  beforeEach(() => {
    proxy.clearFaults();
    proxy.resetStats();
  });
  after(async () => {
    viaProxy.destroy();
    await proxy.close();
    await deleteBucket(direct, bucket);
    direct.destroy();
  });

  it('passes an injected 503 SlowDown to the client, then lets the next request through', async () => {
    const fault = proxy.inject({ method: 'PUT', times: 1, fault: SLOW_DOWN });
    const put = () => viaProxy.send(new PutObjectCommand({ Bucket: bucket, Key: 'slow.txt', Body: 'slow' }));

    await assert.rejects(put(), (error: SdkError) => {
      assert.equal(error.name, 'SlowDown');
      assert.equal(error.$metadata?.httpStatusCode, 503);
      return true;
    });
    assert.equal(await objectExists(direct, bucket, 'slow.txt'), false, 'S3 never saw the failed PUT');

    await put();
    assert.equal(fault.hits, 1);
    assert.equal(proxy.stats.faultsInjected, 1);
    assert.deepEqual(
      proxy.log.map(({ method, outcome }) => [method, outcome]),
      [
        ['PUT', 503],
        ['PUT', 200],
      ],
    );
    assert.equal((await getObjectBytes(direct, bucket, 'slow.txt')).toString(), 'slow');
  });

  it('sees a reset before forwarding as a network error, and S3 never gets the request', async () => {
    proxy.inject({ method: 'PUT', times: 1, fault: { type: 'reset', stage: 'before-forward' } });
    await assert.rejects(
      viaProxy.send(new PutObjectCommand({ Bucket: bucket, Key: 'reset-before.txt', Body: 'x' })),
      (error) => isConnectionError(error),
    );
    assert.equal(await objectExists(direct, bucket, 'reset-before.txt'), false);
    assert.equal(proxy.stats.bodyBytesForwarded.PUT ?? 0, 0);
  });

  it('sees a reset after forwarding as a network error, though S3 stored the object', async () => {
    proxy.inject({ method: 'PUT', times: 1, fault: { type: 'reset', stage: 'after-forward' } });
    await assert.rejects(
      viaProxy.send(new PutObjectCommand({ Bucket: bucket, Key: 'reset-after.txt', Body: 'stored' })),
      (error) => isConnectionError(error),
    );
    assert.equal((await getObjectBytes(direct, bucket, 'reset-after.txt')).toString(), 'stored');
  });

  it('cuts a request body after the given bytes, and S3 keeps nothing of it', async () => {
    const body = randomBytes(MiB);
    proxy.inject({
      method: 'PUT',
      times: 1,
      fault: { type: 'reset', stage: 'during-body', afterBytes: 256 * 1024 },
    });
    await assert.rejects(
      viaProxy.send(new PutObjectCommand({ Bucket: bucket, Key: 'cut.bin', Body: body })),
      (error) => isConnectionError(error),
    );
    assert.equal(proxy.stats.bodyBytesForwarded.PUT, 256 * 1024);
    assert.equal(await objectExists(direct, bucket, 'cut.bin'), false);
  });

  it('counts requests by method and the request body bytes forwarded to S3', async () => {
    const body = randomBytes(3 * MiB + 17);
    await viaProxy.send(new PutObjectCommand({ Bucket: bucket, Key: 'counted.bin', Body: body }));
    await viaProxy.send(new HeadObjectCommand({ Bucket: bucket, Key: 'counted.bin' }));
    assert.ok((await getObjectBytes(viaProxy, bucket, 'counted.bin')).equals(body));
    assert.deepEqual(proxy.stats.requests, { PUT: 1, HEAD: 1, GET: 1 });
    assert.equal(proxy.stats.bodyBytesForwarded.PUT, body.length);
    assert.equal(proxy.stats.faultsInjected, 0);
  });

  it('picks the requests to fault by query parameters, skip and times', async () => {
    const key = 'parts.bin';
    const { UploadId } = await viaProxy.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    const fault = proxy.inject({
      method: 'PUT',
      query: ['partNumber', 'uploadId'],
      skip: 1,
      times: 1,
      fault: INTERNAL_ERROR,
    });
    const outcomes: string[] = [];
    for (const PartNumber of [1, 2, 3]) {
      try {
        await viaProxy.send(
          new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber, Body: 'part' }),
        );
        outcomes.push('ok');
      } catch (error) {
        outcomes.push((error as SdkError).name ?? 'unknown');
      }
    }
    assert.deepEqual(outcomes, ['ok', 'InternalError', 'ok']);
    assert.equal(fault.hits, 1);
    const listed = await viaProxy.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId }));
    assert.deepEqual(
      (listed.Parts ?? []).map((part) => part.PartNumber),
      [1, 3],
    );
    await viaProxy.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId }));
  });

  it('holds a request for an injected delay', async () => {
    await direct.send(new PutObjectCommand({ Bucket: bucket, Key: 'delayed.txt', Body: 'late' }));
    proxy.inject({ method: 'GET', times: 1, fault: { type: 'delay', ms: 300 } });
    const startedAt = Date.now();
    assert.equal((await getObjectBytes(viaProxy, bucket, 'delayed.txt')).toString(), 'late');
    assert.ok(Date.now() - startedAt >= 300, 'answered before the delay was over');
  });
});

describe('the fault proxy streams', () => {
  it('forwards body bytes before the client has sent all of them, with the Host header as sent', async () => {
    const received = { bytes: 0, host: '' };
    const target = http.createServer((req, res) => {
      received.host = req.headers.host ?? '';
      req.on('data', (chunk: Buffer) => (received.bytes += chunk.length));
      req.on('end', () => res.end(`got ${received.bytes}`));
    });
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    const proxy = await startFaultProxy(`http://127.0.0.1:${(target.address() as AddressInfo).port}`);
    try {
      const request = http.request(`${proxy.endpoint}/bucket/key`, {
        method: 'PUT',
        headers: { host: 'bucket-host.test:9000', 'content-length': 2 * MiB },
      });
      const response = new Promise<string>((resolve, reject) => {
        request.on('response', (res) => {
          let text = '';
          res.on('data', (chunk: Buffer) => (text += chunk.toString()));
          res.on('end', () => resolve(text));
        });
        request.on('error', reject);
      });
      request.write(randomBytes(MiB));
      await waitFor(() => received.bytes === MiB, {
        message: 'the first half of the body at the target while the client holds the second',
      });
      request.end(randomBytes(MiB));
      assert.equal(await response, `got ${2 * MiB}`);
      assert.equal(received.host, 'bucket-host.test:9000');
      assert.equal(proxy.stats.bodyBytesForwarded.PUT, 2 * MiB);
    } finally {
      await proxy.close();
      await new Promise((resolve) => target.close(resolve));
    }
  });
});

describe('test helpers', () => {
  it('writes random files with their digests, creating parent folders', async () => {
    const dir = await makeTempDir('infra helpers');
    try {
      const file = path.join(dir, 'a', 'b', 'random.bin');
      const digests = await writeRandomFile(file, 2 * MiB + 5);
      const content = await readFile(file);
      assert.equal(content.length, 2 * MiB + 5);
      assert.equal(digests.bytes, content.length);
      assert.equal(digests.md5, md5Hex(content));
      assert.equal(digests.sha256, createHash('sha256').update(content).digest('hex'));
      assert.equal(await md5OfFile(file), digests.md5);
    } finally {
      await removeTempDir(dir);
    }
  });

  it('waitFor returns the first truthy value and reports the last one seen at its deadline', async () => {
    let calls = 0;
    assert.equal(
      await waitFor(() => (++calls >= 3 ? `ready after ${calls}` : undefined), { message: 'x' }),
      'ready after 3',
    );

    await assert.rejects(
      waitFor(() => false, { timeoutMs: 100, message: 'never done' }),
      {
        message: /^never done: not reached within 100 ms \(last value: false\)$/,
      },
    );
    await assert.rejects(
      waitFor(
        () => {
          throw new Error('still broken');
        },
        { timeoutMs: 100, message: 'never fixed' },
      ),
      { message: /never fixed: .*last error: still broken/ },
    );
  });

  it('waitFor gives up on a probe that hangs past the deadline', async () => {
    await assert.rejects(
      waitFor(() => new Promise<boolean>(() => undefined), { timeoutMs: 100, message: 'hung' }),
      { message: /hung: .*still running at the deadline/ },
    );
  });

  it('removeTempDir refuses what makeTempDir did not make', async () => {
    const dir = await makeTempDir('infra-guard');
    try {
      for (const notTemp of [tmpdir(), path.dirname(tmpdir()), path.join(dir, 'inner'), `${dir}/../..`]) {
        await assert.rejects(removeTempDir(notTemp), /refusing to remove/, notTemp);
      }
    } finally {
      await removeTempDir(dir);
    }
    await assert.rejects(stat(dir), { code: 'ENOENT' });
  });
});
