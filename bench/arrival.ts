// What telling downstream costs (docs/run-folders.md): a run folder uploaded with its marker last,
// a manifest and a notification, beside the same folder without them; and a manifest of a million
// files written from the database, with the memory it takes.
//
//   run       ARRIVAL_FILES files of 16 KiB and 2 of 64 MiB in Data/, and RTAComplete.txt: the
//             built service, one-shot, to the in-memory endpoint, SETTLE_SECONDS=0. From POST
//             /uploads until every file is completed (without) or the notification is delivered
//             (with); the marker's delay: when the endpoint stored the marker, after the last data
//             file; the manifest's: when it stored the manifest; the notification's: when a local
//             receiver got it, after the marker.
//   manifest  ARRIVAL_MANIFEST_FILES completed files in a SQLite store (and a PostgreSQL schema when
//             BENCH_POSTGRES_URL is set): writeManifest in this process to the in-memory endpoint,
//             seconds and the growth of this process's resident memory while it ran.
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { api } from '../test/support/service-process.js';
import { waitFor } from '../test/support/poll.js';
import { writeRandomFile } from '../test/support/temp-tree.js';
import { MemoryS3 } from './memory-s3.js';
import { markdownTable, ratio } from './table.js';
import { printServiceWarnings, startBenchService } from './tools.js';
import { runManifestFigures, type ManifestFigure } from './manifest.js';

const KiB = 1024;
const MiB = 1024 * KiB;

export const ARRIVAL = {
  files: Number(process.env.ARRIVAL_FILES ?? 2000),
  fileBytes: 16 * KiB,
  largeFiles: 2,
  largeBytes: 64 * MiB,
  rounds: Number(process.env.BENCH_ROUNDS ?? 3),
  get describe(): string {
    return `a run folder of ${this.files.toLocaleString('en')} files of 16 KiB and ${this.largeFiles} of 64 MiB with RTAComplete.txt`;
  },
};

const MARKER = 'RTAComplete.txt';

export interface RunFigure {
  mode: 'plain' | 'marker';
  round: number;
  /** From POST /uploads until every file is completed (plain) or the notification delivered (marker). */
  seconds: number;
  /** The marker stored, after the last data file was: ms. */
  markerDelayMs: number | null;
  /** The manifest stored, after the last data file was: ms. */
  manifestDelayMs: number | null;
  /** The notification received, after the marker was stored: ms. */
  notificationDelayMs: number | null;
}

export interface ArrivalResult {
  describe: string;
  runs: RunFigure[];
  manifests: ManifestFigure[];
}

async function writeRunFolder(folder: string): Promise<void> {
  for (let i = 0; i < ARRIVAL.files; i++)
    await writeRandomFile(path.join(folder, 'Data', `L00${i % 4}`, `s_${i}.cbcl`), ARRIVAL.fileBytes);
  for (let i = 0; i < ARRIVAL.largeFiles; i++)
    await writeRandomFile(path.join(folder, 'Data', `lane${i}.bcl.gz`), ARRIVAL.largeBytes);
  await writeFile(path.join(folder, MARKER), 'RTA 3.4.4\n');
}

/** A local receiver of notifications: when each POST arrived. */
async function startReceiver(): Promise<{ url: string; received: number[]; close(): Promise<void> }> {
  const received: number[] = [];
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      received.push(Date.now());
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/arrived`,
    received,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

async function runOnce(
  work: string,
  folder: string,
  memory: MemoryS3,
  endpoint: string,
  mode: RunFigure['mode'],
  round: number,
): Promise<RunFigure> {
  const bucket = `arrival-${mode}-${round}`;
  memory.createBucket(bucket);
  const receiver = await startReceiver();
  const service = await startBenchService(path.join(work, `arrival-${mode}-${round}.db`), {
    SETTLE_SECONDS: '0',
    AWS_ENDPOINT_URL_S3: endpoint,
  });
  try {
    const started = performance.now();
    const body =
      mode === 'plain'
        ? { source_folder: folder, destination_bucket: bucket, watch: false }
        : {
            source_folder: folder,
            destination_bucket: bucket,
            watch: false,
            complete_markers: [MARKER],
            manifest: true,
            notify_url: receiver.url,
          };
    const created = await api<{ upload_id: string }>(service, 'POST', '/uploads', body);
    if (created.status !== 201) throw new Error(`POST /uploads answered ${created.status}`);
    const uploadId = created.body.upload_id;
    await waitFor(
      async () => {
        const upload = await api<{ status: string; notification: { status: string } | null }>(
          service,
          'GET',
          `/uploads/${uploadId}`,
        );
        if (mode === 'plain') return upload.body.status === 'completed';
        return upload.body.notification?.status === 'delivered';
      },
      { timeoutMs: 10 * 60_000, intervalMs: 20, message: `${mode} upload arrived` },
    );
    const seconds = (performance.now() - started) / 1000;
    const objects = memory.objects(bucket);
    const storedAt = (key: string): number | null => objects.get(key)?.lastModified.getTime() ?? null;
    let lastData = 0;
    for (const [key, object] of objects)
      if (key !== MARKER && key !== '_manifest.json')
        lastData = Math.max(lastData, object.lastModified.getTime());
    const marker = storedAt(MARKER);
    const manifest = storedAt('_manifest.json');
    const notified = receiver.received[0];
    return {
      mode,
      round,
      seconds,
      markerDelayMs: mode === 'marker' && marker !== null ? marker - lastData : null,
      manifestDelayMs: mode === 'marker' && manifest !== null ? manifest - lastData : null,
      notificationDelayMs:
        mode === 'marker' && marker !== null && notified !== undefined ? notified - marker : null,
    };
  } finally {
    await service.stop();
    printServiceWarnings(service);
    await receiver.close();
    memory.dropBucket(bucket);
  }
}

export async function runArrival(work: string): Promise<ArrivalResult> {
  const folder = path.join(work, 'arrival-run');
  await mkdir(folder, { recursive: true });
  await writeRunFolder(folder);
  const memory = new MemoryS3();
  const endpoint = await memory.start();
  const runs: RunFigure[] = [];
  try {
    for (let round = 1; round <= ARRIVAL.rounds; round++) {
      // In turn, so that a machine that slows down weighs on both alike.
      for (const mode of round % 2 === 1 ? (['plain', 'marker'] as const) : (['marker', 'plain'] as const)) {
        runs.push(await runOnce(work, folder, memory, endpoint, mode, round));
        console.log(JSON.stringify(runs.at(-1)));
      }
    }
  } finally {
    await memory.stop();
  }
  const manifests = await runManifestFigures(work);
  return { describe: ARRIVAL.describe, runs, manifests };
}

const ms = (value: number | null): string => (value === null ? '–' : `${Math.round(value)}`);

export function arrivalTable(result: ArrivalResult): string {
  const seconds = (mode: RunFigure['mode']) =>
    result.runs.filter((run) => run.mode === mode).map((run) => run.seconds);
  const rows = result.runs.map((run) => [
    run.mode === 'plain' ? 'no marker' : 'marker, manifest, notify_url',
    `${run.round}`,
    run.seconds.toFixed(2),
    ms(run.manifestDelayMs),
    ms(run.markerDelayMs),
    ms(run.notificationDelayMs),
  ]);
  const runs = markdownTable(
    [
      'upload',
      'round',
      'seconds',
      'manifest stored after the last data file, ms',
      'marker, ms',
      'notification after the marker, ms',
    ],
    [...rows, ['marker ÷ no marker, medians', '', ratio(seconds('marker'), seconds('plain')), '', '', '']],
  );
  const manifests = markdownTable(
    [
      'store',
      'files',
      'seconds',
      'files/s',
      'manifest MiB',
      'parts',
      'RSS growth MiB',
      'heap + buffers growth MiB',
    ],
    result.manifests.map((figure) => [
      figure.store,
      figure.files.toLocaleString('en'),
      figure.seconds.toFixed(1),
      Math.round(figure.files / figure.seconds).toLocaleString('en'),
      (figure.bytes / MiB).toFixed(1),
      `${figure.parts}`,
      figure.rssBeforeMiB.toFixed(1),
      figure.peakRssMiB.toFixed(1),
    ]),
  );
  return `${runs}\n\n${manifests}`;
}
