// The database is where it says it is, with the service as users run it: its SQLite file removed or
// replaced under the running process is reported within 5 s, every request is refused with a 503
// rather than written where nothing keeps it, and a second instance on the same path is refused.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { waitFor } from '../support/poll.js';
import { createTestBucket, deleteBucket, testS3Client } from '../support/s3.js';
import { api, killAllServices, startService, type ServiceProcess } from '../support/service-process.js';
import { createUpload, uploadDetails, waitForCompleted } from '../support/upload-api.js';
import { makeTempDir, removeTempDir } from '../support/temp-tree.js';

let s3: S3Client;
let work: string;

before(async () => {
  s3 = testS3Client();
  work = await makeTempDir('e2e-database-location');
});

after(async () => {
  await removeTempDir(work);
  s3.destroy();
});

afterEach(async () => {
  assert.equal(await killAllServices(), 0, 'a test left a service process running');
});

interface Running {
  service: ServiceProcess;
  databaseFile: string;
  uploadId: string;
  bucket: string;
}

/** A service on label.db with one upload whose one file is in S3. */
async function runningWithUpload(label: string): Promise<Running> {
  const databaseFile = path.join(work, label, 'state.db');
  const source = path.join(work, label, 'source');
  await mkdir(source, { recursive: true });
  await writeFile(path.join(source, 'a.txt'), 'kept in S3');
  const bucket = await createTestBucket(s3, label);
  const service = await startService({ databaseFile });
  const uploadId = await createUpload(service, { source_folder: source, destination_bucket: bucket });
  await waitForCompleted(service, uploadId, 1);
  return { service, databaseFile, uploadId, bucket };
}

/** Waits until GET / answers 503 with `database`; returns how long that took from `since`. */
async function waitForHealth(service: ServiceProcess, database: string, since: number): Promise<number> {
  await waitFor(
    async () => {
      const health = await api(service, 'GET', '/');
      return health.status === 503 && health.body.database === database && health.body.status === 'degraded';
    },
    { timeoutMs: 5000, intervalMs: 100, message: `GET / answers 503 with database '${database}'` },
  );
  return Date.now() - since;
}

/** Every route answers 503 database_unavailable, saying what happened. */
async function assertRefused(running: Running, happened: RegExp): Promise<void> {
  const { service, uploadId, bucket } = running;
  const responses = [
    await api(service, 'POST', '/uploads', { source_folder: work, destination_bucket: bucket }),
    await api(service, 'GET', `/uploads/${uploadId}`),
    await api(service, 'GET', '/uploads'),
    await api(service, 'DELETE', `/uploads/${uploadId}`),
  ];
  for (const response of responses) {
    assert.equal(response.status, 503, JSON.stringify(response.body));
    assert.equal(response.body.error, 'database_unavailable');
    assert.match(String(response.body.message), happened);
  }
}

function errorLines(service: ServiceProcess, message: RegExp): Record<string, unknown>[] {
  return service.logs.filter((line) => Number(line.level) >= 50 && message.test(String(line.msg)));
}

describe('the database file removed under a running service', () => {
  it('is reported within 5 s, refuses every request, and keeps a second instance out', async () => {
    const running = await runningWithUpload('removed');
    const { service, databaseFile } = running;
    const removedAt = Date.now();
    await rm(databaseFile);
    await rm(`${databaseFile}-wal`);
    const seenAfterMs = await waitForHealth(service, 'missing', removedAt);
    console.log(`removed database seen by GET / after ${seenAfterMs} ms`);
    await assertRefused(running, /its file .*state\.db was removed while the service ran/);

    // Refused at start-up while the first runs, without re-creating the file.
    await assert.rejects(
      startService({ databaseFile }),
      /exited with 1 before it was ready: fatal: the database .*state\.db is in use by another running instance/,
    );
    assert.equal(existsSync(databaseFile), false);
    assert.equal((await api(service, 'GET', '/')).status, 503, 'the first one still runs');

    // One line says what happened and what to do; the dispatcher says it once, not every second.
    const lost = errorLines(
      service,
      /^the database cannot be used until the service is restarted: its file /,
    );
    assert.equal(lost.length, 1, JSON.stringify(lost));
    assert.match(
      String(lost[0]?.msg),
      /stop the service, put the file back from a backup or remove what is left of it/,
    );
    assert.equal(lost[0]?.state, 'missing');
    assert.equal(errorLines(service, /^dispatcher: could not claim tasks/).length, 1);
    assert.ok(errorLines(service, /^recording changed files failed/).length <= 1, 'not one line per rescan');
    assert.equal(await service.stop(), 0);
    await deleteBucket(s3, running.bucket);
  });
});

describe('the database file replaced under a running service', () => {
  it('is reported as replaced and refuses every request the same way', async () => {
    const running = await runningWithUpload('replaced');
    const { service, databaseFile } = running;
    // A copy of the file is another file at the same path, as a restore from a backup would be.
    const other = path.join(path.dirname(databaseFile), 'other.db');
    await copyFile(databaseFile, other);
    const replacedAt = Date.now();
    await rename(other, databaseFile);
    const seenAfterMs = await waitForHealth(service, 'replaced', replacedAt);
    console.log(`replaced database seen by GET / after ${seenAfterMs} ms`);
    await assertRefused(running, /its file .*state\.db was replaced by another file while the service ran/);
    assert.equal(await service.stop(), 0);
    await deleteBucket(s3, running.bucket);
  });
});

describe('the write-ahead log removed under a running service', () => {
  it('is reported, and a graceful stop keeps everything, as the message says', async () => {
    const running = await runningWithUpload('log-removed');
    const { service, databaseFile, uploadId } = running;
    const removedAt = Date.now();
    await rm(`${databaseFile}-wal`);
    await waitForHealth(service, 'missing', removedAt);
    await assertRefused(
      running,
      /its write-ahead log .*state\.db-wal was removed .* stop the service gracefully/,
    );
    assert.equal(await service.stop(), 0);

    const restarted = await startService({ databaseFile });
    assert.equal((await api(restarted, 'GET', '/')).status, 200);
    const details = await uploadDetails(restarted, uploadId);
    assert.equal(details.files.completed, 1, JSON.stringify(details));
    assert.equal(await restarted.stop(), 0);
    await deleteBucket(s3, running.bucket);
  });
});

describe('an in-memory database', () => {
  it('is a configuration error (exit 78), not a file named :memory:', async () => {
    const folder = path.join(work, 'memory');
    await mkdir(folder, { recursive: true });
    await assert.rejects(
      startService({
        databaseFile: path.join(folder, 'unused.db'),
        env: { DATABASE_URL: 'sqlite::memory:' },
      }),
      /exited with 78 before it was ready: configuration error: DATABASE_URL: 'sqlite::memory:': an in-memory database is not supported/,
    );
  });
});
