// The `growing` scenario: a file written at a steady rate, as an instrument writes its output, and
// how soon after its last write each tool has it complete in S3, for how many bytes sent.
//
// Three runs on the same machine and server, one after the other, each on a fresh file:
//   - the service streaming the file while it grows (the defaults);
//   - the service with STREAM_GROWING_FILES=false and APPEND_MODE=off: it waits until the file has
//     settled (SETTLE_SECONDS), then uploads it whole;
//   - rclone copy started right after the last write (when rclone is installed).
// Every tool talks to S3 through the same byte-counting proxy, which counts the request bodies of
// PutObject and UploadPart: what a tool sent over the network, resends included. Completion is seen
// by polling HeadObject on the S3 server directly (not through the proxy) every 50 ms until the
// object has the final size; then the object is downloaded and its SHA-256 compared with the file's.
import { createHash } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { startFaultProxy, type FaultProxy } from '../test/support/fault-proxy.js';
import { startGrowingWrite, type GrowingWriteResult } from '../test/support/growing-writer.js';
import { waitFor } from '../test/support/poll.js';
import { testS3 } from '../test/support/s3.js';
import { api, startService } from '../test/support/service-process.js';
import type { Peer } from './peers.js';
import { cpuSeconds, peakRssMiB } from './process-stats.js';
import type { BenchS3Server } from './s3-server.js';
import { describeServerCpu, startServerCpu, type ServerCpu } from './server-cpu.js';
import { fixed, markdownTable } from './table.js';
import {
  benchS3Client,
  createBucket,
  dropBucket,
  printServiceWarnings,
  startWatching,
  timeCommand,
} from './tools.js';

const MiB = 1024 * 1024;

/**
 * 512 MiB written as 16 MiB every 0.25 s: 64 MiB/s for 8 s. Faster than most instruments, so the
 * run stays short, yet well under what the service uploads on this kind of machine (about
 * 170 MiB/s on the `large` scenario), so that a streaming uploader can keep up with the writer.
 */
export const GROWING = {
  totalBytes: 512 * MiB,
  chunkBytes: 16 * MiB,
  intervalMs: 250,
  /** the same for both service runs: eight write intervals, so a writer held up briefly is not taken for done */
  settleSeconds: 2,
  describe: 'one file written to 512 MiB at 16 MiB every 0.25 s (64 MiB/s)',
};

const FILE_NAME = 'growing.bin';

export interface GrowingFigure {
  scenario: 'growing';
  tool: string;
  /** SETTLE_SECONDS of a service run; null for rclone */
  settleSeconds: number | null;
  finalBytes: number;
  /** PutObject and UploadPart request bodies through the proxy */
  bytesSent: number;
  /** bytesSent / finalBytes */
  sentRatio: number;
  /** from the writer's last write to HeadObject showing the complete object */
  secondsAfterLastWrite: number;
  /** from the writer's first write to the complete object */
  secondsInAll: number;
  /** the downloaded object's SHA-256 equals the file's */
  intact: boolean;
  /** how late the writer's slowest write was against its schedule: the machine kept up when small */
  writerMaxLagMs: number;
  cpuSeconds: number | null;
  peakRssMiB: number | null;
  /** the S3 server's processes from the first write to the complete object */
  serverCpu: ServerCpu | null;
}

interface Tool {
  name: string;
  settleSeconds: number | null;
  /** Gets ready to take the file from `folder` into `bucket`; returns what to do after the last write. */
  prepare(folder: string, bucket: string, proxy: FaultProxy): Promise<Run>;
}

interface Run {
  afterLastWrite(): Promise<void>;
  /** once the object is complete: CPU and memory, and stopping what was started */
  finish(): Promise<{ cpuSeconds: number | null; peakRssMiB: number | null }>;
}

function serviceTool(name: string, env: Record<string, string>, work: string): Tool {
  return {
    name,
    settleSeconds: GROWING.settleSeconds,
    async prepare(folder, bucket, proxy) {
      const service = await startService({
        databaseFile: path.join(work, `service-growing-${Date.now()}.db`),
        s3Endpoint: proxy.endpoint,
        built: true,
        serviceDefaults: true,
        env: {
          SETTLE_SECONDS: String(GROWING.settleSeconds),
          RESCAN_INTERVAL_SECONDS: '600',
          LOG_LEVEL: 'info',
          RETRY_BASE_DELAY_MS: '500',
          ...env,
        },
      });
      const pid = service.child.pid!;
      const uploadId = await startWatching(service, folder, bucket);
      const cpuBefore = await cpuSeconds(pid);
      return {
        afterLastWrite: async () => undefined,
        async finish() {
          // Completed in S3 is not yet recorded: wait for the record, so the stop cuts nothing short.
          await waitFor(
            async () => {
              const details = await api<{ files: { completed: number } }>(
                service,
                'GET',
                `/uploads/${uploadId}`,
              );
              return details.body.files.completed === 1;
            },
            { timeoutMs: 60_000, intervalMs: 50, message: 'the task recorded as completed' },
          );
          const figures = {
            cpuSeconds: (await cpuSeconds(pid)) - cpuBefore,
            peakRssMiB: await peakRssMiB(pid),
          };
          await service.stop();
          printServiceWarnings(service);
          return figures;
        },
      };
    },
  };
}

function rcloneTool(rclone: Peer): Tool {
  return {
    name: `${rclone.name}, copy after the last write`,
    settleSeconds: null,
    async prepare(folder, bucket, proxy) {
      let timing: Promise<{ cpuSeconds: number; peakRssMiB: number }> | undefined;
      return {
        async afterLastWrite() {
          const { args, env } = rclone.copy(folder, bucket, proxy.endpoint);
          timing = timeCommand(rclone.command, args, env);
          timing.catch(() => undefined); // awaited in finish; a failure must not be unhandled meanwhile
        },
        async finish() {
          const { cpuSeconds, peakRssMiB } = await timing!;
          return { cpuSeconds, peakRssMiB };
        },
      };
    },
  };
}

export function growingTools(work: string, rclone: Peer | undefined): Tool[] {
  const tools = [
    serviceTool('service, streaming (defaults)', {}, work),
    serviceTool('service, settle then whole', { STREAM_GROWING_FILES: 'false', APPEND_MODE: 'off' }, work),
  ];
  if (rclone) tools.push(rcloneTool(rclone));
  return tools;
}

export async function runGrowing(tool: Tool, work: string, server: BenchS3Server): Promise<GrowingFigure> {
  const folder = path.join(work, `growing-${Date.now()}`);
  await mkdir(folder, { recursive: true });
  const bucket = await createBucket('bench-growing');
  const proxy = await startFaultProxy(testS3().endpoint);
  try {
    const run = await tool.prepare(folder, bucket, proxy);
    proxy.resetStats();
    const serverCpu = await startServerCpu(server);
    const { totalBytes, chunkBytes, intervalMs } = GROWING;
    const file = path.join(folder, FILE_NAME);
    const written = await startGrowingWrite(file, { totalBytes, chunkBytes, intervalMs }).done;
    await run.afterLastWrite();
    const completeAt = await whenComplete(bucket, written.bytes);
    const serverCpuFigures = await serverCpu.stop();
    const usage = await run.finish();
    const sent = proxy.stats.bodyBytesByOperation;
    const bytesSent = (sent.PutObject ?? 0) + (sent.UploadPart ?? 0);
    return {
      scenario: 'growing',
      tool: tool.name,
      settleSeconds: tool.settleSeconds,
      finalBytes: written.bytes,
      bytesSent,
      sentRatio: bytesSent / written.bytes,
      secondsAfterLastWrite: (completeAt - written.lastWriteAt) / 1000,
      secondsInAll: (completeAt - written.startedAt) / 1000,
      intact: await objectMatches(bucket, written),
      writerMaxLagMs: written.maxLagMs,
      ...usage,
      serverCpu: serverCpuFigures,
    };
  } finally {
    await proxy.close();
    await dropBucket(bucket);
    await rm(folder, { recursive: true, force: true });
  }
}

/** Date.now() when HeadObject first shows the object at its final size. */
async function whenComplete(bucket: string, bytes: number): Promise<number> {
  const client = benchS3Client();
  try {
    const deadline = Date.now() + 10 * 60_000;
    while (Date.now() < deadline) {
      const size = await client
        .send(new HeadObjectCommand({ Bucket: bucket, Key: FILE_NAME }))
        .then((head) => head.ContentLength)
        .catch(() => undefined); // not there yet
      if (size === bytes) return Date.now();
      await sleep(50);
    }
    throw new Error(`s3://${bucket}/${FILE_NAME} not complete at ${bytes} bytes within 10 minutes`);
  } finally {
    client.destroy();
  }
}

async function objectMatches(bucket: string, written: GrowingWriteResult): Promise<boolean> {
  const client = benchS3Client();
  try {
    const object = await client.send(new GetObjectCommand({ Bucket: bucket, Key: FILE_NAME }));
    const sha256 = createHash('sha256');
    for await (const chunk of object.Body as AsyncIterable<Uint8Array>) sha256.update(chunk);
    return sha256.digest('hex') === written.sha256;
  } finally {
    client.destroy();
  }
}

export function growingNote(): string {
  return (
    `${GROWING.describe}; SETTLE_SECONDS=${GROWING.settleSeconds} for both service runs; ` +
    'bytes counted at a proxy (PutObject + UploadPart bodies); completion seen by HeadObject polled every 50 ms'
  );
}

export function growingTable(figures: GrowingFigure[]): string {
  return markdownTable(
    [
      'tool',
      'SETTLE_SECONDS',
      'sent / final size',
      's after last write',
      's in all',
      'intact',
      'writer max lag ms',
      'CPU s',
      'peak RSS MiB',
      'S3 server CPU',
    ],
    figures.map((f) => [
      f.tool,
      f.settleSeconds === null ? '-' : String(f.settleSeconds),
      f.sentRatio.toFixed(3),
      fixed(f.secondsAfterLastWrite, 2),
      fixed(f.secondsInAll, 2),
      f.intact ? 'yes' : 'NO',
      String(f.writerMaxLagMs),
      fixed(f.cpuSeconds, 2),
      fixed(f.peakRssMiB, 0),
      describeServerCpu(f.serverCpu),
    ]),
  );
}
