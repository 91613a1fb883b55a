// A file replaced or rewritten with its size and mtime kept (mv of a file copied with cp -p,
// rsync -t, tar x) is a new version, uploaded again; a chmod alone is not sent again. The service
// runs as a child process against the real S3 server, through the fault proxy, which counts PUTs.
import assert from 'node:assert/strict';
import { chmod, mkdir, rename, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { waitFor } from '../support/poll.js';
import { createTestBucket, deleteBucket, getObjectBytes, testS3, testS3Client } from '../support/s3.js';
import { startService, type ServiceProcess } from '../support/service-process.js';
import { createUpload, waitForCompleted } from '../support/upload-api.js';
import { makeTempDir, removeTempDir } from '../support/temp-tree.js';

const LONG_AGO = new Date('2021-06-01T12:00:00.123Z');
const SIZE = 4096;

let s3: S3Client;
let proxy: FaultProxy;
let work: string;
let service: ServiceProcess;

before(async () => {
  s3 = testS3Client();
  proxy = await startFaultProxy(testS3().endpoint);
  work = await makeTempDir('e2e-replaced');
  service = await startService({ databaseFile: path.join(work, 'uploads.db'), s3Endpoint: proxy.endpoint });
});

after(async () => {
  await service.stop();
  await proxy.close();
  await removeTempDir(work);
  s3.destroy();
});

afterEach(() => {
  assert.ok(service.child.exitCode === null, 'the service process died during the test');
});

/** `SIZE` bytes of one repeated byte, written with the old mtime, as cp -p leaves a copy. */
async function writeOld(filePath: string, fill: number): Promise<Buffer> {
  const content = Buffer.alloc(SIZE, fill);
  await writeFile(filePath, content);
  await utimes(filePath, LONG_AGO, LONG_AGO);
  return content;
}

function putsOf(bucket: string, key: string): number {
  return proxy.log.filter(
    (request) => request.operation === 'PutObject' && request.path === `/${bucket}/${key}`,
  ).length;
}

async function waitForContent(bucket: string, key: string, expected: Buffer): Promise<void> {
  await waitFor(async () => (await getObjectBytes(s3, bucket, key)).equals(expected), {
    timeoutMs: 30_000,
    intervalMs: 100,
    message: `s3://${bucket}/${key} holds the new content`,
  });
}

describe('a file replaced with its size and mtime kept', () => {
  it('is uploaded again when moved over or rewritten in place, and not after a chmod', async () => {
    const bucket = await createTestBucket(s3, 'replaced');
    const source = path.join(work, 'source');
    const staging = path.join(work, 'staging');
    await Promise.all([source, staging].map((folder) => mkdir(folder)));
    await writeOld(path.join(source, 'moved.bin'), 1);
    await writeOld(path.join(source, 'rewritten.bin'), 2);
    const kept = await writeOld(path.join(source, 'chmodded.bin'), 3);
    const uploadId = await createUpload(service, { source_folder: source, destination_bucket: bucket });
    await waitForCompleted(service, uploadId, 3);
    proxy.resetStats();

    // mv of a copy that kept size and mtime; a rewrite with the mtime set back; a chmod.
    const replacement = await writeOld(path.join(staging, 'moved.bin'), 4);
    await rename(path.join(staging, 'moved.bin'), path.join(source, 'moved.bin'));
    const rewrite = await writeOld(path.join(source, 'rewritten.bin'), 5);
    await chmod(path.join(source, 'chmodded.bin'), 0o600);

    await waitForContent(bucket, 'moved.bin', replacement);
    await waitForContent(bucket, 'rewritten.bin', rewrite);
    // The chmod is noticed (by an event or the rescan), hashed, and recorded without a PUT.
    await waitFor(
      () =>
        service.logs.find(
          (entry) =>
            entry.path === 'chmodded.bin' && entry.method === 'unchanged' && typeof entry.msg === 'string',
        ),
      { timeoutMs: 30_000, intervalMs: 100, message: 'the chmod was checked and nothing sent' },
    );
    await waitForCompleted(service, uploadId, 3);
    assert.equal(putsOf(bucket, 'moved.bin'), 1);
    assert.equal(putsOf(bucket, 'rewritten.bin'), 1);
    assert.equal(putsOf(bucket, 'chmodded.bin'), 0, 'a chmod alone sends nothing');
    assert.ok((await getObjectBytes(s3, bucket, 'chmodded.bin')).equals(kept));
    await deleteBucket(s3, bucket);
  });
});
