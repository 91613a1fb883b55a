// PostgreSQL cut off while the service uploads, then back: nothing is lost, nothing stays stuck,
// and the work resumes by itself. The service runs as a real process on a real PostgreSQL, reached
// through a relay that the test cuts (every connection dropped, new ones refused) and opens again;
// S3 is the test server.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { waitFor } from '../support/poll.js';
import {
  assertPostgresReachable,
  dropSchema,
  freshSchemaName,
  startPostgresRelay,
} from '../support/postgres.js';
import { createTestBucket, deleteBucket, listKeys, testS3Client } from '../support/s3.js';
import { api, killAllServices, startService } from '../support/service-process.js';
import { createUpload, fileItems, uploadDetails, waitForCompleted } from '../support/upload-api.js';
import { makeTempDir, removeTempDir, writeRandomFile } from '../support/temp-tree.js';

const MiB = 1024 * 1024;
const SMALL_FILES = 300;
const FILES_DURING_OUTAGE = 20;
const BIG_FILE_BYTES = 24 * MiB;

let s3: S3Client;
let work: string;
const buckets: string[] = [];
const schemas: string[] = [];

before(async () => {
  await assertPostgresReachable();
  s3 = testS3Client();
  work = await makeTempDir('e2e-postgres-outage');
});

after(async () => {
  for (const bucket of buckets) await deleteBucket(s3, bucket);
  for (const schema of schemas) await dropSchema(schema);
  await removeTempDir(work);
  s3.destroy();
});

afterEach(async () => {
  assert.equal(await killAllServices(), 0, 'a test left a service process running');
});

describe('PostgreSQL unreachable for a while', () => {
  it('loses nothing, leaves nothing stuck, and resumes by itself once it is back', async () => {
    const relay = await startPostgresRelay();
    const schema = freshSchemaName('outage');
    schemas.push(schema);
    const bucket = await createTestBucket(s3, 'pg-outage');
    buckets.push(bucket);
    const folder = path.join(work, 'run');
    const sizes = new Map<string, number>();
    for (let i = 0; i < SMALL_FILES; i++) {
      const name = `lane${i % 10}/tile${i}.bin`;
      await writeRandomFile(path.join(folder, name), 2048 + i);
      sizes.set(name, 2048 + i);
    }
    await writeRandomFile(path.join(folder, 'big.bin'), BIG_FILE_BYTES);
    sizes.set('big.bin', BIG_FILE_BYTES);

    const service = await startService({
      databaseFile: path.join(work, 'unused.db'),
      env: {
        DATABASE_URL: `${relay.url}?schema=${schema}`,
        MULTIPART_THRESHOLD_BYTES: String(6 * MiB),
        PART_SIZE_BYTES: String(5 * MiB),
        // Slow enough that the big file's parts are in flight when the database goes away.
        MAX_UPLOAD_BYTES_PER_SECOND: String(8 * MiB),
      },
    });
    try {
      const uploadId = await createUpload(service, {
        source_folder: folder,
        destination_bucket: bucket,
        destination_prefix: 'runs/1',
      });
      await waitFor(async () => (await uploadDetails(service, uploadId)).files.completed >= 30, {
        timeoutMs: 30_000,
        message: '30 files completed before the cut',
      });

      await relay.cut();
      const health = await waitFor(
        async () => {
          const reply = await api<{ status: string; database: string }>(service, 'GET', '/');
          return reply.status === 503 ? reply.body : undefined;
        },
        { timeoutMs: 20_000, message: '/health saying the database is unreachable' },
      );
      assert.equal(health.status, 'degraded');
      const refused = await api<{ error: string; message: string }>(service, 'GET', `/uploads/${uploadId}`);
      assert.equal(refused.status, 503, 'a request that needs the database is a 503, not a 500');
      assert.equal(refused.body.error, 'database_unavailable');
      assert.doesNotMatch(refused.body.message, /postgres:\/\/[^@\s]*:[^*@\s]+@/, 'no password in it');
      // Written while the database is away: the watch sees them, and they must not be forgotten.
      for (let i = 0; i < FILES_DURING_OUTAGE; i++) {
        const name = `late/file${i}.txt`;
        await writeRandomFile(path.join(folder, name), 100 + i);
        sizes.set(name, 100 + i);
      }
      // Every failure has its log line, with the reason (and never the password).
      const refusals = await waitFor(
        () => {
          const lines = service.logs.filter((line) => /ECONNREFUSED/.test(JSON.stringify(line.err ?? '')));
          return lines.length > 0 ? lines : undefined;
        },
        { message: 'a log line saying the database refuses connections' },
      );
      assert.doesNotMatch(JSON.stringify(refusals), /:[^*@/\s]+@127\.0\.0\.1/, 'no password in the log');

      await relay.open();
      // The files whose outcome the database refused are failed once it is back, and due again at
      // once; the files written during the cut are found by the next rescan.
      const done = await waitForCompleted(service, uploadId, sizes.size, 60_000).catch(
        async (error: unknown) => {
          const failed = (await fileItems(service, uploadId)).filter((item) => item.status !== 'completed');
          throw new Error(`${String(error)}: ${JSON.stringify(failed.slice(0, 5))}`);
        },
      );
      assert.equal(done.files.failed, 0);
      assert.equal(done.files.in_progress, 0);

      const keys = await listKeys(s3, bucket, 'runs/1/');
      assert.deepEqual(keys.sort(), [...sizes.keys()].map((name) => `runs/1/${name}`).sort());
      for (const [name, size] of sizes) {
        const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `runs/1/${name}` }));
        assert.equal(head.ContentLength, size, name);
      }
      for (const item of await fileItems(service, uploadId)) assert.equal(item.status, 'completed');
      assert.equal(service.child.exitCode, null, 'the service kept running');
    } finally {
      await service.kill();
      await relay.cut(); // closes the relay
    }
  });
});
