// What the benchmark scenarios share: buckets and their checks, the service as users run it, and
// timing a command.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { deleteBucket, testS3Client, uniqueBucketName } from '../test/support/s3.js';
import { waitFor } from '../test/support/poll.js';
import { api, startService, type ServiceProcess } from '../test/support/service-process.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export function hasCommand(name: string): boolean {
  try {
    execFileSync('which', [name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * A client for the benchmark's own housekeeping (buckets, listings): more patient than the tests'
 * one, since a loaded server answers 503 "reduce your request rate" now and then.
 */
export function benchS3Client(): S3Client {
  return testS3Client({ maxAttempts: 10 });
}

export async function createBucket(label: string): Promise<string> {
  const client = benchS3Client();
  const bucket = uniqueBucketName(label);
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  client.destroy();
  return bucket;
}

export async function dropBucket(bucket: string): Promise<void> {
  const client = benchS3Client();
  await deleteBucket(client, bucket);
  client.destroy();
}

export interface ListedObject {
  size: number;
  lastModified: Date | undefined;
}

/** Every object of a bucket by key. */
export async function listObjects(bucket: string): Promise<Map<string, ListedObject>> {
  const client = benchS3Client();
  const objects = new Map<string, ListedObject>();
  try {
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
      for (const object of page.Contents ?? []) {
        if (object.Key)
          objects.set(object.Key, { size: object.Size ?? 0, lastModified: object.LastModified });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  } finally {
    client.destroy();
  }
  return objects;
}

export interface BucketCheck {
  ok: boolean;
  objects: number;
  bytes: number;
  /** 'ok', or what is wrong */
  note: string;
}

/** Whether the bucket holds exactly the expected keys with their sizes (untimed, after a run). */
export async function checkBucket(
  bucket: string,
  expected: ReadonlyMap<string, number>,
): Promise<BucketCheck> {
  return compareObjects(await listObjects(bucket), expected);
}

/** Whether `objects` are exactly the expected keys with their sizes. */
export function compareObjects(
  objects: ReadonlyMap<string, { size: number }>,
  expected: ReadonlyMap<string, number>,
): BucketCheck {
  let bytes = 0;
  let missing = 0;
  let wrongSize = 0;
  for (const object of objects.values()) bytes += object.size;
  for (const [key, size] of expected) {
    const object = objects.get(key);
    if (!object) missing++;
    else if (object.size !== size) wrongSize++;
  }
  const extra = [...objects.keys()].filter((key) => !expected.has(key)).length;
  const problems = [
    missing && `${missing} missing`,
    wrongSize && `${wrongSize} of the wrong size`,
    extra && `${extra} unexpected`,
  ].filter(Boolean);
  return {
    ok: problems.length === 0,
    objects: objects.size,
    bytes,
    note: problems.length === 0 ? 'ok' : `WARNING: ${problems.join(', ')} of ${expected.size} objects`,
  };
}

/** Fails early, with the remedy, when the compiled service is missing. */
export function assertServiceBuilt(): void {
  if (!existsSync(path.join(repoRoot, 'dist/main.js')))
    throw new Error('dist/main.js is missing: run `npm run build` first (`npm run bench` does)');
}

/**
 * The compiled service at its defaults, as users run it, but for `env`: its own process and SQLite
 * file, talking to the benchmark's S3 server.
 */
export function startBenchService(
  databaseFile: string,
  env: Record<string, string> = {},
): Promise<ServiceProcess> {
  return startService({ databaseFile, built: true, serviceDefaults: true, env });
}

/** A figure far off is easier to read with what the service said: its warnings and errors, if any. */
export function printServiceWarnings(service: ServiceProcess): void {
  const notable = service.logs.filter((entry) => typeof entry.level === 'number' && entry.level >= 40);
  if (notable.length === 0) return;
  console.log(`the service logged ${notable.length} warnings and errors; the first ones:`);
  for (const entry of notable.slice(0, 10)) console.log(JSON.stringify(entry));
}

export interface CommandTiming {
  seconds: number;
  cpuSeconds: number;
  peakRssMiB: number;
}

/** Runs a command under /usr/bin/time for its wall time, CPU and peak memory. */
export function timeCommand(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<CommandTiming> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', 'TIME %e %U %S %M', command, ...args], {
      env,
      stdio: ['ignore', 'inherit', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('exit', (code) => {
      const match = /TIME ([\d.]+) ([\d.]+) ([\d.]+) (\d+)/.exec(stderr);
      if (code !== 0 || !match)
        return reject(new Error(`${command} failed (${code}): ${stderr.slice(-2000)}`));
      const [, wall, user, system, kib] = match.map(Number);
      resolve({ seconds: wall!, cpuSeconds: user! + system!, peakRssMiB: kib! / 1024 });
    });
  });
}

/** POST /uploads of `folder` into `bucket`; the new request's id. */
export async function createUpload(service: ServiceProcess, folder: string, bucket: string): Promise<string> {
  const created = await api<{ upload_id: string }>(service, 'POST', '/uploads', {
    source_folder: folder,
    destination_bucket: bucket,
  });
  if (created.status !== 201) throw new Error(`POST /uploads answered ${created.status}`);
  return created.body.upload_id;
}

/** A new upload of `folder`, once the service watches it (status active). */
export async function startWatching(
  service: ServiceProcess,
  folder: string,
  bucket: string,
): Promise<string> {
  const uploadId = await createUpload(service, folder, bucket);
  await waitFor(
    async () =>
      (await api<{ status: string }>(service, 'GET', `/uploads/${uploadId}`)).body.status === 'active',
    { timeoutMs: 30_000, intervalMs: 50, message: 'the request is active' },
  );
  return uploadId;
}

/**
 * Waits until every one of the upload's `files` has ended (polling every 50 ms, a poll that costs
 * the service little); throws when some failed.
 */
export async function waitUntilUploaded(
  service: ServiceProcess,
  uploadId: string,
  files: number,
): Promise<void> {
  const done = await waitFor(
    async () => {
      const details = await api<{ files: { completed: number; failed: number } }>(
        service,
        'GET',
        `/uploads/${uploadId}`,
      );
      const { completed, failed } = details.body.files;
      return completed + failed === files && { failed };
    },
    { timeoutMs: 30 * 60_000, intervalMs: 50, message: `${files} files uploaded` },
  );
  if (done.failed > 0) throw new Error(`${done.failed} of ${files} files failed`);
}
