// The `large` and `small` scenarios: a folder that exists before the upload starts, uploaded by the
// service and by each peer in turn against the same S3 server, each into its own bucket.
//
// Service: from `POST /uploads` until GET /uploads/{id} counts every file completed; its CPU from
// /proc over the same span. Peers: the whole command under /usr/bin/time (start-up included).
// Every run is followed (untimed) by a listing of its bucket: every key there with its size.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { writeRandomFile } from '../test/support/temp-tree.js';
import type { Peer } from './peers.js';
import { cpuSeconds, peakRssMiB } from './process-stats.js';
import type { BenchS3Server } from './s3-server.js';
import { startServerCpu, type ServerCpu } from './server-cpu.js';
import { fixed, markdownTable, ratio, summary } from './table.js';
import {
  checkBucket,
  createBucket,
  createUpload,
  dropBucket,
  printServiceWarnings,
  startBenchService,
  timeCommand,
  type CommandTiming,
  waitUntilUploaded,
} from './tools.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

export interface TransferScenario {
  name: 'large' | 'small';
  describe: string;
  /** The figure that says how fast: MiB/s for a large file, files/s for many small ones. */
  speed: 'mibPerSecond' | 'filesPerSecond';
  /** Writes the data; returns each object key to expect with its size. */
  make(folder: string): Promise<Map<string, number>>;
}

export const LARGE: TransferScenario = {
  name: 'large',
  describe: 'one file of 1 GiB',
  speed: 'mibPerSecond',
  make: async (folder) => {
    await writeRandomFile(path.join(folder, 'large.bin'), GiB);
    return new Map([['large.bin', GiB]]);
  },
};

/**
 * `files` random files of 16 KiB spread over `folders` folders (`d0/f0.bin`...); each key with its
 * size, and into `md5s` when given each key's MD5 (hex), the ETag a single PUT gets.
 */
export async function writeSmallFiles(
  folder: string,
  files = 2000,
  folders = 20,
  md5s?: Map<string, string>,
): Promise<Map<string, number>> {
  const expected = new Map<string, number>();
  const perFolder = Math.ceil(files / folders);
  for (let file = 0; file < files; file++) {
    const dir = `d${Math.floor(file / perFolder)}`;
    if (file % perFolder === 0) await mkdir(path.join(folder, dir), { recursive: true });
    const key = `${dir}/f${file % perFolder}.bin`;
    const written = await writeRandomFile(path.join(folder, key), 16 * KiB);
    expected.set(key, 16 * KiB);
    md5s?.set(key, written.md5);
  }
  return expected;
}

export const SMALL: TransferScenario = {
  name: 'small',
  describe: '2,000 files of 16 KiB in 20 folders',
  speed: 'filesPerSecond',
  make: (folder) => writeSmallFiles(folder),
};

export interface TransferRun {
  tool: string;
  round: number;
  /** 1 for the first tool of its round */
  position: number;
  seconds: number;
  mibPerSecond: number;
  filesPerSecond: number;
  cpuSeconds: number;
  cpuSecondsPerGiB: number;
  peakRssMiB: number;
  /** the S3 server's processes over the run; null for an external server */
  serverCpu: ServerCpu | null;
  bucketCheck: string;
}

export interface TransferResult {
  scenario: TransferScenario['name'];
  describe: string;
  files: number;
  bytes: number;
  /** the tools in table order: the service first, then the peers */
  tools: string[];
  runs: TransferRun[];
}

interface Uploader {
  name: string;
  /** Uploads; the S3 server's CPU is counted over the same span as the uploader's time. */
  upload(
    folder: string,
    bucket: string,
    server: BenchS3Server,
  ): Promise<CommandTiming & { serverCpu: ServerCpu | null }>;
}

export interface TransferContext {
  work: string;
  server: BenchS3Server;
  peers: Peer[];
  rounds: number;
  /** Rotates the order of the tools, so that no tool always runs first on a fresh server. */
  rotation: number;
}

export async function runTransfer(
  scenario: TransferScenario,
  context: TransferContext,
): Promise<TransferResult> {
  const folder = path.join(context.work, scenario.name);
  const expected = await scenario.make(folder);
  const files = expected.size;
  const bytes = [...expected.values()].reduce((sum, size) => sum + size, 0);
  const uploaders = [serviceUploader(context.work, files), ...context.peers.map(peerUploader)];
  const runs: TransferRun[] = [];
  for (let round = 0; round < context.rounds; round++) {
    const shift = (context.rotation + round) % uploaders.length;
    const order = [...uploaders.slice(shift), ...uploaders.slice(0, shift)];
    for (const [index, uploader] of order.entries()) {
      const bucket = await createBucket(`bench-${scenario.name}`);
      const timing = await uploader.upload(folder, bucket, context.server);
      const check = await checkBucket(bucket, expected);
      if (!check.ok) console.log(`${uploader.name}: ${check.note}`);
      await dropBucket(bucket); // each run on a server as empty as the last one's
      const run: TransferRun = {
        tool: uploader.name,
        round: round + 1,
        position: index + 1,
        seconds: timing.seconds,
        mibPerSecond: bytes / MiB / timing.seconds,
        filesPerSecond: files / timing.seconds,
        cpuSeconds: timing.cpuSeconds,
        cpuSecondsPerGiB: timing.cpuSeconds / (bytes / GiB),
        peakRssMiB: timing.peakRssMiB,
        serverCpu: timing.serverCpu,
        bucketCheck: check.note,
      };
      runs.push(run);
      console.log(JSON.stringify({ scenario: scenario.name, ...run }));
    }
  }
  return {
    scenario: scenario.name,
    describe: scenario.describe,
    files,
    bytes,
    tools: uploaders.map((uploader) => uploader.name),
    runs,
  };
}

function serviceUploader(work: string, files: number): Uploader {
  return {
    name: 'service',
    async upload(folder, bucket, server) {
      // The files are all there before the request: no need to wait for them to settle.
      const service = await startBenchService(path.join(work, `service-${Date.now()}.db`), {
        SETTLE_SECONDS: '0',
      });
      try {
        const pid = service.child.pid!;
        const cpuBefore = await cpuSeconds(pid);
        const serverCpu = await startServerCpu(server);
        const started = performance.now();
        const uploadId = await createUpload(service, folder, bucket);
        await waitUntilUploaded(service, uploadId, files);
        const seconds = (performance.now() - started) / 1000;
        return {
          serverCpu: await serverCpu.stop(),
          seconds,
          cpuSeconds: (await cpuSeconds(pid)) - cpuBefore,
          peakRssMiB: await peakRssMiB(pid),
        };
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
    async upload(folder, bucket, server) {
      const { args, env } = peer.copy(folder, bucket);
      const serverCpu = await startServerCpu(server);
      const timing = await timeCommand(peer.command, args, env);
      return { ...timing, serverCpu: await serverCpu.stop() };
    },
  };
}

/** One row per figure, one column per tool, then the service ÷ each peer. */
export function transferTable(result: TransferResult): string {
  const peers = result.tools.slice(1);
  const valuesOf = (tool: string, figure: (run: TransferRun) => number | null) =>
    result.runs.filter((run) => run.tool === tool).map(figure);
  const row = (
    label: string,
    figure: (run: TransferRun) => number | null,
    digits: number,
    reading: string,
  ) => [
    label,
    ...result.tools.map((tool) => summary(valuesOf(tool, figure), digits)),
    ...peers.map((peer) => (reading ? ratio(valuesOf('service', figure), valuesOf(peer, figure)) : '-')),
    reading,
  ];
  const speed =
    result.scenario === 'large'
      ? row('MiB/s', (run) => run.mibPerSecond, 1, '> 1: the service is faster')
      : row('files/s', (run) => run.filesPerSecond, 1, '> 1: the service is faster');
  const cpu =
    result.scenario === 'large'
      ? row('CPU s per GiB (user + system)', (run) => run.cpuSecondsPerGiB, 2, '< 1: the service uses less')
      : row('CPU s (user + system)', (run) => run.cpuSeconds, 2, '< 1: the service uses less');
  const checks = result.tools.map((tool) => {
    const notes = result.runs.filter((run) => run.tool === tool).map((run) => run.bucketCheck);
    return notes.every((note) => note === 'ok') ? `ok ×${notes.length}` : notes.join('; ');
  });
  const rows = [
    speed,
    row('seconds', (run) => run.seconds, 2, ''),
    cpu,
    row('peak RSS MiB', (run) => run.peakRssMiB, 0, '< 1: the service uses less'),
    row('S3 server CPU s (all its processes)', (run) => run.serverCpu?.total ?? null, 1, ''),
    row(
      `busiest S3 server process (${busiestNames(result)}), % of one core`,
      (run) => run.serverCpu?.busiestPercentOfCore ?? null,
      0,
      '',
    ),
    ['objects and sizes in the bucket', ...checks, ...peers.map(() => '-'), 'listed after each run'],
  ];
  const header = ['figure', ...result.tools, ...peers.map((peer) => `service ÷ ${peer}`), 'reading'];
  return markdownTable(header, rows);
}

function busiestNames(result: TransferResult): string {
  const names = new Set(result.runs.map((run) => run.serverCpu?.busiest.replace(/-server$/, '') ?? '-'));
  return [...names].join(', ');
}

export function describeRuns(result: TransferResult): string {
  const rounds = Math.max(...result.runs.map((run) => run.round));
  const orders = Array.from({ length: rounds }, (_, index) =>
    result.runs
      .filter((run) => run.round === index + 1)
      .map((run) => run.tool)
      .join(' → '),
  );
  return (
    `${rounds} round${rounds > 1 ? 's' : ''} (${orders.join('; ')}); ` +
    `${rounds > 1 ? 'median (min–max); ' : ''}${fixed(result.bytes / MiB, 0)} MiB in ${result.files} files`
  );
}
