// The service end to end, as a user runs it: a child process, its own SQLite file, a real S3.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appendFile, mkdir, readFile, rename, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { waitFor } from '../support/poll.js';
import { createTestBucket, deleteBucket, getObjectBytes, listKeys, testS3Client } from '../support/s3.js';
import { api, startService, type ServiceProcess } from '../support/service-process.js';
import { waitForCompleted } from '../support/upload-api.js';
import { makeTempDir, removeTempDir, writeRandomFile } from '../support/temp-tree.js';

const md5 = (data: Buffer): string => createHash('md5').update(data).digest('hex');

let s3: S3Client;
let work: string;
let service: ServiceProcess;

before(async () => {
  s3 = testS3Client();
  work = await makeTempDir('e2e-flow');
  service = await startService({ databaseFile: path.join(work, 'db', 'uploads.db') });
});

after(async () => {
  await service.stop();
  await removeTempDir(work);
  s3.destroy();
});

afterEach(async () => {
  // Only the shared service may outlive a test.
  assert.ok(service.child.exitCode === null, 'the service process died during the test');
});

async function waitForObject(
  bucket: string,
  key: string,
  expected: Buffer,
  timeoutMs = 30_000,
): Promise<void> {
  await waitFor(
    async () => {
      const keys = await listKeys(s3, bucket);
      if (!keys.includes(key)) return false;
      const body = await getObjectBytes(s3, bucket, key);
      return md5(body) === md5(expected);
    },
    { timeoutMs, intervalMs: 100, message: `s3://${bucket}/${key} holds the expected bytes` },
  );
}

describe('a nested tree', () => {
  it('uploads every matching file under its key, byte for byte, and no other', async () => {
    const bucket = await createTestBucket(s3, 'tree');
    const source = path.join(work, 'tree');
    const expected = new Map<string, Buffer>();
    for (const relative of ['a.txt', 'sub/b.txt', 'sub/deep/c.txt', '.hidden.txt', 'sub/deep/skip.bin']) {
      const data = Buffer.from(`content of ${relative} ${Math.random()}\n`.repeat(50));
      await mkdir(path.dirname(path.join(source, relative)), { recursive: true });
      await writeFile(path.join(source, relative), data);
      if (relative.endsWith('.txt')) expected.set(`pre/${relative}`, data);
    }
    const created = await api<{ upload_id: string; status: string }>(service, 'POST', '/uploads', {
      source_folder: source,
      destination_bucket: bucket,
      pattern: '*.txt',
      destination_prefix: 'pre',
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const done = await waitForCompleted(service, created.body.upload_id, expected.size);
    assert.equal(done.status, 'active');
    assert.equal(done.files.total, expected.size);
    assert.equal(done.bytes.uploaded, done.bytes.total);

    assert.deepEqual(await listKeys(s3, bucket), [...expected.keys()].sort());
    for (const [key, data] of expected)
      assert.equal(md5(await getObjectBytes(s3, bucket, key)), md5(data), key);

    const files = await api<{ items: { relative_path: string; object_key: string; status: string }[] }>(
      service,
      'GET',
      `/uploads/${created.body.upload_id}/files?limit=2`,
    );
    assert.equal(files.status, 200);
    assert.equal(files.body.items.length, 2);

    await api(service, 'DELETE', `/uploads/${created.body.upload_id}`);
    await deleteBucket(s3, bucket);
  });
});

describe('watching', () => {
  it('uploads new and changed files, and only the final content of a file written slowly', async () => {
    const bucket = await createTestBucket(s3, 'watch');
    const source = path.join(work, 'watch');
    await mkdir(source, { recursive: true });
    const created = await api<{ upload_id: string }>(service, 'POST', '/uploads', {
      source_folder: source,
      destination_bucket: bucket,
    });
    assert.equal(created.status, 201);
    const uploadId = created.body.upload_id;

    const first = Buffer.from('first version\n');
    await writeFile(path.join(source, 'new.txt'), first);
    await waitForObject(bucket, 'new.txt', first);

    const second = Buffer.from('second, longer version\n');
    await writeFile(path.join(source, 'new.txt'), second);
    await waitForObject(bucket, 'new.txt', second);

    // Written in pieces, each well within SETTLE_SECONDS (0.3 s) of the last: never settled until the end.
    const slow = path.join(source, 'slow.log');
    const pieces: Buffer[] = [];
    for (let i = 0; i < 8; i++) {
      const piece = Buffer.from(`line ${i} ${'x'.repeat(1000)}\n`);
      pieces.push(piece);
      await appendFile(slow, piece);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const whole = Buffer.concat(pieces);
    await waitForObject(bucket, 'slow.log', whole);
    const slowUploads = service.logs.filter(
      (entry) => entry.msg === 'file uploaded' && entry.path === 'slow.log',
    );
    assert.equal(slowUploads.length, 1, 'the slowly written file was uploaded once, when complete');
    assert.equal(slowUploads[0]?.size, whole.length);
    const final = await waitForCompleted(service, uploadId, 2);
    assert.equal(final.files.failed, 0);

    // Written elsewhere and renamed in: appears whole.
    const staged = path.join(work, 'staged.bin');
    const renamed = Buffer.from('renamed into the folder\n');
    await writeFile(staged, renamed);
    await rename(staged, path.join(source, 'renamed.bin'));
    await waitForObject(bucket, 'renamed.bin', renamed);

    await api(service, 'DELETE', `/uploads/${uploadId}`);
    await deleteBucket(s3, bucket);
  });
});

describe('a large file', () => {
  it('goes up, once settled, in parts whose multipart ETag and content match', async () => {
    const bucket = await createTestBucket(s3, 'multipart');
    const source = path.join(work, 'multipart');
    const file = path.join(source, 'big.bin');
    await writeRandomFile(file, 17 * 1024 * 1024);
    // Settled long ago: uploaded in parts of PART_SIZE_BYTES, not streamed as a growing file.
    const longAgo = new Date(Date.now() - 60_000);
    await utimes(file, longAgo, longAgo);
    const created = await api<{ upload_id: string }>(service, 'POST', '/uploads', {
      source_folder: source,
      destination_bucket: bucket,
    });
    assert.equal(created.status, 201);
    await waitForCompleted(service, created.body.upload_id, 1, 60_000);
    const files = await api<{ items: { etag: string; validation: string; bytes_uploaded: number }[] }>(
      service,
      'GET',
      `/uploads/${created.body.upload_id}/files`,
    );
    const [task] = files.body.items;
    assert.ok(task);
    // 17 MiB in 8 MiB parts (the default part size) is 3 parts.
    assert.match(task.etag, /^[0-9a-f]{32}-3$/);
    assert.equal(task.validation, 'etag');
    assert.equal(md5(await getObjectBytes(s3, bucket, 'big.bin')), md5(await readFile(file)));
    await api(service, 'DELETE', `/uploads/${created.body.upload_id}`);
    await deleteBucket(s3, bucket);
  });
});

describe('bad requests over HTTP', () => {
  it('get a 4xx with a JSON error and message, never a 5xx', async () => {
    const folder = path.join(work, 'bad-inputs');
    await mkdir(folder, { recursive: true });
    await writeFile(path.join(folder, 'a-file.txt'), 'x');
    const cases: [string, string, unknown, number, string][] = [
      [
        'POST',
        '/uploads',
        { source_folder: 'relative/path', destination_bucket: 'b-1' },
        400,
        'invalid_source_folder',
      ],
      [
        'POST',
        '/uploads',
        { source_folder: path.join(folder, 'nope'), destination_bucket: 'b-1' },
        400,
        'invalid_source_folder',
      ],
      [
        'POST',
        '/uploads',
        { source_folder: path.join(folder, 'a-file.txt'), destination_bucket: 'b-1' },
        400,
        'invalid_source_folder',
      ],
      [
        'POST',
        '/uploads',
        { source_folder: folder, destination_bucket: 'Not_A_Bucket' },
        400,
        'invalid_bucket_name',
      ],
      [
        'POST',
        '/uploads',
        { source_folder: folder, destination_bucket: 'b-1', pattern: '{a,b' },
        400,
        'invalid_pattern',
      ],
      [
        'POST',
        '/uploads',
        { source_folder: folder, destination_bucket: 'b-1', extra: true },
        400,
        'validation_error',
      ],
      ['POST', '/uploads', { source_folder: 42, destination_bucket: 'b-1' }, 400, 'validation_error'],
      ['GET', '/uploads/no-such-upload', undefined, 404, 'upload_not_found'],
      ['GET', '/uploads/no-such-upload/files', undefined, 404, 'upload_not_found'],
      ['POST', '/uploads/no-such-upload/retry', undefined, 404, 'upload_not_found'],
      ['DELETE', '/uploads/no-such-upload', undefined, 404, 'upload_not_found'],
      ['GET', '/uploads?status=finished', undefined, 400, 'validation_error'],
    ];
    for (const [method, route, body, status, code] of cases) {
      const response = await api<{ error: string; message: string }>(service, method, route, body);
      assert.equal(response.status, status, `${method} ${route} ${JSON.stringify(body)}`);
      assert.equal(response.body.error, code);
      assert.ok(response.body.message.length > 10);
    }
    const malformed = await fetch(`${service.baseUrl}/uploads`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"source_folder": ',
    });
    assert.equal(malformed.status, 400);
    assert.equal(((await malformed.json()) as { error: string }).error, 'invalid_json');
  });
});
