// The `observe` scenario: what watching the service costs it. The small and the large transfer
// (see transfer.ts), each uploaded by the service with everything off (no metrics collected, no one
// on the event stream) and with everything on: metrics collected and scraped every second, a client
// reading GET /events, and the dashboard open in a headless browser (when Debian's chromium and the
// built dashboard are there). Runs alternate between off and on, so neither always goes first.
// The figure is the service's own CPU (user + system, from /proc) per file and per GiB; the issue's
// target is "on" at most 5% above "off". Before the measured upload, each service (off and on
// alike) uploads a small warm-up folder with its watchers already connected, so that what a
// process pays once (each route's first answer compiles its serializer, the JIT warms up) is not
// counted as a cost per file; the warm-up's own CPU is printed beside the figures.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { waitFor } from '../test/support/poll.js';
import { writeRandomFile } from '../test/support/temp-tree.js';
import { api, type ServiceProcess } from '../test/support/service-process.js';
import { cpuSeconds } from './process-stats.js';
import { fixed, markdownTable, summary } from './table.js';
import { median } from './statistics.js';
import {
  checkBucket,
  compareObjects,
  createBucket,
  createUpload,
  dropBucket,
  printServiceWarnings,
  startBenchService,
  type BucketCheck,
} from './tools.js';
import type { TransferScenario } from './transfer.js';
import { MemoryS3 } from './memory-s3.js';
import { uniqueBucketName } from '../test/support/s3.js';

const GiB = 1024 ** 3;
const CHROMIUM = '/usr/bin/chromium';
const DASHBOARD_BUILT = path.resolve(import.meta.dirname, '../dist/ui/index.html');
const SCRAPE_EVERY_MS = 1000;
const WARM_UP_FILES = 50;

/**
 * What watches the service. off: nothing, and no metrics collected. metrics: the service's
 * defaults (metrics collected), /metrics scraped every second. events: that, and a client reading
 * GET /events. on: that, and the dashboard open in chromium. The middle two say what each part costs.
 */
export const MODES = ['off', 'metrics', 'events', 'on'] as const;
export type Mode = (typeof MODES)[number];

/** Everything off: no metrics collected. The other modes run with the service's defaults. */
const OFF_SETTINGS: Record<string, string> = { METRICS_ENABLED: 'false' };

export interface ObserveRun {
  scenario: TransferScenario['name'];
  mode: Mode;
  round: number;
  seconds: number;
  cpuSeconds: number;
  /** CPU ms per file (small) or CPU s per GiB (large) */
  cpuPerUnit: number;
  /** CPU seconds of the warm-up upload, before the measured one */
  warmUpCpuSeconds: number;
  eventsRead: number;
  scrapes: number;
  dashboard: boolean;
  bucketCheck: string;
}

export interface ObserveResult {
  describe: string;
  /** Where the uploads went. */
  endpoint: string;
  modes: readonly Mode[];
  runs: ObserveRun[];
}

/** What watches the service in an "on" run; stop() says how much it saw. */
interface Watchers {
  /** What the watchers have seen so far. */
  seen(): { eventsRead: number; scrapes: number };
  stop(): Promise<{ eventsRead: number; scrapes: number; dashboard: boolean }>;
}

async function startWatchers(
  service: ServiceProcess,
  mode: Exclude<Mode, 'off'>,
  browser: Browser | undefined,
): Promise<Watchers> {
  const abort = new AbortController();
  let eventsRead = 0;
  let scrapes = 0;
  const reading =
    mode === 'metrics'
      ? undefined
      : (async () => {
          const stream = await fetch(`${service.baseUrl}/events`, { signal: abort.signal });
          if (!stream.ok || !stream.body) throw new Error(`GET /events answered ${stream.status}`);
          const decoder = new TextDecoder();
          for await (const chunk of stream.body) {
            eventsRead += decoder.decode(chunk, { stream: true }).split('\nevent: ').length - 1;
          }
        })().catch((error: unknown) => {
          if (!abort.signal.aborted) console.log(`reading events stopped: ${String(error)}`);
        });
  const scraping = (async () => {
    while (!abort.signal.aborted) {
      const scrape = await fetch(`${service.baseUrl}/metrics`, { signal: abort.signal });
      if (scrape.status !== 200) throw new Error(`GET /metrics answered ${scrape.status}`);
      await scrape.text();
      scrapes += 1;
      await new Promise((resolve) => setTimeout(resolve, SCRAPE_EVERY_MS));
    }
  })().catch((error: unknown) => {
    if (!abort.signal.aborted) console.log(`scraping stopped: ${String(error)}`);
  });
  const page = mode === 'on' && browser ? await browser.newPage() : undefined;
  await page?.goto(`${service.baseUrl}/ui`);
  return {
    seen: () => ({ eventsRead, scrapes }),
    async stop() {
      abort.abort();
      await Promise.all([reading, scraping, page?.close()]);
      return { eventsRead, scrapes, dashboard: page !== undefined };
    },
  };
}

/** Uploads `folder` with `service` and waits until its `files` are completed; returns the upload's id. */
async function uploadAll(
  service: ServiceProcess,
  folder: string,
  bucket: string,
  files: number,
): Promise<string> {
  const uploadId = await createUpload(service, folder, bucket);
  await waitFor(
    async () => {
      const details = await api<{ files: { completed: number } }>(service, 'GET', `/uploads/${uploadId}`);
      return details.body.files.completed === files;
    },
    // Not too often: these reads cost the service too, in every mode, and more the longer a run takes.
    { timeoutMs: 30 * 60_000, intervalMs: 250, message: `${files} files uploaded` },
  );
  return uploadId;
}

/** The warm-up folder: a few small files, uploaded before each measured upload. */
async function makeWarmUp(folder: string): Promise<void> {
  await mkdir(folder, { recursive: true });
  for (let i = 0; i < WARM_UP_FILES; i++) await writeRandomFile(path.join(folder, `w${i}.bin`), 16 * 1024);
}

/** Where the uploads go, and how the bench makes, checks and drops its buckets there. */
interface Target {
  describe: string;
  /** The service's settings that point it there. */
  env: Record<string, string>;
  create(label: string): Promise<string>;
  check(bucket: string, expected: ReadonlyMap<string, number>): Promise<BucketCheck>;
  drop(bucket: string): Promise<void>;
}

export type ObserveEndpoint = 'memory' | 'swift';

/** The in-memory endpoint (the default: the service's own cost shows) or the benchmark's S3 server. */
async function startTarget(endpoint: ObserveEndpoint): Promise<{ target: Target; stop(): Promise<void> }> {
  if (endpoint === 'swift') {
    return {
      target: {
        describe: 'the local S3 server',
        env: {},
        create: createBucket,
        check: checkBucket,
        drop: dropBucket,
      },
      stop: async () => undefined,
    };
  }
  const memory = new MemoryS3();
  const url = await memory.start();
  return {
    target: {
      describe: 'the in-memory S3 endpoint (bench/memory-s3.ts)',
      env: { AWS_ENDPOINT_URL_S3: url },
      create: (label) => {
        const bucket = uniqueBucketName(label);
        memory.createBucket(bucket);
        return Promise.resolve(bucket);
      },
      check: (bucket, expected) => Promise.resolve(compareObjects(memory.objects(bucket), expected)),
      drop: (bucket) => Promise.resolve(memory.dropBucket(bucket)),
    },
    stop: () => memory.stop(),
  };
}

async function uploadOnce(
  scenario: TransferScenario,
  folder: string,
  expected: Map<string, number>,
  mode: Mode,
  work: string,
  browser: Browser | undefined,
  target: Target,
): Promise<Omit<ObserveRun, 'round'>> {
  const databaseFile = path.join(work, `observe-${scenario.name}-${mode}-${Date.now()}.db`);
  const service = await startBenchService(databaseFile, {
    SETTLE_SECONDS: '0',
    ...target.env,
    ...(mode === 'off' ? OFF_SETTINGS : {}),
  });
  const bucket = await target.create(`bench-observe-${scenario.name}`);
  const warmUpBucket = await target.create('bench-observe-warm-up');
  try {
    const watchers = mode === 'off' ? undefined : await startWatchers(service, mode, browser);
    const pid = service.child.pid!;
    const warmUpBefore = await cpuSeconds(pid);
    await uploadAll(service, path.join(work, 'observe-warm-up'), warmUpBucket, WARM_UP_FILES);
    // The dashboard and the scraper have seen the warm-up's end too: one scrape, one redraw.
    await new Promise((resolve) => setTimeout(resolve, mode === 'off' ? 0 : SCRAPE_EVERY_MS));
    const seenBefore = watchers?.seen() ?? { eventsRead: 0, scrapes: 0 };
    const cpuBefore = await cpuSeconds(pid);
    const started = performance.now();
    await uploadAll(service, folder, bucket, expected.size);
    const seconds = (performance.now() - started) / 1000;
    const cpu = (await cpuSeconds(pid)) - cpuBefore;
    const stopped = (await watchers?.stop()) ?? { eventsRead: 0, scrapes: 0, dashboard: false };
    // Only what the measured upload made them see.
    const seen = {
      ...stopped,
      eventsRead: stopped.eventsRead - seenBefore.eventsRead,
      scrapes: stopped.scrapes - seenBefore.scrapes,
    };
    const bytes = [...expected.values()].reduce((sum, size) => sum + size, 0);
    const cpuPerUnit = scenario.name === 'small' ? (cpu * 1000) / expected.size : cpu / (bytes / GiB);
    const check = await target.check(bucket, expected);
    return {
      scenario: scenario.name,
      mode,
      seconds,
      cpuSeconds: cpu,
      cpuPerUnit,
      warmUpCpuSeconds: cpuBefore - warmUpBefore,
      ...seen,
      bucketCheck: check.note,
    };
  } finally {
    await service.stop();
    printServiceWarnings(service);
    await target.drop(bucket);
    await target.drop(warmUpBucket);
  }
}

export async function runObserve(
  scenarios: readonly TransferScenario[],
  work: string,
  rounds: number,
  modes: readonly Mode[] = ['off', 'on'],
  endpoint: ObserveEndpoint = 'memory',
): Promise<ObserveResult> {
  const browser =
    existsSync(CHROMIUM) && existsSync(DASHBOARD_BUILT)
      ? await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
      : undefined;
  if (!browser) console.log('observe: no chromium or no built dashboard: "on" runs without a browser');
  const runs: ObserveRun[] = [];
  await makeWarmUp(path.join(work, 'observe-warm-up'));
  const { target, stop } = await startTarget(endpoint);
  try {
    for (const scenario of scenarios) {
      const folder = path.join(work, `observe-${scenario.name}`);
      const expected = await scenario.make(folder);
      for (let round = 0; round < rounds; round++) {
        // Each round starts with the next mode, so that none always runs first.
        const order = modes.map((_, n) => modes[(n + round) % modes.length]!);
        for (const mode of order) {
          const run = {
            ...(await uploadOnce(scenario, folder, expected, mode, work, browser, target)),
            round: round + 1,
          };
          runs.push(run);
          console.log(JSON.stringify(run));
        }
      }
    }
  } finally {
    await browser?.close();
    await stop();
  }
  return {
    describe: scenarios.map((scenario) => scenario.describe).join('; '),
    endpoint: target.describe,
    modes,
    runs,
  };
}

export function observeTable(result: ObserveResult): string {
  const { modes } = result;
  const watched = modes.filter((mode) => mode !== 'off');
  const rows = [...new Set(result.runs.map((run) => run.scenario))].flatMap((scenario) => {
    const of = (mode: Mode) => result.runs.filter((run) => run.scenario === scenario && run.mode === mode);
    const row = (figure: string, value: (run: ObserveRun) => number, digits: number, versusOff: boolean) => {
      const offMedian = median(of('off').map(value));
      const cells = modes.map((mode) => {
        const values = of(mode).map(value);
        const middle = median(values);
        const versus =
          versusOff && mode !== 'off' && offMedian && middle !== null
            ? ` (${middle >= offMedian ? '+' : ''}${fixed(((middle - offMedian) / offMedian) * 100, 1)}%)`
            : '';
        return summary(values, digits) + versus;
      });
      return [figure, ...cells];
    };
    // The ratio to the "off" run of the same round: runs side by side share the machine's moods.
    const paired = [
      `${scenario}: CPU vs off in the same round`,
      ...modes.map((mode) => {
        if (mode === 'off') return '';
        const ratios = of(mode).flatMap((run) => {
          const off = of('off').find((other) => other.round === run.round);
          return off ? [(run.cpuPerUnit / off.cpuPerUnit - 1) * 100] : [];
        });
        return ratios.length === 0 ? '-' : `${summary(ratios, 1)} %`;
      }),
    ];
    return [
      row(
        `${scenario}: ${scenario === 'small' ? 'CPU ms per file' : 'CPU s per GiB'}`,
        (run) => run.cpuPerUnit,
        3,
        true,
      ),
      paired,
      row(`${scenario}: seconds`, (run) => run.seconds, 2, false),
      row(
        `${scenario}: warm-up (${WARM_UP_FILES} small files), CPU s`,
        (run) => run.warmUpCpuSeconds,
        2,
        false,
      ),
      ...(watched.some((mode) => mode !== 'metrics')
        ? [row(`${scenario}: events read`, (run) => run.eventsRead, 0, false)]
        : []),
      row(`${scenario}: scrapes`, (run) => run.scrapes, 0, false),
    ];
  });
  return markdownTable(['figure', ...modes], rows);
}
