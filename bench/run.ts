// Upload benchmark: prints figures, never passes or fails.
//
//   npm run bench                 # every scenario
//   npm run bench -- large        # some: large (one 1 GiB file), small (1,000 files of 16 KiB),
//                                 # growing (a file written at a steady rate: see growing.ts)
//
// It starts the local S3 server (or uses S3_TEST_ENDPOINT), runs the service as users do (a child
// process with its own SQLite file), and, when rclone is installed, rclone on the same data
// against the same server in the same run, so that the figures can be read as ratios.
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from '../test/support/poll.js';
import { api, startService } from '../test/support/service-process.js';
import { makeTempDir, removeTempDir, writeRandomFile } from '../test/support/temp-tree.js';
import { GROWING, growingTools, printGrowingTable, runGrowing, type GrowingFigure } from './growing.js';
import { cpuSeconds, peakRssMiB } from './process-stats.js';
import { startBenchS3Server } from './s3-server.js';
import { createBucket, dropBucket, hasCommand, rcloneCopy, timeCommand } from './tools.js';

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
  const bucket = await createBucket(`rclone-${scenario.name}`);
  const { args, env } = rcloneCopy(folder, bucket);
  const timing = await timeCommand('rclone', args, env);
  await dropBucket(bucket);
  return figureOf(scenario, 'rclone', timing.seconds, timing.cpuSeconds, timing.peakRssMiB);
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
  const known = [...SCENARIOS.map((s) => s.name), 'growing'];
  const unknown = wanted.filter((name) => !known.includes(name));
  if (unknown.length > 0)
    throw new Error(`unknown scenario ${unknown.join(', ')}; choose from ${known.join(', ')}`);
  const scenarios = wanted.length ? SCENARIOS.filter((s) => wanted.includes(s.name)) : SCENARIOS;
  const withGrowing = wanted.length === 0 || wanted.includes('growing');
  const server = await startBenchS3Server();
  const work = await makeTempDir('bench');
  const figures: Figure[] = [];
  const growing: GrowingFigure[] = [];
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
    if (withGrowing) {
      console.log(`\ngrowing: ${GROWING.describe}; SETTLE_SECONDS=${GROWING.settleSeconds}`);
      for (const tool of growingTools(work, withRclone)) {
        growing.push(await runGrowing(tool, work));
        console.log(JSON.stringify(growing.at(-1)));
      }
    }
    if (figures.length > 0) printTable(figures);
    if (growing.length > 0) printGrowingTable(growing);
    const output = path.join(process.cwd(), 'bench-results.json');
    await writeFile(
      output,
      JSON.stringify(
        {
          date: new Date().toISOString(),
          node: process.version,
          cores: os.cpus().length,
          figures,
          growing,
        },
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
