// S3_REQUEST_TIMEOUT_MS: a request whose answer stalls, before its headers or in the middle of its
// body, is given up after the timeout with an error the retry loop takes for transient.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { CompleteMultipartUploadCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ConfigError, loadConfig, type S3Settings } from '../../src/config.js';
import { classifyS3Error, describeS3Error } from '../../src/transfer/errors.js';
import { createS3Client } from '../../src/transfer/s3-client.js';

const TIMEOUT_MS = 300;

let server: http.Server;
let client: S3Client;
const sockets = new Set<Socket>();

before(async () => {
  // Never answers a PUT; answers a POST with its status, headers and half of its XML, then nothing.
  server = http.createServer((req, res) => {
    req.resume();
    if (req.method !== 'POST') return;
    const xml = '<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUploadResult><ETag>"abc-2"</ETag>';
    res.writeHead(200, { 'content-type': 'application/xml', 'content-length': xml.length * 2 });
    res.write(xml);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const settings: S3Settings = {
    region: 'us-east-1',
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    forcePathStyle: true,
    checksumMode: 'when_required',
    accessKeyId: 'test-key-id',
    secretAccessKey: 'secret',
    sessionToken: undefined,
    profile: undefined,
  };
  client = createS3Client(settings, { maxSockets: 2, requestTimeoutMs: TIMEOUT_MS });
});

after(async () => {
  client.destroy();
  for (const socket of sockets) socket.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

async function failure(send: () => Promise<unknown>): Promise<{ error: unknown; elapsedMs: number }> {
  const startedAt = Date.now();
  try {
    await send();
  } catch (error) {
    return { error, elapsedMs: Date.now() - startedAt };
  }
  assert.fail('the request succeeded');
}

describe('S3_REQUEST_TIMEOUT_MS', () => {
  it('defaults to 15 minutes, and takes 100 ms and more', () => {
    assert.equal(loadConfig({}).s3RequestTimeoutMs, 15 * 60_000);
    assert.equal(loadConfig({ S3_REQUEST_TIMEOUT_MS: '100' }).s3RequestTimeoutMs, 100);
    for (const value of ['99', 'soon', '1.5']) {
      assert.throws(
        () => loadConfig({ S3_REQUEST_TIMEOUT_MS: value }),
        (error) => error instanceof ConfigError && error.variable === 'S3_REQUEST_TIMEOUT_MS',
      );
    }
  });

  it('gives up a request whose answer never comes, as a transient error', async () => {
    const { error, elapsedMs } = await failure(() =>
      client.send(new PutObjectCommand({ Bucket: 'b', Key: 'k', Body: 'x' })),
    );
    assert.equal(classifyS3Error(error), 'transient', String(error));
    assert.match(
      describeS3Error(error),
      /^S3 did not answer within S3_REQUEST_TIMEOUT_MS, or the connection timed out \(ETIMEDOUT/,
    );
    assert.ok(elapsedMs >= TIMEOUT_MS - 50 && elapsedMs < TIMEOUT_MS + 2000, `gave up after ${elapsedMs} ms`);
  });

  it('gives up an answer whose body stalls after the headers, as a transient error', async () => {
    const { error, elapsedMs } = await failure(() =>
      client.send(
        new CompleteMultipartUploadCommand({
          Bucket: 'b',
          Key: 'k',
          UploadId: 'u',
          MultipartUpload: { Parts: [{ PartNumber: 1, ETag: '"e"' }] },
        }),
      ),
    );
    assert.equal(classifyS3Error(error), 'transient', String(error));
    assert.match(
      describeS3Error(error),
      /^S3 did not answer within S3_REQUEST_TIMEOUT_MS, or the connection timed out \(ETIMEDOUT/,
    );
    assert.ok(elapsedMs >= TIMEOUT_MS - 50 && elapsedMs < TIMEOUT_MS + 2000, `gave up after ${elapsedMs} ms`);
  });
});
