// The `observe` scenario: what watching the service costs it. The small and the large transfer
// (see transfer.ts), each uploaded by the service with everything off (no metrics collected, no one
// on the event stream) and with everything on: metrics collected and scraped every second, a client
// reading GET /events, and the dashboard open in a headless browser (when Debian's chromium and the
// built dashboard are there). Runs alternate between off and on, so neither always goes first.
// The figure is the service's own CPU (user + system, from /proc) per file and per GiB; the issue's
// target is "on" at most 5% above "off".
import { existsSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { waitFor } from '../test/support/poll.js';
import { api, type ServiceProcess } from '../test/support/service-process.js';
import { cpuSeconds } from './process-stats.js';
import { fixed, markdownTable, summary } from './table.js';
import { median } from './statistics.js';
import {
  checkBucket,
  createBucket,
  createUpload,
  dropBucket,
  printServiceWarnings,
  startBenchService,
} from './tools.js';
import type { TransferScenario } from './transfer.js';

const GiB = 1024 ** 3;
const CHROMIUM = '/usr/bin/chromium';
const DASHBOARD_BUILT = path.resolve(import.meta.dirname, '../dist/ui/index.html');
const SCRAPE_EVERY_MS = 1000;

type Mode = 'off' | 'on';

/** Everything off: no metrics collected. "On" is the service's default. */
const OFF_SETTINGS: Record<string, string> = { METRICS_ENABLED: 'false' };

export interface ObserveRun {
  scenario: TransferScenario['name'];
  mode: Mode;
  round: number;
  seconds: number;
  cpuSeconds: number;
  /** CPU ms per file (small) or CPU s per GiB (large) */
  cpuPerUnit: number;
  eventsRead: number;
  scrapes: number;
  dashboard: boolean;
  bucketCheck: string;
}

export interface ObserveResult {
  describe: string;
  runs: ObserveRun[];
}

/** What watches the service in an "on" run; stop() says how much it saw. */
interface Watchers {
  stop(): Promise<{ eventsRead: number; scrapes: number; dashboard: boolean }>;
}

async function startWatchers(service: ServiceProcess, browser: Browser | undefined): Promise<Watchers> {
  const abort = new AbortController();
  let eventsRead = 0;
  let scrapes = 0;
  const stream = await fetch(`${service.baseUrl}/events`, { signal: abort.signal });
  if (!stream.ok || !stream.body) throw new Error(`GET /events answered ${stream.status}`);
  const reading = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of stream.body!) {
      eventsRead += decoder.decode(chunk, { stream: true }).split('\nevent: ').length - 1;
    }
  })().catch(() => undefined);
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
  const page = browser && (await browser.newPage());
  await page?.goto(`${service.baseUrl}/ui`);
  return {
    async stop() {
      abort.abort();
      await Promise.all([reading, scraping, page?.close()]);
      return { eventsRead, scrapes, dashboard: page !== undefined };
    },
  };
}

async function uploadOnce(
  scenario: TransferScenario,
  folder: string,
  expected: Map<string, number>,
  mode: Mode,
  work: string,
  browser: Browser | undefined,
): Promise<Omit<ObserveRun, 'round'>> {
  const databaseFile = path.join(work, `observe-${scenario.name}-${mode}-${Date.now()}.db`);
  const service = await startBenchService(databaseFile, {
    SETTLE_SECONDS: '0',
    ...(mode === 'off' ? OFF_SETTINGS : {}),
  });
  const bucket = await createBucket(`bench-observe-${scenario.name}`);
  try {
    const watchers = mode === 'on' ? await startWatchers(service, browser) : undefined;
    const pid = service.child.pid!;
    const cpuBefore = await cpuSeconds(pid);
    const started = performance.now();
    const uploadId = await createUpload(service, folder, bucket);
    await waitFor(
      async () => {
        const details = await api<{ files: { completed: number } }>(service, 'GET', `/uploads/${uploadId}`);
        return details.body.files.completed === expected.size;
      },
      { timeoutMs: 30 * 60_000, intervalMs: 50, message: `${expected.size} files uploaded` },
    );
    const seconds = (performance.now() - started) / 1000;
    const cpu = (await cpuSeconds(pid)) - cpuBefore;
    const seen = (await watchers?.stop()) ?? { eventsRead: 0, scrapes: 0, dashboard: false };
    const bytes = [...expected.values()].reduce((sum, size) => sum + size, 0);
    const cpuPerUnit = scenario.name === 'small' ? (cpu * 1000) / expected.size : cpu / (bytes / GiB);
    const check = await checkBucket(bucket, expected);
    return {
      scenario: scenario.name,
      mode,
      seconds,
      cpuSeconds: cpu,
      cpuPerUnit,
      ...seen,
      bucketCheck: check.note,
    };
  } finally {
    await service.stop();
    printServiceWarnings(service);
    await dropBucket(bucket);
  }
}

export async function runObserve(
  scenarios: readonly TransferScenario[],
  work: string,
  rounds: number,
): Promise<ObserveResult> {
  const browser =
    existsSync(CHROMIUM) && existsSync(DASHBOARD_BUILT)
      ? await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
      : undefined;
  if (!browser) console.log('observe: no chromium or no built dashboard: "on" runs without a browser');
  const runs: ObserveRun[] = [];
  try {
    for (const scenario of scenarios) {
      const folder = path.join(work, `observe-${scenario.name}`);
      const expected = await scenario.make(folder);
      for (let round = 0; round < rounds; round++) {
        const order: Mode[] = round % 2 === 0 ? ['off', 'on'] : ['on', 'off'];
        for (const mode of order) {
          const run = {
            ...(await uploadOnce(scenario, folder, expected, mode, work, browser)),
            round: round + 1,
          };
          runs.push(run);
          console.log(JSON.stringify(run));
        }
      }
    }
  } finally {
    await browser?.close();
  }
  return { describe: scenarios.map((scenario) => scenario.describe).join('; '), runs };
}

export function observeTable(result: ObserveResult): string {
  const rows = [...new Set(result.runs.map((run) => run.scenario))].flatMap((scenario) => {
    const of = (mode: Mode) => result.runs.filter((run) => run.scenario === scenario && run.mode === mode);
    const unit = scenario === 'small' ? 'CPU ms per file' : 'CPU s per GiB';
    const off = of('off').map((run) => run.cpuPerUnit);
    const on = of('on').map((run) => run.cpuPerUnit);
    const offMedian = median(off);
    const onMedian = median(on);
    const overhead =
      offMedian && onMedian !== null ? `${fixed(((onMedian - offMedian) / offMedian) * 100, 1)}%` : '-';
    const seen = of('on');
    return [
      [
        `${scenario}: ${unit}`,
        summary(off, 3),
        summary(on, 3),
        overhead,
        `${summary(
          seen.map((run) => run.eventsRead),
          0,
        )} events, ${summary(
          seen.map((run) => run.scrapes),
          0,
        )} scrapes` + (seen.some((run) => run.dashboard) ? ', dashboard open' : ''),
      ],
      [
        `${scenario}: seconds`,
        summary(
          of('off').map((run) => run.seconds),
          2,
        ),
        summary(
          seen.map((run) => run.seconds),
          2,
        ),
        '',
        '',
      ],
    ];
  });
  return markdownTable(['figure', 'off', 'on', 'on vs off (target ≤ 5%)', 'what watched "on"'], rows);
}
