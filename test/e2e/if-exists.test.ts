// What an upload does with objects already at its files' keys (if_exists), as `aws s3 sync` and
// `rclone copy` compare before they send: a bucket filled by another client (the AWS SDK, with its
// own part size), then uploads over it, every request counted at a proxy in front of the test S3
// server. A real service.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { startFaultProxy, type FaultProxy, type S3Operation } from '../support/fault-proxy.js';
import { waitFor } from '../support/poll.js';
import { createTestBucket, deleteBucket, getObjectBytes, testS3, testS3Client } from '../support/s3.js';
import { api, killAllServices, startService, type ServiceProcess } from '../support/service-process.js';
import { makeTempDir, removeTempDir } from '../support/temp-tree.js';
import { createUpload, fileItems, waitForCompleted } from '../support/upload-api.js';

const MiB = 1024 * 1024;
/**
 * Files of the folder that is already in S3. The figure is 10,000 (IF_EXISTS_FILES=10000):
 * filling the test server with them takes minutes at its rate of small PUTs on two cores, so CI
 * runs enough for two pages of the listing, and the benchmark (`existing`) the 10,000.
 */
const MANY_FILES = Number(process.env.IF_EXISTS_FILES ?? 1100);
/** The SDK's part size here, unlike the service's (8 MiB): the comparison must find it out. */
const OTHER_PART_SIZE = 5 * MiB;

let s3: S3Client;
let work: string;
let proxy: FaultProxy;
let bucket: string;

before(async () => {
  s3 = testS3Client();
  work = await makeTempDir('e2e-if-exists');
  proxy = await startFaultProxy(testS3().endpoint);
  bucket = await createTestBucket(s3, 'if-exists');
});

after(async () => {
  await deleteBucket(s3, bucket);
  await proxy.close();
  await removeTempDir(work);
  s3.destroy();
});

afterEach(async () => {
  assert.equal(await killAllServices(), 0, 'a test left a service process running');
});

/** A multipart object as another client puts it: parts of OTHER_PART_SIZE. */
async function putMultipart(key: string, content: Buffer): Promise<void> {
  const created = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  const parts = [];
  for (let offset = 0, number = 1; offset < content.length; offset += OTHER_PART_SIZE, number++) {
    const part = await s3.send(
      new UploadPartCommand({
        Bucket: bucket,
        Key: key,
        UploadId: created.UploadId,
        PartNumber: number,
        Body: content.subarray(offset, offset + OTHER_PART_SIZE),
      }),
    );
    parts.push({ PartNumber: number, ETag: part.ETag });
  }
  await s3.send(
    new CompleteMultipartUploadCommand({
      Bucket: bucket,
      Key: key,
      UploadId: created.UploadId,
      MultipartUpload: { Parts: parts },
    }),
  );
}

interface Run {
  folder: string;
  prefix: string;
  /** The local content of each file, by name. */
  files: Map<string, Buffer>;
}

/**
 * A folder and, under `prefix`, what another client put before: the same single-part and multipart
 * objects, one of the same size with other bytes, one of another size; one file has no object.
 */
async function prefilled(label: string): Promise<Run> {
  const folder = path.join(work, label);
  const prefix = label;
  const files = new Map<string, Buffer>([
    ['same.txt', randomBytes(1000)],
    ['sub/same-multipart.bin', randomBytes(12 * MiB + 3)],
    ['changed.txt', randomBytes(1000)],
    ['resized.txt', randomBytes(1000)],
    ['missing.txt', randomBytes(1000)],
  ]);
  for (const [name, content] of files) {
    await mkdir(path.dirname(path.join(folder, name)), { recursive: true });
    await writeFile(path.join(folder, name), content);
  }
  const put = (name: string, body: Buffer) =>
    s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/${name}`, Body: body }));
  await put('same.txt', files.get('same.txt') ?? Buffer.alloc(0));
  await putMultipart(
    `${prefix}/sub/same-multipart.bin`,
    files.get('sub/same-multipart.bin') ?? Buffer.alloc(0),
  );
  await put('changed.txt', randomBytes(1000));
  await put('resized.txt', randomBytes(999));
  return { folder, prefix, files };
}

/** The requests of one operation the proxy saw for keys under the prefix, by key (without the prefix). */
function requestsUnder(prefix: string, operations: readonly S3Operation[]): string[] {
  const start = `/${bucket}/${prefix}/`;
  return proxy.log
    .filter((record) => operations.includes(record.operation) && record.path.startsWith(start))
    .map((record) => decodeURIComponent(record.path.slice(start.length)))
    .sort();
}

const SENDING: readonly S3Operation[] = ['PutObject', 'CreateMultipartUpload', 'UploadPart'];

async function objectsMatch(run: Run): Promise<void> {
  for (const [name, content] of run.files) {
    const stored = await getObjectBytes(s3, bucket, `${run.prefix}/${name}`);
    assert.ok(stored.equals(content), `${name} in S3 is the file`);
  }
}

async function oneShot(service: ServiceProcess, run: Run, ifExists?: string): Promise<string> {
  const uploadId = await createUpload(service, {
    source_folder: run.folder,
    destination_bucket: bucket,
    destination_prefix: run.prefix,
    watch: false,
    ...(ifExists === undefined ? {} : { if_exists: ifExists }),
  });
  await waitFor(
    async () => {
      const details = await api<{ status: string }>(service, 'GET', `/uploads/${uploadId}`);
      return details.body.status === 'completed';
    },
    { timeoutMs: 30_000, intervalMs: 100, message: `${uploadId} completed` },
  );
  return uploadId;
}

describe('if_exists', () => {
  it('skip_identical (the default) sends only what differs; skip leaves every object; overwrite sends all', async () => {
    const identical = await prefilled('identical');
    const skip = await prefilled('skip');
    const overwrite = await prefilled('overwrite');
    proxy.resetStats();
    const service = await startService({
      databaseFile: path.join(work, 'modes.db'),
      s3Endpoint: proxy.endpoint,
    });

    const identicalId = await oneShot(service, identical);
    // Identical objects cost no request that sends bytes; the changed, resized and missing ones are sent.
    assert.deepEqual(requestsUnder('identical', SENDING), ['changed.txt', 'missing.txt', 'resized.txt']);
    await objectsMatch(identical);
    const skipped = (await fileItems(service, identicalId)).filter((file) => file.skipped !== null);
    assert.deepEqual(skipped.map((file) => [file.relative_path, file.skipped, file.status]).sort(), [
      ['same.txt', 'already in S3', 'completed'],
      ['sub/same-multipart.bin', 'already in S3', 'completed'],
    ]);
    // Found by the listing, not by a HEAD per file: only the changed object of the same size is
    // asked once more, for the SHA-256 this service would have stored in its metadata.
    assert.equal(requestsUnder('identical', ['HeadObject']).join(), 'changed.txt');
    assert.ok(proxy.log.some((record) => record.operation === 'ListObjectsV2'));

    await oneShot(service, skip, 'skip');
    assert.deepEqual(requestsUnder('skip', SENDING), ['missing.txt']);

    await oneShot(service, overwrite, 'overwrite');
    const sent = requestsUnder('overwrite', ['PutObject', 'CreateMultipartUpload']);
    assert.deepEqual(sent, [
      'changed.txt',
      'missing.txt',
      'resized.txt',
      'same.txt',
      'sub/same-multipart.bin',
    ]);
    await objectsMatch(overwrite);
    assert.equal(await service.stop(), 0);
  });

  it('an ETag that is no MD5 (as under SSE-KMS) gives way to the SHA-256 this service stored', async () => {
    const folder = path.join(work, 'kms');
    const files = new Map([
      ['a.txt', randomBytes(2000)],
      ['b/c.txt', randomBytes(3000)],
    ]);
    for (const [name, content] of files) {
      await mkdir(path.dirname(path.join(folder, name)), { recursive: true });
      await writeFile(path.join(folder, name), content);
    }
    const service = await startService({
      databaseFile: path.join(work, 'kms.db'),
      s3Endpoint: proxy.endpoint,
    });
    // A first upload puts the objects, each with its SHA-256 in the metadata; it is then cancelled.
    const first = await createUpload(service, {
      source_folder: folder,
      destination_bucket: bucket,
      destination_prefix: 'kms',
    });
    await waitForCompleted(service, first, 2);
    assert.equal((await api(service, 'DELETE', `/uploads/${first}`)).status, 200);

    // Created again, with the listing's ETags changed on their way, as S3 lists SSE-KMS objects.
    const listing = proxy.inject({
      method: 'GET',
      query: ['list-type'],
      bucket,
      fault: { type: 'wrong-etag' },
    });
    proxy.resetStats();
    const again = await createUpload(service, {
      source_folder: folder,
      destination_bucket: bucket,
      destination_prefix: 'kms',
    });
    await waitForCompleted(service, again, 2);
    listing.remove();
    const items = await fileItems(service, again);
    assert.deepEqual(items.map((file) => [file.relative_path, file.skipped]).sort(), [
      ['a.txt', 'already in S3'],
      ['b/c.txt', 'already in S3'],
    ]);
    assert.ok(listing.hits > 0, 'the listing went through the fault');
    assert.deepEqual(
      requestsUnder('kms', ['HeadObject']),
      ['a.txt', 'b/c.txt'],
      'one HEAD each, for the metadata',
    );
    assert.deepEqual(requestsUnder('kms', SENDING), []);
    assert.equal(await service.stop(), 0);
  });

  it('a file that appears after the listing: a large one is asked with a HEAD, a small one is sent', async () => {
    const folder = path.join(work, 'late');
    await mkdir(folder, { recursive: true });
    const big = randomBytes(6 * MiB + 5);
    // Put beforehand by another client, in its own parts.
    await putMultipart('late/big.bin', big);
    const service = await startService({
      databaseFile: path.join(work, 'late.db'),
      s3Endpoint: proxy.endpoint,
      env: { MULTIPART_THRESHOLD_BYTES: String(5 * MiB), PART_SIZE_BYTES: String(5 * MiB) },
    });
    const uploadId = await createUpload(service, {
      source_folder: folder,
      destination_bucket: bucket,
      destination_prefix: 'late',
    });
    await waitFor(
      async () =>
        (await api<{ listed_at: string | null }>(service, 'GET', `/uploads/${uploadId}`)).body.listed_at !==
        null,
      { timeoutMs: 10_000, message: 'the listing complete' },
    );
    proxy.resetStats();
    await writeFile(path.join(folder, 'big.bin'), big);
    await writeFile(path.join(folder, 'small.txt'), randomBytes(100));
    await waitForCompleted(service, uploadId, 2);
    const items = await fileItems(service, uploadId);
    assert.deepEqual(items.map((file) => [file.relative_path, file.skipped]).sort(), [
      ['big.bin', 'already in S3'],
      ['small.txt', null],
    ]);
    // A HEAD costs about what sending a small file costs: only the large one is asked.
    assert.deepEqual(requestsUnder('late', ['HeadObject']), ['big.bin']);
    assert.deepEqual(requestsUnder('late', SENDING), ['small.txt']);
    assert.equal(await service.stop(), 0);
  });

  it(`a folder of ${MANY_FILES} files already in S3 reaches idle without sending one`, async (t) => {
    const folder = path.join(work, 'many');
    const files: string[] = [];
    for (let i = 0; i < MANY_FILES; i++) files.push(`d${i % 10}/file-${i}.txt`);
    for (let i = 0; i < 10; i++) await mkdir(path.join(folder, `d${i}`), { recursive: true });
    await Promise.all(files.map((name) => writeFile(path.join(folder, name), `content of ${name}\n`)));
    const filledAt = Date.now();
    let next = 0;
    const fill = async () => {
      for (let name = files[next++]; name !== undefined; name = files[next++])
        await s3.send(
          new PutObjectCommand({ Bucket: bucket, Key: `many/${name}`, Body: `content of ${name}\n` }),
        );
    };
    await Promise.all(Array.from({ length: 32 }, fill));
    t.diagnostic(`${MANY_FILES} objects put by the SDK in ${((Date.now() - filledAt) / 1000).toFixed(1)} s`);

    const service = await startService({
      databaseFile: path.join(work, 'many.db'),
      s3Endpoint: proxy.endpoint,
    });
    proxy.resetStats();
    const startedAt = Date.now();
    const uploadId = await createUpload(service, {
      source_folder: folder,
      destination_bucket: bucket,
      destination_prefix: 'many',
    });
    await waitFor(
      async () => {
        const details = await api<{ files: { completed: number }; progress: { phase: string } }>(
          service,
          'GET',
          `/uploads/${uploadId}`,
        );
        return details.body.progress.phase === 'idle' && details.body.files.completed === MANY_FILES;
      },
      { timeoutMs: 120_000, intervalMs: 100, message: `${MANY_FILES} files completed, the upload idle` },
    );
    const seconds = (Date.now() - startedAt) / 1000;
    const requests: Record<string, number> = {};
    for (const record of proxy.log) requests[record.operation] = (requests[record.operation] ?? 0) + 1;
    t.diagnostic(`idle after ${seconds.toFixed(1)} s; S3 requests: ${JSON.stringify(requests)}`);
    assert.deepEqual(requestsUnder('many', SENDING), [], 'nothing sent');
    assert.equal(requests.HeadObject ?? 0, 0, 'no HEAD per file: the listing told');
    // The bucket check's listing of one key, then the prefix a page of 1,000 keys at a time.
    assert.equal(requests.ListObjectsV2, 1 + Math.ceil(MANY_FILES / 1000));
    const metrics = await (await fetch(`${service.baseUrl}/metrics`)).text();
    const skipped = new RegExp(
      `s3uploader_files_skipped_total\\{upload_id="${uploadId}",reason="already_in_s3"\\} (\\d+)`,
    ).exec(metrics);
    assert.equal(Number(skipped?.[1]), MANY_FILES);
    assert.equal(await service.stop(), 0);
  });
});
