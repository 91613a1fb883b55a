// Periodic rescans rest in proportion to how long a scan takes, so that a huge tree costs at most
// about 0.5% of a core. Scan durations come from an injected monotonic clock, never from timing.
import assert from 'node:assert/strict';
import { appendFile, link, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { pino } from 'pino';
import type { ScanReport } from '../../src/domain/model.js';
import { RESCAN_REST_FACTOR, RequestMonitor, periodicRescanDelayMs } from '../../src/engine/monitor.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { waitFor } from '../support/poll.js';
import { makeTempDir, removeTempDir } from '../support/temp-tree.js';

interface LogLine {
  level: number;
  msg: string;
  kind?: string;
  cause?: string;
  changed?: number;
  ms?: number;
  nextRescanInMs?: number;
}

const DEBUG = 20;
const INFO = 30;
const STRETCHED = /periodic rescans wait/;

interface Fixture {
  /** Holds the watched folder, and room for files outside it. */
  root: string;
  folder: string;
  monitor: RequestMonitor;
  lines: LogLine[];
  /** How long each scan takes from now on, as the monitor measures it. */
  setScanMs(ms: number): void;
}

/** A monitor of a folder of three files, on a real store, whose scans take what the test says. */
async function watchedFolder(t: TestContext, rescanIntervalMs: number, scanMs: number): Promise<Fixture> {
  const root = await makeTempDir('rescan-interval');
  const folder = path.join(root, 'source');
  await mkdir(folder);
  for (const name of ['a.txt', 'b.txt', 'c.txt']) await writeFile(path.join(folder, name), name);
  const store = openSqliteStore(path.join(root, 'state.db'));
  const request = await store.createRequest(
    { uploadId: 'u1', sourceFolder: folder, destinationBucket: 'b', destinationPrefix: '', pattern: '**' },
    Date.now(),
  );
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  // Each clock is read exactly twice per scan, at its start and its end: each scan lasts, and
  // costs, stepMs.
  let stepMs = scanMs;
  let monotonic = 0;
  let cpu = 0;
  const monitor = new RequestMonitor(request, {
    store,
    logger,
    readiness: { settleMs: 0, stream: undefined },
    rescanIntervalMs,
    tasksChanged: () => {},
    observationClock: Date.now,
    monotonicNow: () => (monotonic += stepMs),
    cpuNow: () => (cpu += stepMs),
  });
  t.after(async () => {
    await monitor.stop();
    await store.close();
    await removeTempDir(root);
  });
  await monitor.start();
  return { root, folder, monitor, lines, setScanMs: (ms) => (stepMs = ms) };
}

/**
 * Waits until the monitor's current scan has finished, and returns its report. start() and
 * requestRescan() put a new report in place before they return, so this is the scan they began.
 */
function finishedScan(monitor: RequestMonitor): Promise<ScanReport> {
  return waitFor(
    () => {
      const scan = monitor.lastScan();
      return scan?.finishedAt != null ? scan : undefined;
    },
    { message: 'the scan finished' },
  );
}

const stretchedLines = (lines: LogLine[]) => lines.filter((line) => STRETCHED.test(line.msg));
const finishedLines = (lines: LogLine[]) => lines.filter((line) => line.msg === 'scan finished');

describe('the wait before a periodic rescan', () => {
  test('is the interval, or the rest factor times the last scan, whichever is longer', () => {
    assert.equal(RESCAN_REST_FACTOR, 200);
    assert.equal(periodicRescanDelayMs(60_000, 0), 60_000);
    assert.equal(periodicRescanDelayMs(60_000, 300), 60_000);
    assert.equal(periodicRescanDelayMs(60_000, 301), 60_200);
    assert.equal(periodicRescanDelayMs(60_000, 1500), 300_000);
    assert.equal(periodicRescanDelayMs(100, 2), 400);
  });

  test('is stretched after a long scan, said once at info; a requested rescan is not held back', async (t) => {
    const { monitor, lines } = await watchedFolder(t, 60_000, 1500);
    const initial = await finishedScan(monitor);
    assert.equal(initial.kind, 'initial');
    assert.equal(initial.durationMs, 1500);
    assert.equal(initial.filesSeen, 3);
    assert.equal(initial.filesChanged, 3);

    // The periodic rescan is 300 s away; asked for, one starts at once, and each says the same.
    for (let round = 0; round < 3; round += 1) {
      assert.equal(monitor.requestRescan(), 'started');
      const rescan = await finishedScan(monitor);
      assert.equal(rescan.kind, 'rescan');
      assert.equal(rescan.filesChanged, 0);
    }
    const finished = finishedLines(lines);
    assert.equal(finished.length, 4);
    for (const line of finished) assert.equal(line.nextRescanInMs, 300_000);
    const stretched = stretchedLines(lines);
    assert.equal(stretched.length, 1, 'the stretch is logged once, not at every scan');
    assert.equal(stretched[0]?.level, INFO);
    assert.equal(stretched[0]?.nextRescanInMs, 300_000);
  });

  test('goes back to the interval after quick scans, and is said again when stretched anew', async (t) => {
    const { monitor, lines, setScanMs } = await watchedFolder(t, 60_000, 2000);
    await finishedScan(monitor);
    assert.equal(stretchedLines(lines).length, 1);

    setScanMs(10);
    assert.equal(monitor.requestRescan(), 'started');
    await finishedScan(monitor);
    assert.equal(finishedLines(lines).at(-1)?.nextRescanInMs, 60_000);
    const back = lines.filter((line) => /back to the rescan interval/.test(line.msg));
    assert.equal(back.length, 1);
    assert.equal(back[0]?.level, DEBUG);

    setScanMs(700);
    assert.equal(monitor.requestRescan(), 'started');
    await finishedScan(monitor);
    assert.equal(finishedLines(lines).at(-1)?.nextRescanInMs, 140_000);
    assert.equal(stretchedLines(lines).length, 2);
  });
});

describe('requested rescans and the scan log', () => {
  test('a rescan asked for while one runs starts no other', async (t) => {
    const { monitor } = await watchedFolder(t, 60_000, 5);
    // The initial scan runs (or is about to) as soon as start() returns.
    assert.equal(monitor.requestRescan(), 'already_running');
    assert.equal((await finishedScan(monitor)).kind, 'initial');
    assert.equal(monitor.requestRescan(), 'started');
    assert.equal(monitor.requestRescan(), 'already_running');
    assert.equal((await finishedScan(monitor)).kind, 'rescan');
    await monitor.stop();
    assert.equal(monitor.requestRescan(), 'not_watched');
  });

  test('an unchanged periodic rescan logs at debug; one that finds what events missed, at info', async (t) => {
    const { root, folder, lines } = await watchedFolder(t, 100, 5);
    await waitFor(
      () => finishedLines(lines).some((line) => line.cause === 'periodic' && line.changed === 0),
      { message: 'an unchanged periodic rescan' },
    );
    const [initial, ...rescans] = finishedLines(lines);
    assert.equal(initial?.kind, 'initial');
    assert.equal(initial?.level, INFO);
    for (const line of rescans) assert.equal(line.level, DEBUG, JSON.stringify(line));

    // Written through a hard link outside the folder: inotify tells the link's folder, not this one.
    const outside = path.join(root, 'a-link.txt');
    await link(path.join(folder, 'a.txt'), outside);
    await appendFile(outside, ' and more');
    const found = await waitFor(
      () => finishedLines(lines).find((line) => line.cause === 'periodic' && line.changed === 1),
      { message: 'a periodic rescan that found the file changed behind the watcher' },
    );
    assert.equal(found.level, INFO);
  });
});
