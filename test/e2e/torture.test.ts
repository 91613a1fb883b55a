// The crash torture test: a mixed workload (hundreds of small files in nested folders, large
// multipart files, a file that grows the whole time, files added and changed during the run) while
// the service is killed with SIGKILL at random moments and restarted on the same database. In the
// end every file must be in S3 byte for byte as it is on disk, no task may be left pending or in
// progress, and no multipart upload may be left on the bucket.
//
//   npm test -- test/e2e/torture.test.ts     10 kills (the CI version)
//   npm run test:torture                     50 kills; TORTURE_KILLS and TORTURE_SEED set others
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { startGrowingWrite } from '../support/growing-writer.js';
import { seededRandom } from '../support/seeded-random.js';
import { waitFor } from '../support/poll.js';
import {
  createTestBucket,
  deleteBucket,
  getObjectBytes,
  listKeys,
  listMultipartUploads,
  testS3,
  testS3Client,
} from '../support/s3.js';
import { killAllServices, startService, type ServiceProcess } from '../support/service-process.js';
import { makeTempDir, removeTempDir, writeRandomFile } from '../support/temp-tree.js';
import { createUpload, uploadDetails } from '../support/upload-api.js';

const MiB = 1024 * 1024;
const KILLS = Number(process.env.TORTURE_KILLS ?? 10);
const SEED = Number(process.env.TORTURE_SEED ?? Math.floor(Math.random() * 2 ** 31));
const SMALL_FOLDERS = 25;
const SMALL_PER_FOLDER = 20;
const LARGE_SIZES = [64 * MiB, 96 * MiB, 128 * MiB];
const GROWING_BYTES = 48 * MiB;

function md5(data: Uint8Array): string {
  return createHash('md5').update(data).digest('hex');
}

describe('crash torture', () => {
  const s3 = testS3Client();
  const random = seededRandom(SEED);
  const between = (low: number, high: number) => low + Math.floor(random() * (high - low + 1));
  let work: string;
  let source: string;
  let bucket: string;
  let proxy: FaultProxy;
  /** What each file holds now, by path relative to the source folder. */
  const expected = new Map<string, { md5: string; size: number }>();

  before(async () => {
    work = await makeTempDir('torture');
    source = path.join(work, 'source');
    bucket = await createTestBucket(s3, 'torture');
    proxy = await startFaultProxy(testS3().endpoint);
  });

  after(async () => {
    await killAllServices();
    await proxy.close();
    await deleteBucket(s3, bucket);
    await removeTempDir(work);
    s3.destroy();
  });

  async function writeSmall(relativePath: string): Promise<void> {
    const size = random() < 0.05 ? 0 : between(1, 64 * 1024);
    const { md5: digest } = await writeRandomFile(path.join(source, relativePath), size);
    expected.set(relativePath, { md5: digest, size });
  }

  /** Files added and changed while the service runs, or while it is down. */
  async function mutate(round: number): Promise<void> {
    for (let i = 0; i < between(2, 5); i++) await writeSmall(`added/round-${round}/new-${i}.dat`);
    const smallPaths = [...expected.keys()].filter((p) => p.startsWith('small/'));
    for (let i = 0; i < between(1, 4); i++) {
      const changed = smallPaths[between(0, smallPaths.length - 1)];
      if (changed) await writeSmall(changed);
    }
  }

  function start(): Promise<ServiceProcess> {
    return startService({
      databaseFile: path.join(work, 'state.db'),
      s3Endpoint: proxy.endpoint,
      env: {
        SETTLE_SECONDS: '1',
        RESCAN_INTERVAL_SECONDS: '2',
        FAILED_REQUEUE_INTERVAL_SECONDS: '1',
        STREAM_PART_SIZE_BYTES: String(8 * MiB),
      },
      startTimeoutMs: 60_000,
    });
  }

  it(`ends with every file intact in S3 after ${KILLS} SIGKILLs at random moments`, async () => {
    const startedAt = Date.now();
    for (let folder = 0; folder < SMALL_FOLDERS; folder++) {
      for (let file = 0; file < SMALL_PER_FOLDER; file++) {
        await writeSmall(`small/d${folder % 5}/e${folder}/f${file}.dat`);
      }
    }
    for (const [index, size] of LARGE_SIZES.entries()) {
      const { md5: digest } = await writeRandomFile(path.join(source, `large/big-${index}.bin`), size);
      expected.set(`large/big-${index}.bin`, { md5: digest, size });
    }
    await writeFile(path.join(source, 'growing.log'), '');
    const growing = startGrowingWrite(path.join(source, 'growing.log'), {
      totalBytes: GROWING_BYTES,
      chunkBytes: MiB,
      intervalMs: 150,
    });

    const phases: string[] = [];
    let phaseStart = startedAt;
    const phase = (name: string) => {
      phases.push(`${name} ${((Date.now() - phaseStart) / 1000).toFixed(1)} s`);
      phaseStart = Date.now();
    };
    phase('files written');
    let service = await start();
    const uploadId = await createUpload(service, { source_folder: source, destination_bucket: bucket });
    const lifetimes: number[] = [];
    for (let kill = 1; kill <= KILLS; kill++) {
      // The random moment: anywhere from just after start-up to a few seconds into the work.
      const lifetime = between(200, 2500);
      lifetimes.push(lifetime);
      if (random() < 0.5) await mutate(kill);
      await sleep(lifetime);
      await service.kill();
      if (random() < 0.5) await mutate(kill + 1000); // changed while the service is down
      service = await start();
    }
    phase('kills');
    const grown = await growing.done;
    expected.set('growing.log', { md5: grown.md5, size: grown.written });

    const details = await waitFor(
      async () => {
        const current = await uploadDetails(service, uploadId);
        const { total, completed } = current.files;
        return total === expected.size && completed === total ? current : undefined;
      },
      { timeoutMs: 240_000, intervalMs: 250, message: `all ${expected.size} files completed` },
    );
    phase('until all completed');
    assert.deepEqual(
      [details.files.pending, details.files.in_progress, details.files.failed],
      [0, 0, 0],
      'no task left pending, in progress or failed',
    );

    assert.deepEqual(await listKeys(s3, bucket), [...expected.keys()].sort(), 'exactly the files, as keys');
    const mismatches: string[] = [];
    const toCheck = [...expected];
    const checkNext = async (): Promise<void> => {
      for (let next = toCheck.pop(); next; next = toCheck.pop()) {
        const [relativePath, file] = next;
        const object = await getObjectBytes(s3, bucket, relativePath);
        if (object.length !== file.size || md5(object) !== file.md5) {
          mismatches.push(`${relativePath}: S3 holds ${object.length} bytes, the file ${file.size}`);
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, checkNext));
    assert.deepEqual(mismatches, [], 'every object byte for byte as its file');
    assert.deepEqual(await listMultipartUploads(s3, bucket), [], 'no multipart upload left on the bucket');
    await service.stop();
    phase('checks');

    const dataBytes = [...expected.values()].reduce((sum, file) => sum + file.size, 0);
    const sent = proxy.stats.bodyBytesByOperation;
    const sentBytes = (sent.UploadPart ?? 0) + (sent.PutObject ?? 0);
    const seconds = (Date.now() - startedAt) / 1000;
    process.stdout.write(
      `# torture: seed ${SEED}, ${KILLS} kills (alive ${Math.min(...lifetimes)}–${Math.max(...lifetimes)} ms), ` +
        `${expected.size} files, ${(dataBytes / MiB).toFixed(1)} MiB of data, ` +
        `${(sentBytes / MiB).toFixed(1)} MiB sent (${(sentBytes / dataBytes).toFixed(2)}× the data), ` +
        `${proxy.log.filter((request) => request.operation === 'UploadPartCopy').length} parts copied on the server, ` +
        `${seconds.toFixed(1)} s (${phases.join(', ')})\n`,
    );
  });
});
