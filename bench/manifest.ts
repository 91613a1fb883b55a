// A manifest of a million files, written as the service writes it (arrival/manifest.ts): the store
// pages its completed files into a JSON object streamed to the in-memory endpoint. It is written
// in a process of its own, its JavaScript heap bounded to 64 MiB, for a tenth of the files and for
// all of them: bounded, the two peaks are alike; memory that grew with the files would run out.
import BetterSqlite3 from 'better-sqlite3';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeManifest } from '../src/arrival/manifest.js';
import type { ObservedFile } from '../src/domain/model.js';
import { createLogger } from '../src/logger.js';
import { openPostgresStore } from '../src/store/postgres/postgres-store.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { Store } from '../src/store/store.js';
import { createS3Client } from '../src/transfer/s3-client.js';
import { createUploader } from '../src/transfer/uploader.js';
import { admin, CLAIMS, withSchema } from './claims.js';
import { MemoryS3 } from './memory-s3.js';
import { peakRssMiB, rssMiB } from './process-stats.js';

const MiB = 1024 * 1024;
const BATCH = 10_000;

export const MANIFEST = {
  files: Number(process.env.ARRIVAL_MANIFEST_FILES ?? 1_000_000),
};

export interface ManifestFigure {
  store: 'sqlite' | 'postgres';
  files: number;
  seconds: number;
  /** Of the manifest object. */
  bytes: number;
  parts: number;
  /** The resident memory of the process that wrote it, once its store was open, before it began. */
  rssBeforeMiB: number;
  /** The largest resident memory of that process (VmHWM). */
  peakRssMiB: number;
}

/** The files of a sequencer's run: lanes, cycles, tiles. */
function observed(from: number, count: number, now: number): ObservedFile[] {
  return Array.from({ length: count }, (_, offset) => {
    const i = from + offset;
    return {
      relativePath: `Data/Intensities/BaseCalls/L00${(i % 4) + 1}/C${Math.floor(i / 4000) + 1}.1/s_${i % 4000}.cbcl`,
      size: 16_384 + (i % 1000),
      mtimeMs: now - 60_000,
      ctimeMs: now - 60_000,
      ino: i + 1,
      observedAt: now,
    };
  });
}

/** `files` files known to an upload of `store`, each one still pending. */
async function fill(store: Store, uploadId: string, files: number): Promise<void> {
  const now = Date.now();
  await store.createUpload(
    {
      uploadId,
      sourceFolder: '/data/run',
      destinationBucket: 'manifest',
      destinationPrefix: 'runs/r1',
      pattern: '**',
    },
    now,
  );
  for (let from = 0; from < files; from += BATCH) {
    await store.recordObservedFiles(
      uploadId,
      observed(from, Math.min(BATCH, files - from), now),
      (relativePath) => `runs/r1/${relativePath}`,
      () => ({ readyAt: now, settledAt: now }),
      now,
    );
  }
}

/** The old generation's bound in the process that writes the manifest: it fails if the manifest's memory grows with the files. */
const HEAP_LIMIT_MIB = 64;

/**
 * Writes the manifest in a process of its own, with the service's Node flags and the JavaScript
 * heap bounded to HEAP_LIMIT_MIB: its figures are that process's alone.
 */
function measure(kind: ManifestFigure['store'], location: string): Promise<ManifestFigure> {
  const script = fileURLToPath(import.meta.url);
  const flags = ['--heap-growing-percent=50', `--max-old-space-size=${HEAP_LIMIT_MIB}`];
  const child = spawn(process.execPath, [...flags, '--import', 'tsx', script, 'write', kind, location], {
    cwd: path.resolve(path.dirname(script), '..'),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`the manifest's process ended with code ${code}`));
      const figure = JSON.parse(output.trim().split('\n').at(-1)!) as ManifestFigure;
      console.log(JSON.stringify(figure));
      resolve(figure);
    });
  });
}

/** The child: opens the store, writes the upload's manifest to an in-memory endpoint, prints its figures. */
async function write(kind: ManifestFigure['store'], location: string): Promise<void> {
  const store = kind === 'sqlite' ? openSqliteStore(location) : await openPostgresStore(location);
  const memory = new MemoryS3();
  const endpoint = await memory.start();
  memory.createBucket('manifest');
  const client = createS3Client(
    {
      region: 'us-east-1',
      endpoint,
      forcePathStyle: true,
      checksumMode: 'when_required',
      accessKeyId: 'bench',
      secretAccessKey: 'bench',
      sessionToken: undefined,
      profile: undefined,
    },
    { maxSockets: 4 },
  );
  const uploader = createUploader(
    client,
    {
      multipartThresholdBytes: 16 * MiB,
      partSizeBytes: 8 * MiB,
      maxConcurrentParts: 4,
      retryMaxAttempts: 3,
      retryBaseDelayMs: 100,
      streamGrowingFiles: false,
      streamPartSizeBytes: 16 * MiB,
      appendMode: 'off',
      checksumAlgorithm: 'md5',
      maxBufferBytes: 64 * MiB,
    },
    createLogger('silent'),
  );
  try {
    const upload = (await store.getUpload('run'))!;
    const rssBefore = await rssMiB(process.pid);
    const started = performance.now();
    const record = await writeManifest({
      store,
      uploader,
      upload,
      key: 'runs/r1/_manifest.json',
      now: Date.now(),
      signal: new AbortController().signal,
    });
    const seconds = (performance.now() - started) / 1000;
    const object = memory.objects('manifest').get('runs/r1/_manifest.json');
    const parts = /-(\d+)"?$/.exec(object?.etag ?? '')?.[1];
    const figure: ManifestFigure = {
      store: kind,
      files: record.files,
      seconds,
      bytes: object?.size ?? 0,
      parts: parts === undefined ? 1 : Number(parts),
      rssBeforeMiB: rssBefore,
      peakRssMiB: await peakRssMiB(process.pid),
    };
    console.log(JSON.stringify(figure));
  } finally {
    client.destroy();
    await memory.stop();
    await store.close();
  }
}

async function sqliteFigure(work: string, files: number): Promise<ManifestFigure> {
  const file = path.join(work, `manifest-${Date.now()}.db`);
  const store = openSqliteStore(file);
  await fill(store, 'run', files);
  await store.close();
  // Completed at once, as if every file had been uploaded: one statement on the database itself.
  const db = new BetterSqlite3(file);
  db.prepare(
    `UPDATE file_tasks SET status = 'completed', etag = lower(hex(randomblob(16))), validation = 'etag',
       sha256 = lower(hex(randomblob(32))), uploaded_size = size, bytes_uploaded = size,
       completed_at = updated_at, ready_at = NULL`,
  ).run();
  db.close();
  return measure('sqlite', file);
}

async function postgresFigure(files: number): Promise<ManifestFigure> {
  const schema = `bench_manifest_${Date.now()}`;
  const url = withSchema(CLAIMS.url, schema);
  const store = await openPostgresStore(url);
  try {
    await fill(store, 'run', files);
    await admin(
      `UPDATE "${schema}".file_tasks SET status = 'completed', etag = md5(task_id::text), validation = 'etag',
         sha256 = md5(task_id::text) || md5(size::text), uploaded_size = size, bytes_uploaded = size,
         completed_at = updated_at, ready_at = NULL`,
    );
    await store.close();
    return await measure('postgres', url);
  } finally {
    await admin(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  }
}

export async function runManifestFigures(work: string): Promise<ManifestFigure[]> {
  const sizes = [Math.round(MANIFEST.files / 10), MANIFEST.files];
  console.log(
    `manifest: ${sizes.map((files) => files.toLocaleString('en')).join(' and ')} completed files, SQLite then PostgreSQL`,
  );
  const figures: ManifestFigure[] = [];
  for (const files of sizes) figures.push(await sqliteFigure(work, files));
  try {
    for (const files of sizes) figures.push(await postgresFigure(files));
  } catch (error) {
    console.log(`manifest on PostgreSQL skipped: ${(error as Error).message}`);
  }
  return figures;
}

if (process.argv[2] === 'write') {
  write(process.argv[3] as ManifestFigure['store'], process.argv[4]!).catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
