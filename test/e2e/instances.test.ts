// Several instances of the service, real processes, on one PostgreSQL schema and one source folder,
// uploading to S3 through a fault proxy that counts every request: the work is shared and nothing
// is sent twice; and when the instance holding a multipart upload is killed, another one resumes it
// once its lease has expired, sending again at most the parts that were in flight.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, afterEach, before, describe, it, type TestContext } from 'node:test';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { startFaultProxy, type FaultProxy, type RequestRecord } from '../support/fault-proxy.js';
import { waitFor } from '../support/poll.js';
import {
  POSTGRES_TEST_URL,
  assertPostgresReachable,
  dropSchema,
  freshSchemaName,
} from '../support/postgres.js';
import {
  createTestBucket,
  deleteBucket,
  getObjectBytes,
  listMultipartUploads,
  testS3,
  testS3Client,
} from '../support/s3.js';
import { api, killAllServices, startService, type ServiceProcess } from '../support/service-process.js';
import { createUpload, waitForCompleted, type FileItem } from '../support/upload-api.js';
import { makeTempDir, removeTempDir, writeRandomFile } from '../support/temp-tree.js';

const MiB = 1024 * 1024;
const HEARTBEAT_MS = 500;
const LEASE_MS = 2000;

let s3: S3Client;
let proxy: FaultProxy;
let work: string;
const schemas: string[] = [];

before(async () => {
  await assertPostgresReachable();
  s3 = testS3Client();
  proxy = await startFaultProxy(testS3().endpoint);
  work = await makeTempDir('e2e-instances');
});

after(async () => {
  await proxy.close();
  await removeTempDir(work);
  for (const schema of schemas) await dropSchema(schema);
  s3.destroy();
});

afterEach(async () => {
  proxy.clearFaults();
  proxy.resetStats();
  assert.equal(await killAllServices(), 0, 'a test left a service process running');
});

/** An instance on `schema`, S3 through the proxy; multipart from 5 MiB in 5 MiB parts. */
function startInstance(schema: string, env: Record<string, string> = {}): Promise<ServiceProcess> {
  return startService({
    databaseFile: path.join(work, 'unused.db'),
    s3Endpoint: proxy.endpoint,
    startTimeoutMs: 60_000,
    env: {
      DATABASE_URL: `${POSTGRES_TEST_URL}?schema=${schema}`,
      DATABASE_POOL_SIZE: '4',
      HEARTBEAT_SECONDS: String(HEARTBEAT_MS / 1000),
      LEASE_SECONDS: String(LEASE_MS / 1000),
      MULTIPART_THRESHOLD_BYTES: String(5 * MiB),
      PART_SIZE_BYTES: String(5 * MiB),
      ...env,
    },
  });
}

function freshSchema(): string {
  const schema = freshSchemaName('e2e_instances');
  schemas.push(schema);
  return schema;
}

/** The instance id a service said it was when ready. */
function instanceIdOf(service: ServiceProcess): string {
  const ready = service.logs.find((line) => line.msg === 'service ready');
  assert.ok(typeof ready?.instanceId === 'string', 'the ready line names the instance');
  return ready.instanceId;
}

interface InstanceView {
  instance_id: string;
  work: { files: number; upload_ids: string[] };
}

/** The object key of a proxied request (path-style: /bucket/key). */
function keyOf(record: RequestRecord, bucket: string): string {
  return decodeURIComponent(record.path.slice(bucket.length + 2));
}

function countBy<T>(items: readonly T[], keyOfItem: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(keyOfItem(item), (counts.get(keyOfItem(item)) ?? 0) + 1);
  return counts;
}

/** Every object of the bucket, with its size and ETag (quotes removed). */
async function objectsOf(bucket: string): Promise<Map<string, { size: number; etag: string }>> {
  const objects = new Map<string, { size: number; etag: string }>();
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const object of page.Contents ?? []) {
      objects.set(object.Key!, { size: object.Size!, etag: object.ETag!.replaceAll('"', '') });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return objects;
}

const md5 = (data: Buffer): string => createHash('md5').update(data).digest('hex');

describe('three instances on one PostgreSQL schema', () => {
  it('share the queue: every object once and intact, the work done by more than one', async (t: TestContext) => {
    const schema = freshSchema();
    const bucket = await createTestBucket(s3, 'instances');
    const source = path.join(work, 'shared');
    const small = new Map<string, { bytes: number; md5: string }>();
    for (let i = 0; i < 1000; i++) {
      const relativePath = `d${i % 20}/f${String(i).padStart(4, '0')}.bin`;
      small.set(relativePath, await writeRandomFile(path.join(source, relativePath), 512 + (i % 7) * 300));
    }
    const large = new Map<string, { bytes: number; md5: string }>();
    for (let i = 0; i < 3; i++) {
      const relativePath = `large/l${i}.bin`;
      large.set(relativePath, await writeRandomFile(path.join(source, relativePath), 12 * MiB)); // 3 parts
    }

    const instances = await Promise.all(
      [0, 1, 2].map(() => startInstance(schema, { MAX_CONCURRENT_FILES: '16' })),
    );
    const ids = instances.map(instanceIdOf);
    assert.equal(new Set(ids).size, 3);
    const listed = await api<InstanceView[]>(instances[2]!, 'GET', '/instances');
    assert.deepEqual(listed.body.map((instance) => instance.instance_id).sort(), [...ids].sort());

    // Created through one instance, which takes its watch lease (see docs/deployment.md).
    const uploadId = await createUpload(instances[0]!, { source_folder: source, destination_bucket: bucket });
    const seenWorking = new Set<string>();
    const total = small.size + large.size;
    await waitFor(
      async () => {
        const view = await api<InstanceView[]>(instances[1]!, 'GET', '/instances');
        for (const instance of view.body) if (instance.work.files > 0) seenWorking.add(instance.instance_id);
        const details = await api<{ files: { completed: number } }>(
          instances[0]!,
          'GET',
          `/uploads/${uploadId}`,
        );
        return details.body.files.completed === total;
      },
      { timeoutMs: 90_000, intervalMs: 200, message: `${total} files completed` },
    );
    await waitForCompleted(instances[0]!, uploadId, total);

    // Who uploaded what: each file's line at debug, in its instance's log.
    const uploadedBy = instances.map(
      (instance) =>
        instance.logs.filter((line) => line.msg === 'file uploaded' && line.uploadId === uploadId).length,
    );
    t.diagnostic(
      `files uploaded by each instance: ${uploadedBy.join(', ')}; seen working in GET /instances: ${seenWorking.size}`,
    );
    assert.equal(
      uploadedBy.reduce((sum, count) => sum + count, 0),
      total,
      'each file uploaded by exactly one instance',
    );
    assert.ok(uploadedBy.filter((count) => count > 0).length >= 2, `work spread: ${uploadedBy.join(', ')}`);
    assert.ok(seenWorking.size >= 2, `instances seen working: ${seenWorking.size}`);
    // One instance watches the folder (the holder of its watch lease, most often the one it was
    // created on): the others never scan it.
    const scans = instances.map(
      (instance) =>
        instance.logs.filter((line) => line.msg === 'scan finished' && line.uploadId === uploadId).length,
    );
    assert.equal(scans.filter((count) => count > 0).length, 1, `scans by each instance: ${scans.join(', ')}`);

    // No key was sent more than once: one PUT per small file, one multipart upload per large one
    // with each part once.
    const ofBucket = proxy.log.filter((record) => record.path.startsWith(`/${bucket}/`));
    const puts = countBy(
      ofBucket.filter((record) => record.operation === 'PutObject'),
      (record) => keyOf(record, bucket),
    );
    assert.deepEqual([...puts.keys()].sort(), [...small.keys()].sort());
    assert.deepEqual(
      [...puts].filter(([, count]) => count !== 1),
      [],
      'keys PUT more than once',
    );
    for (const operation of ['CreateMultipartUpload', 'CompleteMultipartUpload'] as const) {
      const byKey = countBy(
        ofBucket.filter((record) => record.operation === operation),
        (record) => keyOf(record, bucket),
      );
      assert.deepEqual(
        [...byKey].sort(),
        [...large.keys()].sort().map((key) => [key, 1]),
        operation,
      );
    }
    const parts = countBy(
      ofBucket.filter((record) => record.operation === 'UploadPart'),
      (record) => `${keyOf(record, bucket)}#${record.query.get('partNumber')}`,
    );
    assert.equal(parts.size, 9);
    assert.deepEqual(
      [...parts].filter(([, count]) => count !== 1),
      [],
      'parts sent more than once',
    );

    // Every object intact: size and ETag (the MD5 of a small file; the large ones read back).
    const objects = await objectsOf(bucket);
    assert.equal(objects.size, total);
    for (const [key, file] of small)
      assert.deepEqual(objects.get(key), { size: file.bytes, etag: file.md5 }, key);
    for (const [key, file] of large) {
      assert.equal(objects.get(key)?.size, file.bytes);
      assert.equal(md5(await getObjectBytes(s3, bucket, key)), file.md5, key);
    }
    assert.deepEqual(await listMultipartUploads(s3, bucket), []);

    // A clean stop removes an instance's row at once.
    await instances[0]!.stop();
    await instances[1]!.stop();
    const left = await api<InstanceView[]>(instances[2]!, 'GET', '/instances');
    assert.deepEqual(
      left.body.map((instance) => instance.instance_id),
      [ids[2]],
    );
    await instances[2]!.stop();
    await deleteBucket(s3, bucket);
  });

  it('finishes the multipart upload of a killed instance once its lease expires, sending again only the parts in flight', async (t: TestContext) => {
    const schema = freshSchema();
    const bucket = await createTestBucket(s3, 'takeover');
    const source = path.join(work, 'takeover');
    const file = path.join(source, 'big.bin');
    await writeRandomFile(file, 40 * MiB); // 8 parts of 5 MiB
    const partCount = 8;
    // Slow parts, so that the kill lands in the middle.
    proxy.inject({ method: 'PUT', query: ['partNumber'], fault: { type: 'delay', ms: 400 } });
    const instances = await Promise.all(
      [0, 1].map(() => startInstance(schema, { MAX_CONCURRENT_PARTS: '2' })),
    );
    const uploadId = await createUpload(instances[0]!, { source_folder: source, destination_bucket: bucket });
    const isPart = (record: RequestRecord) => record.operation === 'UploadPart';
    await waitFor(() => proxy.log.filter((record) => isPart(record) && record.outcome === 200).length >= 3, {
      timeoutMs: 30_000,
      message: 'three parts stored',
    });
    const files = await api<{ items: (FileItem & { instance: string | null })[] }>(
      instances[0]!,
      'GET',
      `/uploads/${uploadId}/files`,
    );
    const holderId = files.body.items[0]?.instance;
    assert.ok(typeof holderId === 'string', 'the file in progress names its instance');
    const holder = instances.find((instance) => instanceIdOf(instance) === holderId);
    const survivor = instances.find((instance) => instanceIdOf(instance) !== holderId);
    assert.ok(holder && survivor);

    await holder.kill();
    const killedAt = Date.now();
    const cut = proxy.log.length;
    const survivorId = instanceIdOf(survivor);
    await waitFor(
      async () => {
        const page = await api<{ items: { instance: string | null; status: string }[] }>(
          survivor,
          'GET',
          `/uploads/${uploadId}/files`,
        );
        const [item] = page.body.items;
        return item?.instance === survivorId || item?.status === 'completed';
      },
      { timeoutMs: 20_000, intervalMs: 50, message: 'the survivor took the file over' },
    );
    const takenOverMs = Date.now() - killedAt;
    await waitForCompleted(survivor, uploadId, 1);
    t.diagnostic(
      `taken over ${takenOverMs} ms after the kill (lease ${LEASE_MS} ms, heartbeat ${HEARTBEAT_MS} ms)`,
    );
    // The lease runs from the holder's last beat, and the survivor's reaper looks every heartbeat:
    // about a lease; the rest is slack for a loaded machine.
    assert.ok(takenOverMs <= LEASE_MS + 2 * HEARTBEAT_MS + 3000, `taken over after ${takenOverMs} ms`);

    const before = proxy.log.slice(0, cut).filter(isPart);
    const afterKill = proxy.log.slice(cut).filter(isPart);
    // In flight at the kill: sent, and not answered before it.
    const inFlight = before.filter(
      (record) => record.answeredAt === undefined || record.answeredAt >= killedAt,
    );
    const sentBefore = new Set(before.map((record) => record.query.get('partNumber')));
    const resent = afterKill.filter((record) => sentBefore.has(record.query.get('partNumber')));
    t.diagnostic(
      `parts: ${before.length} sent before the kill (${inFlight.length} in flight), ${afterKill.length} after, ${resent.length} of them again`,
    );
    assert.ok(inFlight.length <= 2, 'at most MAX_CONCURRENT_PARTS in flight');
    assert.ok(
      resent.length <= inFlight.length,
      `${resent.length} parts sent again, ${inFlight.length} were in flight`,
    );
    const storedBefore = new Set(
      before.filter((record) => record.outcome === 200).map((r) => r.query.get('partNumber')),
    );
    assert.ok(
      afterKill.length <= partCount - storedBefore.size,
      `${afterKill.length} parts sent after the kill`,
    );
    assert.equal(
      proxy.log.slice(cut).filter((record) => record.operation === 'CreateMultipartUpload').length,
      0,
      'the multipart upload was resumed, not started again',
    );
    assert.equal(md5(await getObjectBytes(s3, bucket, 'big.bin')), md5(await readFile(file)));
    assert.deepEqual(await listMultipartUploads(s3, bucket), []);
    // The killed instance's row is gone too: its heartbeat is older than its lease.
    const live = await api<InstanceView[]>(survivor, 'GET', '/instances');
    assert.deepEqual(
      live.body.map((instance) => instance.instance_id),
      [survivorId],
    );
    await survivor.stop();
    await deleteBucket(s3, bucket);
  });
  it('an instance paused past its lease loses its task to another, and records nothing of it when it wakes', async (t: TestContext) => {
    const schema = freshSchema();
    const bucket = await createTestBucket(s3, 'paused');
    const source = path.join(work, 'paused');
    const file = path.join(source, 'big.bin');
    await writeRandomFile(file, 40 * MiB);
    proxy.inject({ method: 'PUT', query: ['partNumber'], fault: { type: 'delay', ms: 400 } });
    const instances = await Promise.all(
      [0, 1].map(() => startInstance(schema, { MAX_CONCURRENT_PARTS: '2' })),
    );
    const uploadId = await createUpload(instances[0]!, { source_folder: source, destination_bucket: bucket });
    const fileNow = async (service: ServiceProcess) =>
      (
        await api<{
          items: { instance: string | null; status: string; attempts: number; last_error: string | null }[];
        }>(service, 'GET', `/uploads/${uploadId}/files`)
      ).body.items[0];
    const holderId = await waitFor(async () => (await fileNow(instances[0]!))?.instance, {
      message: 'the file claimed',
    });
    await waitFor(
      () =>
        proxy.log.filter((record) => record.operation === 'UploadPart' && record.outcome === 200).length >= 2,
      {
        timeoutMs: 30_000,
        message: 'two parts stored',
      },
    );
    const holder = instances.find((instance) => instanceIdOf(instance) === holderId)!;
    const survivor = instances.find((instance) => instance !== holder)!;
    const survivorId = instanceIdOf(survivor);

    holder.child.kill('SIGSTOP');
    try {
      await waitFor(async () => (await fileNow(survivor))?.instance === survivorId, {
        timeoutMs: 20_000,
        intervalMs: 50,
        message: 'the survivor took the file over',
      });
    } finally {
      holder.child.kill('SIGCONT');
    }
    await waitForCompleted(survivor, uploadId, 1);
    // Awake, it finds its row gone (registers again) and the task held by another: whatever it
    // still had in flight is refused, and it stops.
    await waitFor(() => holder.logs.some((line) => /registered again/.test(String(line.msg))), {
      message: 'the paused instance registered again',
    });
    const recordedByHolder = holder.logs.filter(
      (line) => line.msg === 'file uploaded' && line.recorded === true,
    );
    assert.deepEqual(recordedByHolder, [], 'the paused instance recorded no completion');
    const stopped = holder.logs.filter(
      (line) => /^lease lost/.test(String(line.msg)) || /held by instance/.test(JSON.stringify(line)),
    );
    t.diagnostic(`the paused instance, awake: ${stopped.map((line) => String(line.msg)).join(' | ')}`);
    const done = await fileNow(survivor);
    assert.deepEqual([done?.status, done?.attempts, done?.last_error], ['completed', 2, null]);
    assert.equal(md5(await getObjectBytes(s3, bucket, 'big.bin')), md5(await readFile(file)));
    await waitFor(async () => (await listMultipartUploads(s3, bucket)).length === 0, {
      message: 'no multipart upload left',
    });
    const live = await api<InstanceView[]>(survivor, 'GET', '/instances');
    assert.deepEqual(live.body.map((instance) => instance.instance_id).sort(), [holderId, survivorId].sort());
    await Promise.all(instances.map((instance) => instance.stop()));
    await deleteBucket(s3, bucket);
  });
});
