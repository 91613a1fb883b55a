// The `fast` scenario: small files to an endpoint that is not the bottleneck (bench/memory-s3.ts, in
// this process), so that each client's own cost shows; then the same endpoint 30 ms away, where what
// counts is how many files a client keeps in flight. Issue 14's targets are ratios of these runs.
//
//   fast     no added latency, 8 files in flight for all: the service with MAX_CONCURRENT_FILES=8,
//            rclone --transfers 8, aws-cli max_concurrent_requests 8
//   latency  FAST_LATENCY_MS added to every answer: the service at its defaults, rclone
//            --transfers 32 (what its users set for small files), aws-cli at its defaults
//
// Service: from `POST /uploads` until every file is completed, its CPU from /proc over that span
// (as in transfer.ts); peers: the whole command under /usr/bin/time. After each run, every object
// is checked against its file: key, size and ETag (the file's MD5). Each run waits first (up to 3
// minutes) for the machine's other processes to be quiet, and counts their CPU over the run.
//
//   FAST_FILES=2000 FAST_LATENCY_MS=30 BENCH_ROUNDS=1
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { uniqueBucketName } from '../test/support/s3.js';
import { MemoryS3 } from './memory-s3.js';
import { serviceDefaults, type InFlight, type Peer } from './peers.js';
import { cpuSeconds, peakRssMiB } from './process-stats.js';
import { median } from './statistics.js';
import { fixed, markdownTable, ratio, summary } from './table.js';
import {
  compareObjects,
  createUpload,
  printServiceWarnings,
  startBenchService,
  timeCommand,
  type CommandTiming,
  waitUntilUploaded,
} from './tools.js';
import { writeSmallFiles } from './transfer.js';

export const FAST = {
  files: Number(process.env.FAST_FILES ?? 2000),
  folders: 20,
  latencyMs: Number(process.env.FAST_LATENCY_MS ?? 30),
  rounds: Number(process.env.BENCH_ROUNDS ?? 1),
  get describe(): string {
    return `${this.files.toLocaleString('en')} files of 16 KiB in ${this.folders} folders to the in-memory endpoint`;
  },
};

/** The targets, printed beside the figures, never asserted. */
const TARGETS = { cpuMsPerFile: 1.2, fastRatio: 1.2, latencyRatio: 1.0 };

const PARTS = ['fast', 'latency'] as const;
type Part = (typeof PARTS)[number];

interface PartSetting {
  latencyMs: number;
  /** The service's settings on top of its defaults. */
  serviceEnv: Record<string, string>;
  rclone: InFlight;
  aws: InFlight;
}

function settingOf(part: Part): PartSetting {
  return part === 'fast'
    ? { latencyMs: 0, serviceEnv: { MAX_CONCURRENT_FILES: '8' }, rclone: 8, aws: 8 }
    : { latencyMs: FAST.latencyMs, serviceEnv: {}, rclone: 32, aws: 'tool-default' };
}

/** What each tool keeps in flight, in words, for the table. */
function inFlightWords(part: Part, tool: string): string {
  const setting = settingOf(part);
  if (tool === 'service')
    return setting.serviceEnv.MAX_CONCURRENT_FILES
      ? `MAX_CONCURRENT_FILES=${setting.serviceEnv.MAX_CONCURRENT_FILES}`
      : `defaults (${serviceDefaults().files} files)`;
  const value = tool.startsWith('rclone') ? setting.rclone : setting.aws;
  if (tool.startsWith('rclone')) return value === 'tool-default' ? 'defaults' : `--transfers ${value}`;
  return value === 'tool-default' ? 'defaults (10 requests)' : `max_concurrent_requests ${value}`;
}

export interface FastRun {
  part: Part;
  tool: string;
  round: number;
  /** 1 for the first tool of its round and part */
  position: number;
  latencyMs: number;
  seconds: number;
  filesPerSecond: number;
  cpuSeconds: number;
  cpuMsPerFile: number;
  peakRssMiB: number;
  /** Requests the endpoint answered over the run, and by kind (`PUT object`...). */
  requests: number;
  requestsByKind: Record<string, number>;
  /** CPU of this process (the endpoint, and the service's progress polls) over the run. */
  endpointCpuSeconds: number;
  /** CPU of every other process on the machine over the run: the machine is shared. */
  otherCpuSeconds: number;
  /** Seconds waited before the run for a quiet machine; null: it ran on a busy one. */
  waitedSeconds: number | null;
  /** 'ok' when every key is there with its size and ETag, and nothing else; else what is wrong */
  check: string;
}

export interface FastResult {
  describe: string;
  files: number;
  latencyMs: number;
  /** the tools in table order: the service first, then the peers */
  tools: string[];
  runs: FastRun[];
}

type FastTiming = CommandTiming & Pick<FastRun, 'endpointCpuSeconds' | 'otherCpuSeconds'>;

interface Uploader {
  name: string;
  upload(folder: string, bucket: string, endpoint: string, part: Part): Promise<FastTiming>;
}

/** CPU seconds the whole machine has used so far, every core, from /proc/stat. */
async function machineCpuSeconds(): Promise<number> {
  const [, ...fields] = (await readFile('/proc/stat', 'utf8')).split('\n', 1)[0]!.trim().split(/\s+/);
  // user nice system idle iowait irq softirq: all but idle and iowait are busy here (steal, next,
  // is the hypervisor's, not a process of this machine).
  const busy = fields.slice(0, 7).map(Number);
  return (busy[0]! + busy[1]! + busy[2]! + busy[5]! + busy[6]!) / 100;
}

/** A quiet machine: other processes below this share of a core, over QUIET.windowMs. */
const QUIET = { shareOfCore: 0.2, windowMs: 2000, waitMs: 180_000 };

/**
 * Waits (at most QUIET.waitMs) for the rest of the machine to be quiet: on a shared machine a test
 * run of someone else's can double a run's seconds. Returns the seconds waited, or null when it
 * went ahead on a busy machine.
 */
async function waitForQuietMachine(): Promise<number | null> {
  const started = performance.now();
  while (performance.now() - started < QUIET.waitMs) {
    const span = await startCpuSpan();
    await new Promise((resolve) => setTimeout(resolve, QUIET.windowMs));
    const { otherCpuSeconds } = await span.stop(0);
    if (otherCpuSeconds / (QUIET.windowMs / 1000) < QUIET.shareOfCore)
      return (performance.now() - started) / 1000;
  }
  return null;
}

/**
 * Starts counting the machine's CPU and this process's; `stop(toolCpu)` splits the span's CPU into
 * this process's (the endpoint) and what is left once the tool's own is taken out: other processes.
 */
async function startCpuSpan(): Promise<{
  stop(toolCpuSeconds: number): Promise<Pick<FastRun, 'endpointCpuSeconds' | 'otherCpuSeconds'>>;
}> {
  const machineBefore = await machineCpuSeconds();
  const ownBefore = process.cpuUsage();
  return {
    async stop(toolCpuSeconds) {
      const own = process.cpuUsage(ownBefore);
      const endpointCpuSeconds = (own.user + own.system) / 1e6;
      const machine = (await machineCpuSeconds()) - machineBefore;
      return {
        endpointCpuSeconds,
        otherCpuSeconds: Math.max(0, machine - toolCpuSeconds - endpointCpuSeconds),
      };
    },
  };
}

function serviceUploader(work: string, files: number): Uploader {
  return {
    name: 'service',
    async upload(folder, bucket, endpoint, part) {
      // The files are all there before the request: no need to wait for them to settle.
      const service = await startBenchService(path.join(work, `fast-${part}-${Date.now()}.db`), {
        SETTLE_SECONDS: '0',
        AWS_ENDPOINT_URL_S3: endpoint,
        ...settingOf(part).serviceEnv,
      });
      try {
        const pid = service.child.pid!;
        const span = await startCpuSpan();
        const cpuBefore = await cpuSeconds(pid);
        const started = performance.now();
        const uploadId = await createUpload(service, folder, bucket);
        await waitUntilUploaded(service, uploadId, files);
        const seconds = (performance.now() - started) / 1000;
        const cpu = (await cpuSeconds(pid)) - cpuBefore;
        return { seconds, cpuSeconds: cpu, peakRssMiB: await peakRssMiB(pid), ...(await span.stop(cpu)) };
      } finally {
        await service.stop();
        printServiceWarnings(service);
      }
    },
  };
}

function peerUploader(peer: Peer): Uploader {
  return {
    name: peer.name,
    async upload(folder, bucket, endpoint, part) {
      const setting = settingOf(part);
      const inFlight = peer.command === 'rclone' ? setting.rclone : setting.aws;
      const { args, env } = peer.copy(folder, bucket, endpoint, inFlight);
      const span = await startCpuSpan();
      const timing = await timeCommand(peer.command, args, env);
      return { ...timing, ...(await span.stop(timing.cpuSeconds)) };
    },
  };
}

/** Every expected key with its size and its ETag (the MD5 of a single PUT), and nothing else. */
function checkObjects(
  memory: MemoryS3,
  bucket: string,
  expected: ReadonlyMap<string, number>,
  md5s: ReadonlyMap<string, string>,
): string {
  const objects = memory.objects(bucket);
  const sizes = compareObjects(objects, expected);
  const wrongEtag = [...md5s].filter(([key, md5]) => {
    const object = objects.get(key);
    return object !== undefined && object.etag !== `"${md5}"`;
  }).length;
  if (sizes.ok && wrongEtag === 0) return 'ok';
  return [sizes.ok ? '' : sizes.note, wrongEtag ? `${wrongEtag} with another ETag` : '']
    .filter(Boolean)
    .join('; ');
}

function kindsSince(memory: MemoryS3, before: ReadonlyMap<string, number>): Record<string, number> {
  const kinds: Record<string, number> = {};
  for (const [kind, count] of memory.requestsByKind) {
    const since = count - (before.get(kind) ?? 0);
    if (since > 0) kinds[kind] = since;
  }
  return kinds;
}

export async function runFast(work: string, peers: readonly Peer[], rotation: number): Promise<FastResult> {
  const folder = path.join(work, 'fast');
  const md5s = new Map<string, string>();
  const expected = await writeSmallFiles(folder, FAST.files, FAST.folders, md5s);
  const uploaders = [serviceUploader(work, expected.size), ...peers.map(peerUploader)];
  const endpoints = new Map<Part, { memory: MemoryS3; url: string }>();
  const runs: FastRun[] = [];
  try {
    for (const part of PARTS) {
      const memory = new MemoryS3({ latencyMs: settingOf(part).latencyMs });
      endpoints.set(part, { memory, url: await memory.start() });
    }
    for (let round = 0; round < FAST.rounds; round++) {
      const shift = (rotation + round) % uploaders.length;
      const order = [...uploaders.slice(shift), ...uploaders.slice(0, shift)];
      for (const part of PARTS) {
        const { memory, url } = endpoints.get(part)!;
        for (const [index, uploader] of order.entries()) {
          const bucket = uniqueBucketName(`bench-fast-${part}`);
          memory.createBucket(bucket);
          const requestsBefore = memory.requests;
          const kindsBefore = new Map(memory.requestsByKind);
          const waited = await waitForQuietMachine();
          if (waited === null) console.log(`fast: the machine is busy; ${uploader.name} runs anyway`);
          else if (waited > QUIET.windowMs / 1000 + 1)
            console.log(`fast: waited ${waited.toFixed(0)} s for a quiet machine`);
          const timing = await uploader.upload(folder, bucket, url, part);
          const check = checkObjects(memory, bucket, expected, md5s);
          if (check !== 'ok') console.log(`${uploader.name}: ${check}`);
          memory.dropBucket(bucket); // each run on an endpoint as empty as the last one's
          const run: FastRun = {
            part,
            tool: uploader.name,
            round: round + 1,
            position: index + 1,
            latencyMs: memory.latencyMs,
            seconds: timing.seconds,
            filesPerSecond: expected.size / timing.seconds,
            cpuSeconds: timing.cpuSeconds,
            cpuMsPerFile: (timing.cpuSeconds * 1000) / expected.size,
            peakRssMiB: timing.peakRssMiB,
            requests: memory.requests - requestsBefore,
            requestsByKind: kindsSince(memory, kindsBefore),
            endpointCpuSeconds: timing.endpointCpuSeconds,
            otherCpuSeconds: timing.otherCpuSeconds,
            waitedSeconds: waited,
            check,
          };
          runs.push(run);
          console.log(JSON.stringify({ scenario: 'fast', ...run }));
        }
      }
    }
  } finally {
    for (const { memory } of endpoints.values()) await memory.stop();
  }
  return {
    describe: FAST.describe,
    files: expected.size,
    latencyMs: FAST.latencyMs,
    tools: uploaders.map((uploader) => uploader.name),
    runs,
  };
}

const PART_TITLES: Record<Part, string> = {
  fast: 'fast, 8 in flight',
  latency: `+${FAST.latencyMs} ms`,
};

/** One block of rows per part, one column per tool, then the service ÷ each peer. */
export function fastTable(result: FastResult): string {
  const peers = result.tools.slice(1);
  const rows = PARTS.flatMap((part) => {
    const runsOf = (tool: string) => result.runs.filter((run) => run.part === part && run.tool === tool);
    if (result.tools.every((tool) => runsOf(tool).length === 0)) return [];
    const title = PART_TITLES[part];
    const valuesOf = (tool: string, figure: (run: FastRun) => number) => runsOf(tool).map(figure);
    const row = (label: string, figure: (run: FastRun) => number, digits: number, reading: string) => [
      `${title}: ${label}`,
      ...result.tools.map((tool) => summary(valuesOf(tool, figure), digits)),
      ...peers.map((peer) => (reading ? ratio(valuesOf('service', figure), valuesOf(peer, figure)) : '-')),
      reading,
    ];
    const kinds = (tool: string) => {
      const first = runsOf(tool)[0];
      if (!first) return '-';
      return Object.entries(first.requestsByKind)
        .sort((a, b) => b[1] - a[1])
        .map(([kind, count]) => `${kind} ${count}`)
        .join(', ');
    };
    const checks = result.tools.map((tool) => {
      const notes = runsOf(tool).map((run) => run.check);
      return notes.every((note) => note === 'ok') ? `ok ×${notes.length}` : notes.join('; ');
    });
    const target = part === 'fast' ? TARGETS.fastRatio : TARGETS.latencyRatio;
    return [
      [
        `${title}: in flight`,
        ...result.tools.map((tool) => inFlightWords(part, tool)),
        ...peers.map(() => '-'),
        '',
      ],
      row(
        'files/s',
        (run) => run.filesPerSecond,
        1,
        `> 1: the service is faster; target vs rclone ≥ ${fixed(target, 1)}`,
      ),
      row('seconds', (run) => run.seconds, 2, ''),
      row('CPU s (user + system)', (run) => run.cpuSeconds, 2, '< 1: the service uses less'),
      row(
        'CPU ms per file',
        (run) => run.cpuMsPerFile,
        2,
        `< 1: the service uses less; target ≤ ${fixed(TARGETS.cpuMsPerFile, 1)} ms and below both`,
      ),
      row('requests answered', (run) => run.requests, 0, ''),
      [`${title}: requests by kind (round 1)`, ...result.tools.map(kinds), ...peers.map(() => '-'), ''],
      row('endpoint CPU s (the bench process)', (run) => run.endpointCpuSeconds, 2, ''),
      row('other processes, CPU s (a quiet machine: near 0)', (run) => run.otherCpuSeconds, 2, ''),
      [`${title}: objects, sizes and ETags`, ...checks, ...peers.map(() => '-'), 'checked after each run'],
    ];
  });
  const header = ['figure', ...result.tools, ...peers.map((peer) => `service ÷ ${peer}`), 'reading'];
  return markdownTable(header, rows);
}

/** The runs in their order, and how busy the rest of the machine was (it is shared). */
export function describeFastRuns(result: FastResult): string {
  const rounds = Math.max(...result.runs.map((run) => run.round));
  const order = result.runs
    .filter((run) => run.round === 1 && run.part === 'fast')
    .map((run) => run.tool)
    .join(' → ');
  const others = median(result.runs.map((run) => run.otherCpuSeconds / run.seconds));
  return (
    `${rounds} round${rounds > 1 ? 's' : ''}, each the fast part then the +${result.latencyMs} ms part, the tools ` +
    `rotated one further each round (first: ${order}); ${rounds > 1 ? 'median (min–max); ' : ''}` +
    `other processes used a median ${fixed((others ?? 0) * 100, 0)}% of a core during the runs`
  );
}
