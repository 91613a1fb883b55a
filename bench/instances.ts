// The `instances` scenario: small files uploaded by 1, 2 and 3 instances of the service sharing one
// PostgreSQL schema, to the in-memory endpoint (bench/memory-s3.ts, in this process), so that the
// service's own cost shows. The upload is created on the first instance; every instance claims its
// files. Prints files/s and the CPU share of each process: on this machine's two cores the
// instances, PostgreSQL and the endpoint share the same CPUs, so the total cannot grow much; what
// the figures project for N hosts is in docs/deployment.md.
//
//   npm run bench -- instances
//   INSTANCES_FILES=2000 CLAIMS_INSTANCES=1,2,3 BENCH_POSTGRES_URL=postgres://…
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ServiceProcess } from '../test/support/service-process.js';
import { admin, CLAIMS, postgresCpuSeconds, withSchema } from './claims.js';
import { MemoryS3 } from './memory-s3.js';
import { cpuSeconds } from './process-stats.js';
import { fixed, markdownTable } from './table.js';
import { createUpload, printServiceWarnings, startBenchService, waitUntilUploaded } from './tools.js';
import { writeSmallFiles } from './transfer.js';

export const INSTANCES = {
  files: Number(process.env.INSTANCES_FILES ?? 2000),
  counts: CLAIMS.instances,
  get describe(): string {
    return `${this.files.toLocaleString('en')} files of 16 KiB to the in-memory endpoint, 1 to ${Math.max(...this.counts)} instances on one PostgreSQL schema`;
  },
};

export interface InstancesFigure {
  instances: number;
  seconds: number;
  filesPerSecond: number;
  /** Each instance's CPU, as a share of one core over the run. */
  cpuPercentEach: number[];
  cpuMsPerFile: number;
  postgresCpuPercent: number;
  endpointCpuPercent: number;
  objects: number;
}

export interface InstancesResult {
  describe: string;
  figures: InstancesFigure[];
}

export async function runInstances(work: string): Promise<InstancesResult> {
  const folder = path.join(work, 'instances');
  await writeSmallFiles(folder, INSTANCES.files);
  const memory = new MemoryS3();
  const endpoint = await memory.start();
  const figures: InstancesFigure[] = [];
  try {
    for (const count of INSTANCES.counts) {
      const schema = `bench_instances_${randomBytes(4).toString('hex')}`;
      const bucket = `instances-${count}-${randomBytes(3).toString('hex')}`;
      memory.createBucket(bucket);
      const services: ServiceProcess[] = [];
      try {
        for (let i = 0; i < count; i++) {
          services.push(
            await startBenchService(path.join(work, `unused-${schema}-${i}.db`), {
              DATABASE_URL: withSchema(CLAIMS.url, schema),
              AWS_ENDPOINT_URL_S3: endpoint,
              SETTLE_SECONDS: '0',
            }),
          );
        }
        const pids = services.map((service) => service.child.pid!);
        const cpuBefore = await Promise.all(pids.map((pid) => cpuSeconds(pid)));
        const postgresBefore = await postgresCpuSeconds();
        const endpointBefore = process.cpuUsage();
        const started = performance.now();
        const uploadId = await createUpload(services[0]!, folder, bucket);
        await waitUntilUploaded(services[0]!, uploadId, INSTANCES.files);
        const seconds = (performance.now() - started) / 1000;
        const cpu = (await Promise.all(pids.map((pid) => cpuSeconds(pid)))).map(
          (after, i) => after - cpuBefore[i]!,
        );
        const endpointCpu = process.cpuUsage(endpointBefore);
        figures.push({
          instances: count,
          seconds,
          filesPerSecond: INSTANCES.files / seconds,
          cpuPercentEach: cpu.map((used) => (100 * used) / seconds),
          cpuMsPerFile: (1000 * cpu.reduce((sum, used) => sum + used, 0)) / INSTANCES.files,
          postgresCpuPercent: (100 * ((await postgresCpuSeconds()) - postgresBefore)) / seconds,
          endpointCpuPercent: (100 * (endpointCpu.user + endpointCpu.system)) / 1e6 / seconds,
          objects: memory.objects(bucket).size,
        });
        console.log(`instances: ${JSON.stringify(figures.at(-1))}`);
      } finally {
        for (const service of services) {
          await service.stop();
          printServiceWarnings(service);
        }
        memory.dropBucket(bucket);
        await admin(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      }
    }
  } finally {
    await memory.stop();
  }
  return { describe: INSTANCES.describe, figures };
}

export function instancesTable(result: InstancesResult): string {
  return markdownTable(
    [
      'instances',
      'files/s',
      'seconds',
      'CPU % of a core, each instance',
      'service CPU ms per file (all instances)',
      'PostgreSQL CPU %',
      'endpoint CPU %',
      'objects',
    ],
    result.figures.map((figure) => [
      String(figure.instances),
      fixed(figure.filesPerSecond, 0),
      fixed(figure.seconds, 2),
      figure.cpuPercentEach.map((share) => fixed(share, 0)).join(', '),
      fixed(figure.cpuMsPerFile, 2),
      fixed(figure.postgresCpuPercent, 0),
      fixed(figure.endpointCpuPercent, 0),
      String(figure.objects),
    ]),
  );
}
