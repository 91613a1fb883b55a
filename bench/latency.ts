// The `latency` scenario: files created one at a time, a second apart, in a folder the service
// watches with SETTLE_SECONDS=0.5 (its other settings at their defaults), and for each the time from
// the file's close to its object existing in S3. Existence is seen on the S3 server itself: HEAD
// every ~20 ms for each file written and not yet seen (a few at once), timed at the answer, so the
// figure is an upper bound by one HEAD. The service's own completed_at is given beside it.
//
// rclone and aws have no watch mode: a one-shot copy takes a file as soon as it is run, so the
// figure would measure when it is run, not the tool. They get '-'.
//
//   LATENCY_FILES=200   how many files (one a second)
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { waitFor } from '../test/support/poll.js';
import { testS3Client } from '../test/support/s3.js';
import { api, type ServiceProcess } from '../test/support/service-process.js';
import type { Peer } from './peers.js';
import { cpuSeconds, peakRssMiB } from './process-stats.js';
import type { BenchS3Server } from './s3-server.js';
import { describeServerCpu, startServerCpu, type ServerCpu } from './server-cpu.js';
import { spreadOf, type Spread } from './statistics.js';
import { fixed, markdownTable } from './table.js';
import { createBucket, dropBucket, printServiceWarnings, startBenchService, startWatching } from './tools.js';

const KiB = 1024;

export const LATENCY = {
  files: Number(process.env.LATENCY_FILES ?? 200),
  intervalMs: 1000,
  fileBytes: 64 * KiB,
  settleSeconds: 0.5,
  pollIntervalMs: 20,
  headsAtOnce: 8,
};

const NOT_APPLICABLE = 'no watch mode: a one-shot copy would measure when it is run, not the tool';

export interface LatencyResult {
  scenario: 'latency';
  describe: string;
  files: number;
  settleSeconds: number;
  targets: { p50Seconds: number; p99Seconds: number };
  /** close → the object exists in S3 (HEAD on the server) */
  s3Seconds: Spread;
  /** close → the service's completed_at */
  serviceRecordedSeconds: Spread;
  /** files whose object was not seen within a minute of the last write */
  notSeen: number;
  /** how late the latest write was against its schedule */
  writerMaxLagMs: number;
  headRequests: number;
  cpuSeconds: number;
  peakRssMiB: number;
  /** the S3 server over the writes and the wait for the last object, HEAD polling included */
  serverCpu: ServerCpu | null;
  peers: Record<string, string>;
}

/** Polls HEAD for the files written and not yet seen, and notes when each first exists at its size. */
class ExistencePoller {
  private readonly expected = new Map<string, number>();
  readonly seenAt = new Map<string, number>();
  headRequests = 0;
  private running = true;
  private readonly loop: Promise<void>;

  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
  ) {
    this.loop = this.run();
  }

  expect(key: string, size: number): void {
    this.expected.set(key, size);
  }

  get outstanding(): number {
    return this.expected.size;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  private async run(): Promise<void> {
    while (this.running) {
      const keys = [...this.expected.keys()];
      for (let i = 0; i < keys.length; i += LATENCY.headsAtOnce) {
        await Promise.all(keys.slice(i, i + LATENCY.headsAtOnce).map((key) => this.probe(key)));
      }
      await sleep(LATENCY.pollIntervalMs);
    }
  }

  private async probe(key: string): Promise<void> {
    this.headRequests++;
    const size = await this.client
      .send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }))
      .then((head) => head.ContentLength)
      .catch(() => undefined); // not there yet
    if (size !== undefined && size === this.expected.get(key)) {
      this.seenAt.set(key, Date.now());
      this.expected.delete(key);
    }
  }
}

export async function runLatency(work: string, server: BenchS3Server, peers: Peer[]): Promise<LatencyResult> {
  const folder = path.join(work, 'latency');
  const bucket = await createBucket('bench-latency');
  const service = await startBenchService(path.join(work, `service-latency-${Date.now()}.db`), {
    SETTLE_SECONDS: String(LATENCY.settleSeconds),
  });
  const client = testS3Client();
  try {
    await mkdir(folder, { recursive: true });
    const uploadId = await startWatching(service, folder, bucket);
    const pid = service.child.pid!;
    const cpuBefore = await cpuSeconds(pid);
    const serverCpu = await startServerCpu(server);
    const poller = new ExistencePoller(client, bucket);
    const closedAt = new Map<string, number>();
    let writerMaxLagMs = 0;
    const start = Date.now();
    for (let i = 0; i < LATENCY.files; i++) {
      const due = start + i * LATENCY.intervalMs;
      await sleep(Math.max(0, due - Date.now())); // the schedule of the scenario: one file a second
      writerMaxLagMs = Math.max(writerMaxLagMs, Date.now() - due);
      const key = `f${String(i).padStart(4, '0')}.bin`;
      await writeFile(path.join(folder, key), randomBytes(LATENCY.fileBytes));
      closedAt.set(key, Date.now());
      poller.expect(key, LATENCY.fileBytes);
      if ((i + 1) % 50 === 0) console.log(`latency: ${i + 1} of ${LATENCY.files} files written`);
    }
    await waitFor(() => poller.outstanding === 0, {
      timeoutMs: 60_000,
      intervalMs: 50,
      message: 'every object in S3',
    }).catch((error: unknown) => console.log(`latency: ${(error as Error).message}`));
    await poller.stop();
    const cpu = (await cpuSeconds(pid)) - cpuBefore;
    const serverCpuFigures = await serverCpu.stop();
    const completedAt = await serviceCompletedAt(service, uploadId);
    const s3Latencies: number[] = [];
    const serviceLatencies: number[] = [];
    for (const [key, closed] of closedAt) {
      const seen = poller.seenAt.get(key);
      if (seen !== undefined) s3Latencies.push((seen - closed) / 1000);
      const recorded = completedAt.get(key);
      if (recorded !== undefined) serviceLatencies.push((recorded - closed) / 1000);
    }
    const { settleSeconds } = LATENCY;
    return {
      scenario: 'latency',
      describe: `${LATENCY.files} files of ${LATENCY.fileBytes / KiB} KiB created one a second`,
      files: LATENCY.files,
      settleSeconds,
      targets: { p50Seconds: settleSeconds + 0.2, p99Seconds: settleSeconds + 1 },
      s3Seconds: spreadOf(s3Latencies),
      serviceRecordedSeconds: spreadOf(serviceLatencies),
      notSeen: LATENCY.files - s3Latencies.length,
      writerMaxLagMs,
      headRequests: poller.headRequests,
      cpuSeconds: cpu,
      peakRssMiB: await peakRssMiB(pid),
      serverCpu: serverCpuFigures,
      peers: Object.fromEntries(peers.map((peer) => [peer.name, `not applicable: ${NOT_APPLICABLE}`])),
    };
  } finally {
    client.destroy();
    await service.stop();
    printServiceWarnings(service);
    await dropBucket(bucket);
  }
}

/** The service's completed_at of each file, by relative path, in ms since the epoch. */
async function serviceCompletedAt(service: ServiceProcess, uploadId: string): Promise<Map<string, number>> {
  const completedAt = new Map<string, number>();
  let cursor: string | null = null;
  do {
    const query: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
    const page = await api<{
      items: { relative_path: string; completed_at: string | null }[];
      next_cursor: string | null;
    }>(service, 'GET', `/uploads/${uploadId}/files?limit=1000${query}`);
    for (const item of page.body.items)
      if (item.completed_at) completedAt.set(item.relative_path, Date.parse(item.completed_at));
    cursor = page.body.next_cursor;
  } while (cursor);
  return completedAt;
}

export function latencyTable(result: LatencyResult): string {
  const peers = Object.keys(result.peers);
  const seconds = (value: number | null) => fixed(value, 2);
  const row = (label: string, value: string, target = '') => [label, value, ...peers.map(() => '-'), target];
  const { s3Seconds: s3, serviceRecordedSeconds: recorded, targets } = result;
  return markdownTable(
    ['figure', 'service', ...peers, 'target'],
    [
      row('p50 s, file closed → object in S3', seconds(s3.p50), `≤ ${seconds(targets.p50Seconds)}`),
      row('p99 s, file closed → object in S3', seconds(s3.p99), `≤ ${seconds(targets.p99Seconds)}`),
      row('max s, file closed → object in S3', seconds(s3.max)),
      row(
        'p50 / p99 / max s, closed → completed_at',
        [recorded.p50, recorded.p99, recorded.max].map(seconds).join(' / '),
      ),
      row('objects not seen within 60 s', String(result.notSeen), '0'),
      row('service CPU s (whole scenario)', fixed(result.cpuSeconds, 2)),
      row('service peak RSS MiB', fixed(result.peakRssMiB, 0)),
      row('S3 server CPU (HEAD polling included)', describeServerCpu(result.serverCpu)),
    ],
  );
}
