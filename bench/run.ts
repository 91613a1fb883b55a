// Upload benchmark: prints figures, never passes or fails.
//
//   npm run bench                 # every scenario
//   npm run bench -- large        # some: large (one 1 GiB file), small (1,000 files of 16 KiB)
//
// It starts the local S3 server (or uses S3_TEST_ENDPOINT), runs the service as users do (a child
// process with its own SQLite file), and, when rclone is installed, rclone on the same data
// against the same server in the same run, so that the figures can be read as ratios.
import { execFileSync, spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { waitFor } from '../test/support/poll.js';
import { deleteBucket, testS3, testS3Client, uniqueBucketName } from '../test/support/s3.js';
import { api, startService } from '../test/support/service-process.js';
import { makeTempDir, removeTempDir, writeRandomFile } from '../test/support/temp-tree.js';
import { cpuSeconds, peakRssMiB } from './process-stats.js';
import { startBenchS3Server } from './s3-server.js';

const MiB = 1024 * 1024;

interface Scenario {
  name: string;
  describe: string;
  bytes: number;
  files: number;
  make(folder: string): Promise<void>;
}

interface Figure {
  scenario: string;
  tool: string;
  seconds: number;
  mibPerSecond: number;
  filesPerSecond: number;
  cpuSeconds: number | null;
  peakRssMiB: number | null;
}

const SCENARIOS: Scenario[] = [
  {
    name: 'large',
    describe: 'one file of 1 GiB',
    bytes: 1024 * MiB,
    files: 1,
    make: async (folder) => {
      await writeRandomFile(path.join(folder, 'large.bin'), 1024 * MiB);
    },
  },
  {
    name: 'small',
    describe: '1,000 files of 16 KiB in 10 folders',
    bytes: 1000 * 16 * 1024,
    files: 1000,
    make: async (folder) => {
      for (let dir = 0; dir < 10; dir++) {
        await mkdir(path.join(folder, `d${dir}`), { recursive: true });
        for (let i = 0; i < 100; i++)
          await writeRandomFile(path.join(folder, `d${dir}`, `f${i}.bin`), 16 * 1024);
      }
    },
  },
];

function hasCommand(name: string): boolean {
  try {
    execFileSync('which', [name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function createBucket(label: string): Promise<string> {
  const client = testS3Client();
  const bucket = uniqueBucketName(label);
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  client.destroy();
  return bucket;
}

async function dropBucket(bucket: string): Promise<void> {
  const client = testS3Client();
  await deleteBucket(client, bucket);
  client.destroy();
}

async function runService(scenario: Scenario, folder: string, work: string): Promise<Figure> {
  const bucket = await createBucket(`bench-${scenario.name}`);
  const service = await startService({
    databaseFile: path.join(work, `service-${scenario.name}-${Date.now()}.db`),
    env: {
      SETTLE_SECONDS: '0',
      RESCAN_INTERVAL_SECONDS: '600',
      LOG_LEVEL: 'info',
      RETRY_BASE_DELAY_MS: '500',
    },
  });
  const pid = service.child.pid!;
  const cpuBefore = await cpuSeconds(pid);
  const started = performance.now();
  const created = await api<{ upload_id: string }>(service, 'POST', '/uploads', {
    source_folder: folder,
    destination_bucket: bucket,
  });
  if (created.status !== 201) throw new Error(`POST /uploads answered ${created.status}`);
  await waitFor(
    async () => {
      const details = await api<{ files: { completed: number; total: number; failed: number } }>(
        service,
        'GET',
        `/uploads/${created.body.upload_id}`,
      );
      const { completed, failed } = details.body.files;
      if (failed > 0) throw new Error(`${failed} files failed`);
      return completed === scenario.files;
    },
    { timeoutMs: 30 * 60_000, intervalMs: 50, message: `${scenario.files} files uploaded` },
  );
  const seconds = (performance.now() - started) / 1000;
  const figure = figureOf(
    scenario,
    'service',
    seconds,
    (await cpuSeconds(pid)) - cpuBefore,
    await peakRssMiB(pid),
  );
  await service.stop();
  await dropBucket(bucket);
  return figure;
}

/** rclone with the same concurrency and part size as the service's defaults. */
async function runRclone(scenario: Scenario, folder: string): Promise<Figure> {
  const s3 = testS3();
  const bucket = await createBucket(`rclone-${scenario.name}`);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    RCLONE_CONFIG_BENCH_TYPE: 's3',
    RCLONE_CONFIG_BENCH_PROVIDER: 'Other',
    RCLONE_CONFIG_BENCH_ENDPOINT: s3.endpoint,
    RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: s3.accessKeyId,
    RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: s3.secretAccessKey,
    RCLONE_CONFIG_BENCH_REGION: s3.region,
    RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE: 'true',
  };
  delete env.AWS_CA_BUNDLE; // rclone refuses to start when it points at a bundle it cannot use
  const args = ['copy', folder, `bench:${bucket}`, '--transfers', '8', '--s3-upload-concurrency', '4'];
  args.push('--s3-chunk-size', '8M', '--s3-upload-cutoff', '16M');
  const timing = await timeCommand('rclone', args, env);
  await dropBucket(bucket);
  return figureOf(scenario, 'rclone', timing.seconds, timing.cpuSeconds, timing.peakRssMiB);
}

/** Runs a command under /usr/bin/time for its wall time, CPU and peak memory. */
function timeCommand(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ seconds: number; cpuSeconds: number; peakRssMiB: number }> {
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

function figureOf(
  scenario: Scenario,
  tool: string,
  seconds: number,
  cpu: number | null,
  rss: number | null,
): Figure {
  return {
    scenario: scenario.name,
    tool,
    seconds,
    mibPerSecond: scenario.bytes / MiB / seconds,
    filesPerSecond: scenario.files / seconds,
    cpuSeconds: cpu,
    peakRssMiB: rss,
  };
}

function printTable(figures: Figure[]): void {
  const fixed = (value: number | null, digits = 1): string => (value === null ? '-' : value.toFixed(digits));
  console.log(
    '\n| scenario | tool | seconds | MiB/s | files/s | CPU s | peak RSS MiB | ratio to rclone (speed) |',
  );
  console.log('|---|---|---|---|---|---|---|---|');
  for (const figure of figures) {
    const rclone = figures.find((other) => other.scenario === figure.scenario && other.tool === 'rclone');
    const ratio = rclone ? (rclone.seconds / figure.seconds).toFixed(2) + '×' : '-';
    console.log(
      `| ${figure.scenario} | ${figure.tool} | ${fixed(figure.seconds, 2)} | ${fixed(figure.mibPerSecond)} | ${fixed(figure.filesPerSecond)} | ${fixed(figure.cpuSeconds, 2)} | ${fixed(figure.peakRssMiB, 0)} | ${ratio} |`,
    );
  }
}

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const scenarios = wanted.length ? SCENARIOS.filter((s) => wanted.includes(s.name)) : SCENARIOS;
  if (scenarios.length === 0)
    throw new Error(`unknown scenario; choose from ${SCENARIOS.map((s) => s.name).join(', ')}`);
  const server = await startBenchS3Server();
  const work = await makeTempDir('bench');
  const figures: Figure[] = [];
  const withRclone = hasCommand('rclone');
  try {
    console.log(
      `S3 server: ${server.endpoint}; ${os.cpus().length} cores; Node ${process.version}; rclone: ${withRclone ? 'yes' : 'not installed'}`,
    );
    for (const scenario of scenarios) {
      const folder = path.join(work, scenario.name);
      await scenario.make(folder);
      console.log(`\n${scenario.name}: ${scenario.describe}`);
      // Alternate the tools so that neither always runs on a warmer server.
      figures.push(await runService(scenario, folder, work));
      if (withRclone) figures.push(await runRclone(scenario, folder));
      console.log(JSON.stringify(figures.filter((f) => f.scenario === scenario.name)));
    }
    printTable(figures);
    const output = path.join(process.cwd(), 'bench-results.json');
    await writeFile(
      output,
      JSON.stringify(
        { date: new Date().toISOString(), node: process.version, cores: os.cpus().length, figures },
        null,
        2,
      ),
    );
    console.log(`\nwritten to ${output}`);
  } finally {
    await removeTempDir(work);
    await server.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
