// Object properties on the objects a real service writes to the test S3 server: the Content-Type
// of each file's extension and the user metadata are stored by Swift and read back with
// HeadObject. Swift's s3api refuses the rest (501 for server-side encryption and tagging, 400
// InvalidStorageClass for a class other than STANDARD), so those are checked on the requests at
// the fault proxy, which removes them before forwarding (signing the request again): it stands
// in for an S3 that accepts them (AWS). Every write is checked: PutObject, and the
// CreateMultipartUpload of a multipart file and of its append (a copied prefix and new parts).
import assert from 'node:assert/strict';
import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { startFaultProxy, type FaultProxy, type RequestRecord } from '../support/fault-proxy.js';
import { waitFor } from '../support/poll.js';
import { createTestBucket, deleteBucket, testS3, testS3Client } from '../support/s3.js';
import { api, killAllServices, startService } from '../support/service-process.js';
import { createUpload, fileItems, waitForCompleted } from '../support/upload-api.js';
import { makeTempDir, removeTempDir, writeRandomFile } from '../support/temp-tree.js';

const MiB = 1024 * 1024;

/** What Swift 2.30's s3api refuses (measured; see docs/object-properties.md). */
const SWIFT_REFUSES = new Set([
  'x-amz-server-side-encryption',
  'x-amz-server-side-encryption-aws-kms-key-id',
  'x-amz-tagging',
]);

let s3: S3Client;
let work: string;
let proxy: FaultProxy;
const buckets: string[] = [];

before(async () => {
  s3 = testS3Client();
  work = await makeTempDir('e2e-object-properties');
  proxy = await startFaultProxy(testS3().endpoint, {
    stripHeaders: {
      secretAccessKey: testS3().secretAccessKey,
      strips: (name, value) =>
        SWIFT_REFUSES.has(name) || (name === 'x-amz-storage-class' && value !== 'STANDARD'),
    },
  });
});

after(async () => {
  await proxy.close();
  for (const bucket of buckets) await deleteBucket(s3, bucket);
  await removeTempDir(work);
  s3.destroy();
});

afterEach(async () => {
  assert.equal(await killAllServices(), 0, 'a test left a service process running');
});

/** The requests that created an object at `key` (PutObject, CreateMultipartUpload), in order. */
function writesOf(bucket: string, key: string): RequestRecord[] {
  const keyPath = `/${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
  return proxy.log.filter(
    (request) =>
      request.path === keyPath &&
      (request.operation === 'PutObject' || request.operation === 'CreateMultipartUpload') &&
      request.outcome === 200,
  );
}

async function head(bucket: string, key: string) {
  const object = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  return { contentType: object.ContentType, metadata: object.Metadata };
}

describe('object properties', () => {
  it('are on every write of an upload: given ones, or the settings defaults when left out', async () => {
    const bucket = await createTestBucket(s3, 'props');
    buckets.push(bucket);
    const source = path.join(work, 'run');
    const contentTypes: Record<string, string> = {
      'reads/sample_R1.fastq.gz': 'application/gzip',
      'notes.txt': 'text/plain',
      'data.unknownext': 'application/octet-stream',
      'big.bin': 'application/octet-stream',
    };
    const sha256Of = new Map<string, string>();
    for (const name of Object.keys(contentTypes)) {
      const written = await writeRandomFile(path.join(source, name), name === 'big.bin' ? 6 * MiB : 1000);
      sha256Of.set(name, written.sha256);
    }
    const service = await startService({
      databaseFile: path.join(work, 'props.db'),
      s3Endpoint: proxy.endpoint,
      env: {
        // big.bin goes up in two parts.
        MULTIPART_THRESHOLD_BYTES: String(5 * MiB),
        PART_SIZE_BYTES: String(5 * MiB),
        DEFAULT_STORAGE_CLASS: 'STANDARD',
        DEFAULT_SSE: 'AES256',
        DEFAULT_OBJECT_METADATA: '{"origin":"sequencer-7"}',
        DEFAULT_OBJECT_TAGS: '{"source":"default"}',
      },
    });

    const given = {
      storage_class: 'GLACIER_IR',
      sse: 'aws:kms',
      sse_kms_key_id: 'alias/lab-archive',
      metadata: { project: 'genomics', Run: '42' },
      tags: { lab: 'sequencing', 'run id': '42/a' },
    };
    const explicit = await createUpload(service, {
      source_folder: source,
      destination_bucket: bucket,
      destination_prefix: 'given',
      object_properties: given,
    });
    const defaulted = await createUpload(service, {
      source_folder: source,
      destination_bucket: bucket,
      destination_prefix: 'defaults',
    });
    await waitForCompleted(service, explicit, 4);
    await waitForCompleted(service, defaulted, 4);

    const shown = await api<{ object_properties: unknown }>(service, 'GET', `/uploads/${explicit}`);
    assert.deepEqual(shown.body.object_properties, {
      ...given,
      metadata: { project: 'genomics', run: '42' },
    });
    const shownDefaults = await api<{ object_properties: unknown }>(service, 'GET', `/uploads/${defaulted}`);
    assert.deepEqual(shownDefaults.body.object_properties, {
      storage_class: 'STANDARD',
      sse: 'AES256',
      sse_kms_key_id: null,
      metadata: { origin: 'sequencer-7' },
      tags: { source: 'default' },
    });

    for (const [name, contentType] of Object.entries(contentTypes)) {
      // Stored by Swift: the Content-Type and the metadata, with the content's SHA-256 beside the
      // upload's own on an object put in one request (see docs/sync.md).
      const sha256 = name === 'big.bin' ? {} : { sha256: sha256Of.get(name) };
      assert.deepEqual(await head(bucket, `given/${name}`), {
        contentType,
        metadata: { project: 'genomics', run: '42', ...sha256 },
      });
      assert.deepEqual(await head(bucket, `defaults/${name}`), {
        contentType,
        metadata: { origin: 'sequencer-7', ...sha256 },
      });
      // On the requests: the storage class, the encryption and the tags.
      const [write, ...more] = writesOf(bucket, `given/${name}`);
      assert.ok(write, `given/${name} was written`);
      assert.equal(more.length, 0, `given/${name} was written once`);
      assert.equal(write.operation, name === 'big.bin' ? 'CreateMultipartUpload' : 'PutObject');
      assert.equal(write.headers['content-type'], contentType);
      assert.equal(write.headers['x-amz-storage-class'], 'GLACIER_IR');
      assert.equal(write.headers['x-amz-server-side-encryption'], 'aws:kms');
      assert.equal(write.headers['x-amz-server-side-encryption-aws-kms-key-id'], 'alias/lab-archive');
      assert.equal(write.headers['x-amz-tagging'], 'lab=sequencing&run%20id=42%2Fa');
      assert.deepEqual([...write.strippedHeaders].sort(), [
        'x-amz-server-side-encryption',
        'x-amz-server-side-encryption-aws-kms-key-id',
        'x-amz-storage-class',
        'x-amz-tagging',
      ]);
      const [defaultWrite] = writesOf(bucket, `defaults/${name}`);
      assert.ok(defaultWrite, `defaults/${name} was written`);
      assert.equal(defaultWrite.headers['x-amz-storage-class'], 'STANDARD', 'Swift takes STANDARD as it is');
      assert.equal(defaultWrite.headers['x-amz-server-side-encryption'], 'AES256');
      assert.equal(defaultWrite.headers['x-amz-server-side-encryption-aws-kms-key-id'], undefined);
      assert.equal(defaultWrite.headers['x-amz-tagging'], 'source=default');
    }

    // An append: the old bytes copied into a new multipart upload, created with the properties.
    const appendedAt = Date.now();
    await appendFile(path.join(source, 'big.bin'), randomBytes(MiB));
    await waitFor(
      async () => {
        const big = (await fileItems(service, explicit)).find((file) => file.relative_path === 'big.bin');
        return big?.status === 'completed' && big.bytes_uploaded === 7 * MiB ? big : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100, message: 'the append of big.bin completed' },
    );
    const afterAppend = writesOf(bucket, 'given/big.bin').filter((write) => write.receivedAt >= appendedAt);
    assert.equal(afterAppend.length, 1, 'one new multipart upload for the append');
    assert.equal(afterAppend[0]?.headers['x-amz-storage-class'], 'GLACIER_IR');
    assert.equal(afterAppend[0]?.headers['x-amz-server-side-encryption'], 'aws:kms');
    assert.equal(afterAppend[0]?.headers['x-amz-tagging'], 'lab=sequencing&run%20id=42%2Fa');
    assert.ok(
      proxy.log.some(
        (request) =>
          request.operation === 'UploadPartCopy' &&
          request.path === `/${bucket}/given/big.bin` &&
          request.receivedAt >= appendedAt,
      ),
      'the old bytes were copied',
    );
    assert.deepEqual(await head(bucket, 'given/big.bin'), {
      contentType: 'application/octet-stream',
      metadata: { project: 'genomics', run: '42' },
    });
    assert.equal(await service.stop(), 0);
  });
});
