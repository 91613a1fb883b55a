// The `scale` scenario: a tree of many small files (default 200,000 of 1 KiB in 2,000 folders),
// uploaded by the service at its defaults, and what it costs to know and to keep watching them:
//   1. seconds from POST /uploads until every file has its task (GET /uploads/{id} every 100 ms);
//   2. peak RSS (VmHWM) over the whole scenario, and RSS at the end;
//   3. seconds until every file is uploaded (progress every 30 s: completed, RSS, CPU);
//   4. CPU over 60 s of idle watching afterwards, as % of one core (periodic rescans included);
//   5. 200 sequential GET /uploads/{id} from here, keep-alive: p50/p99/max ms;
//   6. a rescan that finds nothing changed (POST /uploads/{id}/rescan): its duration_ms, and that it
//      put no task back to work (pending + in_progress polled through it) and uploaded nothing
//      (no object in the bucket modified since the request, listed after it).
// rclone and aws are not run: they have no watch mode.
//
//   SCALE_FILES=200000 SCALE_FOLDERS=2000   a smaller tree for a quick run
//   SCALE_S3=memory                          the in-memory endpoint (bench/memory-s3.ts), where the
//                                            uploads of a million files take minutes, not hours
// From 1,000,000 files the targets are those of a million (60 s to know them all, 300 MB).
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitFor } from '../test/support/poll.js';
import { api, type ServiceProcess } from '../test/support/service-process.js';
import { cpuSeconds, cpuWindow, peakRssMiB, rssMiB } from './process-stats.js';
import { MemoryS3 } from './memory-s3.js';
import type { BenchS3Server } from './s3-server.js';
import { describeServerCpu, startServerCpu, type ServerCpu } from './server-cpu.js';
import { spreadOf, type Spread } from './statistics.js';
import { fixed, markdownTable } from './table.js';
import {
  createBucket,
  createUpload,
  dropBucket,
  listObjects,
  printServiceWarnings,
  startBenchService,
} from './tools.js';

export const SCALE = {
  files: Number(process.env.SCALE_FILES ?? 200_000),
  folders: Number(process.env.SCALE_FOLDERS ?? 2_000),
  fileBytes: 1024,
  writesAtOnce: 64,
  progressEveryMs: 30_000,
  idleWindowMs: 60_000,
  getCalls: 200,
  uploadTimeoutMs: 4 * 3600_000,
};

const MILLION = SCALE.files >= 1_000_000;
const TARGETS = {
  allKnownSeconds: MILLION ? 60 : 10,
  peakRssMB: MILLION ? 300 : 250,
  idlePercentOfCore: 1,
  rescanSeconds: MILLION ? 15 : 3,
  getMs: 20,
};

/** Where the files go: the benchmark's S3 server, or the in-memory endpoint (SCALE_S3=memory). */
interface ScaleTarget {
  describe: string;
  env: Record<string, string>;
  bucket: string;
  objects(): Promise<Map<string, { lastModified?: Date | undefined }>>;
  stop(): Promise<void>;
}

async function scaleTarget(): Promise<ScaleTarget> {
  if (process.env.SCALE_S3 !== 'memory') {
    const bucket = await createBucket('bench-scale');
    return {
      describe: 'the local S3 server',
      env: {},
      bucket,
      objects: () => listObjects(bucket),
      stop: async () => undefined,
    };
  }
  const memory = new MemoryS3();
  const url = await memory.start();
  const bucket = 'bench-scale';
  memory.createBucket(bucket);
  return {
    describe: 'the in-memory S3 endpoint (bench/memory-s3.ts)',
    env: { AWS_ENDPOINT_URL_S3: url },
    bucket,
    objects: () => Promise.resolve(new Map(memory.objects(bucket))),
    stop: () => memory.stop(),
  };
}

interface UploadDetails {
  files: { pending: number; in_progress: number; completed: number; failed: number; total: number };
  last_scan?: {
    kind: string;
    started_at: string;
    finished_at: string | null;
    duration_ms: number | null;
    files_seen: number;
    files_changed: number;
    error?: string | null;
  } | null;
}

export interface ProgressSample {
  seconds: number;
  completed: number;
  rssMiB: number;
  cpuPercentOfCore: number;
}

export type RescanFigure =
  | { available: false; note: string }
  | {
      available: true;
      kind: string;
      durationMs: number | null;
      filesSeen: number;
      filesChanged: number;
      error: string | null;
      /** from the request until GET shows it finished */
      secondsUntilSeenFinished: number;
      /** most tasks seen pending or in progress while it ran (0: none went back to work) */
      tasksBackToWork: number;
      completedAfter: number;
      objectsInBucket: number;
      /** objects whose LastModified is at or after the request's second: uploaded by the rescan */
      objectsModifiedSince: number;
    };

export interface ScaleResult {
  scenario: 'scale';
  describe: string;
  files: number;
  folders: number;
  treeSeconds: number;
  allKnownSeconds: number;
  uploadSeconds: number;
  filesPerSecond: number;
  failed: number;
  peakRssMiB: number;
  rssAtEndMiB: number;
  progress: ProgressSample[];
  idle: { seconds: number; cpuSeconds: number; percentOfCore: number };
  getMs: Spread;
  rescan: RescanFigure;
  serviceCpuSeconds: number;
  /** the S3 server from POST until every file is uploaded */
  serverCpu: ServerCpu | null;
  targets: typeof TARGETS;
}

export async function runScale(work: string, server: BenchS3Server): Promise<ScaleResult> {
  const folder = path.join(work, 'scale');
  const treeSeconds = await makeTree(folder);
  console.log(
    `scale: ${SCALE.files} files in ${SCALE.folders} folders written in ${treeSeconds.toFixed(1)} s`,
  );
  const target = await scaleTarget();
  const { bucket } = target;
  console.log(`scale: uploading to ${target.describe}`);
  const service = await startBenchService(path.join(work, `service-scale-${Date.now()}.db`), target.env);
  const pid = service.child.pid!;
  try {
    const serviceCpuBefore = await cpuSeconds(pid);
    const serverCpu = target.env.AWS_ENDPOINT_URL_S3 === undefined ? await startServerCpu(server) : undefined;
    const started = performance.now();
    const uploadId = await createUpload(service, folder, bucket);
    const details = () =>
      api<UploadDetails>(service, 'GET', `/uploads/${uploadId}`).then((reply) => reply.body);

    await waitFor(async () => (await details()).files.total >= SCALE.files, {
      timeoutMs: 30 * 60_000,
      intervalMs: 100,
      message: `${SCALE.files} tasks known`,
    });
    const allKnownSeconds = (performance.now() - started) / 1000;
    console.log(`scale: every task known after ${allKnownSeconds.toFixed(2)} s`);

    const { progress, files } = await untilUploaded(service, details, started);
    const uploadSeconds = (performance.now() - started) / 1000;
    const serviceCpuSeconds = (await cpuSeconds(pid)) - serviceCpuBefore;
    const serverCpuFigures = (await serverCpu?.stop()) ?? null;
    console.log(
      `scale: ${files.completed} uploaded (${files.failed} failed) after ${uploadSeconds.toFixed(1)} s`,
    );

    const window = await cpuWindow(() => cpuSeconds(pid));
    await sleep(SCALE.idleWindowMs); // the measurement window itself
    const idle = await window.stop();
    console.log(
      `scale: idle CPU ${idle.percentOfCore.toFixed(2)}% of a core over ${idle.seconds.toFixed(0)} s`,
    );

    const getMs = await timeGets(details);
    const rescan = await unchangedRescan(service, uploadId, details, target);
    console.log(`scale: rescan ${JSON.stringify(rescan)}`);

    return {
      scenario: 'scale',
      describe: `${SCALE.files} files of 1 KiB in ${SCALE.folders} folders, service defaults`,
      files: SCALE.files,
      folders: SCALE.folders,
      treeSeconds,
      allKnownSeconds,
      uploadSeconds,
      filesPerSecond: files.completed / uploadSeconds,
      failed: files.failed,
      peakRssMiB: await peakRssMiB(pid),
      rssAtEndMiB: await rssMiB(pid),
      progress,
      idle,
      getMs,
      rescan,
      serviceCpuSeconds,
      serverCpu: serverCpuFigures,
      targets: TARGETS,
    };
  } finally {
    await service.stop();
    printServiceWarnings(service);
    // A server started here takes its data with it; emptying 200,000 objects would take minutes.
    if (!server.owned && target.env.AWS_ENDPOINT_URL_S3 === undefined) await dropBucket(bucket);
    await target.stop();
    await rm(folder, { recursive: true, force: true });
  }
}

/** Writes the tree, a bounded number of files at once; returns the seconds it took. */
async function makeTree(folder: string): Promise<number> {
  const started = performance.now();
  const perFolder = Math.ceil(SCALE.files / SCALE.folders);
  const folderOf = (index: number) =>
    path.join(folder, `d${String(Math.floor(index / perFolder)).padStart(5, '0')}`);
  for (let index = 0; index < SCALE.files; index += perFolder)
    await mkdir(folderOf(index), { recursive: true });
  let next = 0;
  const writer = async () => {
    for (let index = next++; index < SCALE.files; index = next++) {
      const name = `f${String(index % perFolder).padStart(5, '0')}.bin`;
      await writeFile(path.join(folderOf(index), name), randomBytes(SCALE.fileBytes));
    }
  };
  await Promise.all(Array.from({ length: SCALE.writesAtOnce }, writer));
  return (performance.now() - started) / 1000;
}

async function untilUploaded(
  service: ServiceProcess,
  details: () => Promise<UploadDetails>,
  started: number,
): Promise<{ progress: ProgressSample[]; files: UploadDetails['files'] }> {
  const pid = service.child.pid!;
  const progress: ProgressSample[] = [];
  let window = await cpuWindow(() => cpuSeconds(pid));
  let nextReport = performance.now() + SCALE.progressEveryMs;
  const files = await waitFor(
    async () => {
      const { files } = await details();
      if (performance.now() >= nextReport) {
        const { percentOfCore } = await window.stop();
        window = await cpuWindow(() => cpuSeconds(pid));
        nextReport += SCALE.progressEveryMs;
        const sample = {
          seconds: (performance.now() - started) / 1000,
          completed: files.completed,
          rssMiB: await rssMiB(pid),
          cpuPercentOfCore: percentOfCore,
        };
        progress.push(sample);
        console.log(
          `scale: ${sample.seconds.toFixed(0)} s: ${files.completed} of ${files.total} completed, ` +
            `RSS ${sample.rssMiB.toFixed(0)} MiB, CPU ${sample.cpuPercentOfCore.toFixed(0)}% of a core`,
        );
      }
      return (
        files.completed + files.failed >= SCALE.files && files.pending + files.in_progress === 0 && files
      );
    },
    { timeoutMs: SCALE.uploadTimeoutMs, intervalMs: 1000, message: `${SCALE.files} files uploaded` },
  );
  return { progress, files };
}

async function timeGets(details: () => Promise<UploadDetails>): Promise<Spread> {
  const ms: number[] = [];
  for (let i = 0; i < SCALE.getCalls; i++) {
    const started = performance.now();
    await details();
    ms.push(performance.now() - started);
  }
  return spreadOf(ms);
}

async function unchangedRescan(
  service: ServiceProcess,
  uploadId: string,
  details: () => Promise<UploadDetails>,
  target: ScaleTarget,
): Promise<RescanFigure> {
  let requestedAt = Date.now();
  let started = performance.now();
  let answer = await askRescan(service, uploadId);
  // A periodic rescan under way: let it end, then ask for one of our own.
  let attempts = 0;
  while (answer.status === 202 && answer.body.rescan === 'already_running' && attempts++ < 5) {
    await waitFor(async () => (await details()).last_scan?.finished_at, {
      timeoutMs: 10 * 60_000,
      intervalMs: 100,
      message: 'the running scan finished',
    });
    requestedAt = Date.now();
    started = performance.now();
    answer = await askRescan(service, uploadId);
  }
  if (answer.status === 404 && answer.body.error === 'route_not_found')
    return { available: false, note: 'rescan endpoint not available' };
  if (answer.status !== 202 || answer.body.rescan !== 'started')
    return {
      available: false,
      note: `POST /uploads/{id}/rescan answered ${answer.status}: ${JSON.stringify(answer.body)}`,
    };
  let tasksBackToWork = 0;
  const finished = await waitFor(
    async () => {
      const { files, last_scan: scan } = await details();
      tasksBackToWork = Math.max(tasksBackToWork, files.pending + files.in_progress);
      const ours = scan && Date.parse(scan.started_at) >= requestedAt && scan.finished_at !== null;
      return ours ? { scan, files } : undefined;
    },
    { timeoutMs: 10 * 60_000, intervalMs: 100, message: 'the rescan finished' },
  );
  const secondsUntilSeenFinished = (performance.now() - started) / 1000;
  const objects = await target.objects();
  const sinceSecond = Math.floor(requestedAt / 1000) * 1000;
  const modifiedSince = [...objects.values()].filter(
    (object) => (object.lastModified?.getTime() ?? 0) >= sinceSecond,
  ).length;
  return {
    available: true,
    kind: finished.scan.kind,
    durationMs: finished.scan.duration_ms,
    filesSeen: finished.scan.files_seen,
    filesChanged: finished.scan.files_changed,
    error: finished.scan.error ?? null,
    secondsUntilSeenFinished,
    tasksBackToWork,
    completedAfter: finished.files.completed,
    objectsInBucket: objects.size,
    objectsModifiedSince: modifiedSince,
  };
}

function askRescan(service: ServiceProcess, uploadId: string) {
  return api<{ rescan?: 'started' | 'already_running'; error?: string }>(
    service,
    'POST',
    `/uploads/${uploadId}/rescan`,
  );
}

export function scaleTable(result: ScaleResult): string {
  const t = result.targets;
  const { rescan } = result;
  const rescanRows: string[][] = rescan.available
    ? [
        ['unchanged rescan: duration_ms', fixed(rescan.durationMs, 0), `≤ ${t.rescanSeconds * 1000}`],
        [
          'unchanged rescan: files seen / changed',
          `${rescan.filesSeen} / ${rescan.filesChanged}`,
          `${result.files} / 0`,
        ],
        [
          'unchanged rescan: tasks back to work / objects uploaded',
          `${rescan.tasksBackToWork} / ${rescan.objectsModifiedSince}`,
          '0 / 0',
        ],
        ['objects in the bucket after it', String(rescan.objectsInBucket), String(result.files)],
        ...(rescan.error ? [['unchanged rescan: error', rescan.error, 'none']] : []),
      ]
    : [['unchanged rescan', rescan.note, `≤ ${t.rescanSeconds} s, uploads nothing`]];
  return markdownTable(
    ['figure', 'service', 'target'],
    [
      ['seconds to write the tree (not the service)', fixed(result.treeSeconds, 1), ''],
      [
        's from POST /uploads until every task is known',
        fixed(result.allKnownSeconds, 2),
        `≤ ${t.allKnownSeconds}`,
      ],
      ['s until every file is uploaded', fixed(result.uploadSeconds, 1), ''],
      ['files/s uploaded', fixed(result.filesPerSecond, 1), ''],
      ['failed files', String(result.failed), '0'],
      [
        'peak RSS MiB (VmHWM, whole scenario)',
        fixed(result.peakRssMiB, 0),
        `≤ ${fixed((t.peakRssMB * 1e6) / 2 ** 20, 0)} (${t.peakRssMB} MB)`,
      ],
      ['RSS MiB at the end', fixed(result.rssAtEndMiB, 0), ''],
      ['service CPU s, POST until uploaded', fixed(result.serviceCpuSeconds, 1), ''],
      ['S3 server CPU, POST until uploaded', describeServerCpu(result.serverCpu), ''],
      [
        `idle CPU, % of one core over ${fixed(result.idle.seconds, 0)} s`,
        fixed(result.idle.percentOfCore, 2),
        `≤ ${t.idlePercentOfCore}`,
      ],
      [
        `GET /uploads/{id} ms, p50 / p99 / max of ${result.getMs.count}`,
        [result.getMs.p50, result.getMs.p99, result.getMs.max].map((ms) => fixed(ms, 1)).join(' / '),
        `≤ ${t.getMs}`,
      ],
      ...rescanRows,
    ],
  );
}
