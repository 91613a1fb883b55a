// `existing`: a folder whose objects are all in the bucket already (a cancelled upload created
// again, a database lost), uploaded again: seconds until nothing is left to do, the service's CPU,
// and the requests each tool sent, counted at a proxy in front of the S3 server. The service as a
// new one-shot upload with if_exists skip_identical (its default), `aws s3 sync` and `rclone copy`
// at their defaults, on the same data, in the same run. The bucket is filled once, by the service.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { startFaultProxy, type FaultProxy } from '../test/support/fault-proxy.js';
import { waitFor } from '../test/support/poll.js';
import { api, type ServiceProcess } from '../test/support/service-process.js';
import type { Peer } from './peers.js';
import { cpuSeconds } from './process-stats.js';
import type { BenchS3Server } from './s3-server.js';
import { markdownTable } from './table.js';
import { createBucket, dropBucket, printServiceWarnings, startBenchService, timeCommand } from './tools.js';

export const EXISTING = {
  files: Number(process.env.EXISTING_FILES ?? 10_000),
  folders: 100,
  bytes: 4096,
  get describe(): string {
    return `${this.files.toLocaleString('en')} files of ${this.bytes / 1024} KiB in ${this.folders} folders, all already in the bucket`;
  },
};

export interface ExistingFigure {
  tool: string;
  seconds: number;
  /** The tool's own CPU, user + system. */
  cpuSeconds: number;
  /** Requests the S3 server got, by operation. */
  requests: Record<string, number>;
  /** Bytes of request bodies that reached the server: what was sent again. */
  bytesSent: number;
}

export interface ExistingResult {
  describe: string;
  /** Seconds the service took to fill the bucket first (not a comparison). */
  fillSeconds: number;
  figures: ExistingFigure[];
}

async function writeFolder(folder: string): Promise<void> {
  const content = Buffer.alloc(EXISTING.bytes, 'x');
  for (let file = 0; file < EXISTING.files; file++) {
    const sub = path.join(folder, `d${String(file % EXISTING.folders).padStart(3, '0')}`);
    if (file < EXISTING.folders) await mkdir(sub, { recursive: true });
    // Each file its own bytes, so that a wrong match would show.
    content.write(String(file).padStart(10, '0'), 0);
    await writeFile(path.join(sub, `f${file}.bin`), content);
  }
}

/** A one-shot upload of `folder` into `bucket` until completed: seconds and the service's CPU. */
async function uploadOnce(
  service: ServiceProcess,
  folder: string,
  bucket: string,
  ifExists: string,
): Promise<{ seconds: number; cpuSeconds: number }> {
  const pid = service.child.pid!;
  const cpuBefore = await cpuSeconds(pid);
  const started = performance.now();
  const created = await api<{ upload_id: string }>(service, 'POST', '/uploads', {
    source_folder: folder,
    destination_bucket: bucket,
    watch: false,
    if_exists: ifExists,
  });
  if (created.status !== 201) throw new Error(`POST /uploads answered ${created.status}`);
  const uploadId = created.body.upload_id;
  const done = await waitFor(
    async () => {
      const details = await api<{ status: string; files: { failed: number } }>(
        service,
        'GET',
        `/uploads/${uploadId}`,
      );
      if (details.body.files.failed > 0) return { failed: details.body.files.failed };
      return details.body.status === 'completed' && { failed: 0 };
    },
    { timeoutMs: 30 * 60_000, intervalMs: 50, message: `${uploadId} completed` },
  );
  if (done.failed > 0) throw new Error(`${done.failed} files failed`);
  return { seconds: (performance.now() - started) / 1000, cpuSeconds: (await cpuSeconds(pid)) - cpuBefore };
}

function counted(proxy: FaultProxy): Pick<ExistingFigure, 'requests' | 'bytesSent'> {
  const requests: Record<string, number> = {};
  for (const record of proxy.log) requests[record.operation] = (requests[record.operation] ?? 0) + 1;
  const bytesSent = Object.values(proxy.stats.bodyBytesForwarded).reduce((sum, bytes) => sum + bytes, 0);
  return { requests, bytesSent };
}

async function withService<T>(
  work: string,
  name: string,
  endpoint: string,
  use: (service: ServiceProcess) => Promise<T>,
): Promise<T> {
  const service = await startBenchService(path.join(work, `${name}-${Date.now()}.db`), {
    SETTLE_SECONDS: '0',
    AWS_ENDPOINT_URL_S3: endpoint,
  });
  try {
    return await use(service);
  } finally {
    await service.stop();
    printServiceWarnings(service);
  }
}

export async function runExisting(
  work: string,
  server: BenchS3Server,
  peers: readonly Peer[],
): Promise<ExistingResult> {
  const folder = path.join(work, 'existing');
  await writeFolder(folder);
  const bucket = await createBucket('existing');
  const proxy = await startFaultProxy(server.endpoint);
  try {
    const fill = await withService(work, 'fill', server.endpoint, (service) =>
      uploadOnce(service, folder, bucket, 'overwrite'),
    );
    console.log(`filled the bucket in ${fill.seconds.toFixed(1)} s`);
    const figures: ExistingFigure[] = [];
    proxy.resetStats();
    const service = await withService(work, 'again', proxy.endpoint, (started) => {
      proxy.resetStats(); // the service's start-up (its orphan sweep) is not the comparison
      return uploadOnce(started, folder, bucket, 'skip_identical');
    });
    figures.push({ tool: 'service', ...service, ...counted(proxy) });
    console.log(JSON.stringify(figures.at(-1)));
    // aws first: rclone, finding no modification time of its own on the objects, may rewrite
    // their metadata (a server-side copy per object), which would change what aws sees.
    for (const peer of [...peers].sort((a) => (a.command === 'rclone' ? 1 : -1))) {
      proxy.resetStats();
      const { args, env } = syncCommand(peer, folder, bucket, proxy.endpoint);
      const timing = await timeCommand(peer.command, args, env);
      figures.push({
        tool: peer.name,
        seconds: timing.seconds,
        cpuSeconds: timing.cpuSeconds,
        ...counted(proxy),
      });
      console.log(JSON.stringify(figures.at(-1)));
    }
    return { describe: EXISTING.describe, fillSeconds: fill.seconds, figures };
  } finally {
    await proxy.close();
    await dropBucket(bucket);
  }
}

/** The peer's command, as a sync: `aws s3 sync` for aws (cp copies everything), `rclone copy` as it is. */
function syncCommand(
  peer: Peer,
  folder: string,
  bucket: string,
  endpoint: string,
): { args: string[]; env: NodeJS.ProcessEnv } {
  const { args, env } = peer.copy(folder, bucket, endpoint);
  if (peer.command === 'rclone') return { args, env };
  const cp = args.indexOf('cp');
  const sync = [...args];
  sync.splice(cp, 2, 'sync'); // 's3 cp --recursive' → 's3 sync'
  return { args: sync, env };
}

const SHOWN_OPERATIONS = ['ListObjectsV2', 'HeadObject', 'PutObject', 'CopyObject', 'GetObject'];

export function existingTable(result: ExistingResult): string {
  const header = ['figure', ...result.figures.map((figure) => figure.tool)];
  const row = (name: string, value: (figure: ExistingFigure) => string) => [
    name,
    ...result.figures.map(value),
  ];
  const total = (figure: ExistingFigure) => Object.values(figure.requests).reduce((sum, n) => sum + n, 0);
  const others = (figure: ExistingFigure) =>
    total(figure) - SHOWN_OPERATIONS.reduce((sum, operation) => sum + (figure.requests[operation] ?? 0), 0);
  return markdownTable(header, [
    row('seconds until nothing is left to do', (figure) => figure.seconds.toFixed(2)),
    row('CPU seconds of the tool', (figure) => figure.cpuSeconds.toFixed(2)),
    row('S3 requests', (figure) => String(total(figure))),
    ...SHOWN_OPERATIONS.map((operation) =>
      row(`  ${operation}`, (figure) => String(figure.requests[operation] ?? 0)),
    ),
    row('  other', (figure) => String(others(figure))),
    row('bytes sent in request bodies', (figure) => String(figure.bytesSent)),
  ]);
}
