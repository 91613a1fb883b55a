// Watch leases with three instances, real processes, on one PostgreSQL schema: an upload is
// scanned and watched by exactly one instance; when that instance is killed, a file written to the
// folder afterwards is found and uploaded by another once the watch lease has expired; a clean stop
// hands the upload over at the others' next heartbeat. And the wake-ups between instances: a file
// recorded by one is claimed by another at once, with a queue poll of a minute; a cancel answered
// by one stops the files another has in flight.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, afterEach, before, describe, it, type TestContext } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { waitFor } from '../support/poll.js';
import {
  POSTGRES_TEST_URL,
  assertPostgresReachable,
  dropSchema,
  freshSchemaName,
} from '../support/postgres.js';
import { createTestBucket, deleteBucket, testS3, testS3Client } from '../support/s3.js';
import { api, killAllServices, startService, type ServiceProcess } from '../support/service-process.js';
import { createUpload, fileItems, waitForCompleted, type FileItem } from '../support/upload-api.js';
import { makeTempDir, removeTempDir, writeRandomFile } from '../support/temp-tree.js';

const HEARTBEAT_MS = 500;
const LEASE_MS = 2000;
const SETTLE_MS = 300;

let s3: S3Client;
let work: string;
const schemas: string[] = [];

before(async () => {
  await assertPostgresReachable();
  s3 = testS3Client();
  work = await makeTempDir('e2e-watch-lease');
});

after(async () => {
  await removeTempDir(work);
  for (const schema of schemas) await dropSchema(schema);
  s3.destroy();
});

afterEach(async () => {
  assert.equal(await killAllServices(), 0, 'a test left a service process running');
});

function startInstance(schema: string, env: Record<string, string> = {}): Promise<ServiceProcess> {
  return startService({
    databaseFile: path.join(work, 'unused.db'),
    s3Endpoint: testS3().endpoint,
    startTimeoutMs: 60_000,
    env: {
      DATABASE_URL: `${POSTGRES_TEST_URL}?schema=${schema}`,
      DATABASE_POOL_SIZE: '4',
      HEARTBEAT_SECONDS: String(HEARTBEAT_MS / 1000),
      LEASE_SECONDS: String(LEASE_MS / 1000),
      SETTLE_SECONDS: String(SETTLE_MS / 1000),
      // Only the watcher's events and its first scan find new files within the test's time.
      RESCAN_INTERVAL_SECONDS: '120',
      ...env,
    },
  });
}

function instanceIdOf(service: ServiceProcess): string {
  const ready = service.logs.find((line) => line.msg === 'service ready');
  assert.ok(typeof ready?.instanceId === 'string', 'the ready line names the instance');
  return ready.instanceId;
}

function scansOf(service: ServiceProcess, uploadId: string): number {
  return service.logs.filter((line) => line.msg === 'scan finished' && line.uploadId === uploadId).length;
}

interface Details {
  watched_by: string | null;
  files: { completed: number };
}

const details = async (service: ServiceProcess, uploadId: string): Promise<Details> =>
  (await api<Details>(service, 'GET', `/uploads/${uploadId}`)).body;

describe('watch leases of three instances on one PostgreSQL schema', () => {
  it('one instance watches an upload; killed, another takes its watch lease and uploads a file written afterwards', async (t: TestContext) => {
    const schema = freshSchemaName('e2e_watch');
    schemas.push(schema);
    const bucket = await createTestBucket(s3, 'watch-lease');
    const source = path.join(work, 'watched');
    for (let i = 0; i < 3; i++) await writeRandomFile(path.join(source, `before-${i}.bin`), 1000);
    const instances = await Promise.all([0, 1, 2].map(() => startInstance(schema)));
    const uploadId = await createUpload(instances[1]!, { source_folder: source, destination_bucket: bucket });
    await waitForCompleted(instances[1]!, uploadId, 3);

    // Exactly one instance scans it, and it is the one GET /uploads/{id} names, on every instance.
    const watcherId = (await details(instances[0]!, uploadId)).watched_by;
    assert.ok(typeof watcherId === 'string', 'the upload names its watcher');
    for (const instance of instances) assert.equal((await details(instance, uploadId)).watched_by, watcherId);
    const scans = instances.map((instance) => scansOf(instance, uploadId));
    t.diagnostic(`scans by each instance: ${scans.join(', ')}`);
    assert.equal(scans.filter((count) => count > 0).length, 1, `one instance scans: ${scans.join(', ')}`);
    const watcher = instances.find((instance) => instanceIdOf(instance) === watcherId)!;
    assert.equal(scansOf(watcher, uploadId), 1, 'the watcher scanned it once');
    const others = instances.filter((instance) => instance !== watcher);

    // A rescan asked of another instance is refused, naming the watcher.
    const refused = await api<{ error: string; message: string }>(
      others[0]!,
      'POST',
      `/uploads/${uploadId}/rescan`,
    );
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error, 'upload_not_watched');
    assert.match(refused.body.message, new RegExp(`instance ${watcherId} on host \\S+`));

    // Killed: a file written afterwards is found by the instance that takes the watch lease over.
    await watcher.kill();
    const killedAt = Date.now();
    await writeRandomFile(path.join(source, 'after-kill.bin'), 1000);
    await waitFor(async () => (await details(others[0]!, uploadId)).files.completed === 4, {
      timeoutMs: 20_000,
      intervalMs: 50,
      message: 'the file written after the kill uploaded',
    });
    const uploadedAfterMs = Date.now() - killedAt;
    const newWatcherId = (await details(others[0]!, uploadId)).watched_by;
    const newWatcher = others.find((instance) => instanceIdOf(instance) === newWatcherId);
    assert.ok(newWatcher, `a survivor watches it now: ${newWatcherId}`);
    assert.ok(
      newWatcher.logs.some(
        (line) => line.msg?.toString().startsWith('watch lease taken over') && line.uploadId === uploadId,
      ),
      'the survivor says it took the watch lease over',
    );
    t.diagnostic(
      `a file written after the watcher was killed was uploaded ${uploadedAfterMs} ms later (lease ${LEASE_MS} ms, heartbeat ${HEARTBEAT_MS} ms, settle ${SETTLE_MS} ms)`,
    );
    // The lease runs from the killed instance's last beat; a survivor looks at its next beat, then
    // scans, and the file settles: the rest is slack for a loaded machine.
    assert.ok(uploadedAfterMs <= LEASE_MS + 2 * HEARTBEAT_MS + SETTLE_MS + 3000, `${uploadedAfterMs} ms`);

    // A clean stop releases the lease: the last instance takes it at its next beat, well before a
    // lease could have expired.
    const last = others.find((instance) => instance !== newWatcher)!;
    await newWatcher.stop();
    const stoppedAt = Date.now();
    await waitFor(async () => (await details(last, uploadId)).watched_by === instanceIdOf(last), {
      timeoutMs: 10_000,
      intervalMs: 25,
      message: 'the last instance took the released watch lease',
    });
    const handedOverMs = Date.now() - stoppedAt;
    t.diagnostic(`handed over ${handedOverMs} ms after a clean stop`);
    assert.ok(handedOverMs < LEASE_MS, `handed over after ${handedOverMs} ms`);
    await last.stop();
    await deleteBucket(s3, bucket);
  });

  it('another instance claims a file recorded by the watcher at once, and stops its files in flight when the upload is cancelled there', async (t: TestContext) => {
    const schema = freshSchemaName('e2e_wake');
    schemas.push(schema);
    const bucket = await createTestBucket(s3, 'wake-up');
    const source = path.join(work, 'wake-up');
    await writeRandomFile(path.join(source, 'first.bin'), 4 * 1024 * 1024);
    // One file at a time, slowly (4 MiB at 256 KiB/s: 16 s), so that files stay in flight; a
    // queue poll of a minute, so that only a wake-up has another instance claim within the test.
    const slow = {
      MAX_CONCURRENT_FILES: '1',
      MAX_UPLOAD_BYTES_PER_SECOND: String(256 * 1024),
      QUEUE_POLL_SECONDS: '60',
    };
    const watcher = await startInstance(schema, slow);
    const uploadId = await createUpload(watcher, { source_folder: source, destination_bucket: bucket });
    const inFlight = async (service: ServiceProcess): Promise<(FileItem & { instance: string | null })[]> =>
      (
        await api<{ items: (FileItem & { instance: string | null })[] }>(
          service,
          'GET',
          `/uploads/${uploadId}/files`,
        )
      ).body.items.filter((file) => file.status === 'in_progress');
    await waitFor(async () => (await inFlight(watcher)).length === 1, {
      message: 'the watcher uploads first.bin',
    });
    // Started now, the other finds nothing ready at its first look, and next looks in a minute.
    const other = await startInstance(schema, slow);
    const otherId = instanceIdOf(other);
    await waitFor(() => other.logs.some((line) => line.msg === 'engine started'), {
      message: 'the other started',
    });

    const writtenAt = Date.now();
    await writeRandomFile(path.join(source, 'second.bin'), 2 * 1024 * 1024);
    const claimed = await waitFor(
      async () => (await inFlight(watcher)).find((file) => file.relative_path === 'second.bin'),
      { timeoutMs: 10_000, intervalMs: 20, message: 'second.bin claimed' },
    );
    const claimedMs = Date.now() - writtenAt;
    t.diagnostic(
      `second.bin claimed by the other instance ${claimedMs} ms after it was written (settle ${SETTLE_MS} ms, queue poll 60 s)`,
    );
    assert.equal(claimed.instance, otherId, 'the other instance claimed it: the watcher is busy');
    assert.ok(claimedMs < SETTLE_MS + 3000, `claimed after ${claimedMs} ms`);

    // A cancel answered by the watcher stops the file in flight on the other instance too.
    const cancelledAt = Date.now();
    const cancel = await api(watcher, 'DELETE', `/uploads/${uploadId}`);
    assert.ok(cancel.status < 300, `DELETE answered ${cancel.status}`);
    await waitFor(async () => (await inFlight(other)).length === 0, {
      timeoutMs: 5000,
      intervalMs: 20,
      message: 'no file in flight once cancelled',
    });
    const stoppedMs = Date.now() - cancelledAt;
    t.diagnostic(`files in flight on both instances stopped ${stoppedMs} ms after the cancel`);
    assert.ok(stoppedMs < 3000, `stopped after ${stoppedMs} ms`);
    assert.ok(
      other.logs.some(
        (line) =>
          line.msg?.toString().startsWith('upload cancelled by another instance') &&
          line.uploadId === uploadId,
      ),
      'the other instance says it stopped the files of an upload cancelled elsewhere',
    );
    const files = await fileItems(other, uploadId);
    assert.deepEqual(
      files.map((file) => [file.relative_path, file.status]).sort(),
      [
        ['first.bin', 'pending'],
        ['second.bin', 'pending'],
      ],
      'both stopped before they completed',
    );
    await Promise.all([watcher.stop(), other.stop()]);
    await deleteBucket(s3, bucket);
  });
});
