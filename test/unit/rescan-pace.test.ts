// Periodic rescans are paced to use at most PERIODIC_RESCAN_SHARE of a core, so that watching a
// huge tree stays idle in every minute; the first scan, a requested one and one after missed
// events run at full speed. Clocks and rests are injected: nothing here is timed.
import assert from 'node:assert/strict';
import { appendFile, link, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { pino } from 'pino';
import type { ScanReport } from '../../src/domain/model.js';
import { PERIODIC_RESCAN_SHARE, UploadMonitor } from '../../src/engine/monitor.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { MAX_REST_MS, restAfter, scanFolder, type ScanPace } from '../../src/watch/scanner.js';
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

type Rest = (ms: number, signal: AbortSignal | undefined) => Promise<void>;

/**
 * A pace whose clock moves 20 ms per reading (every entry ends a slice), whose process uses 20 ms
 * of CPU between two slice ends, and whose rests are recorded.
 */
function recordedPace(busyShare: number, rest: Rest = async () => {}, tickMs = 20) {
  const rests: number[] = [];
  let clock = 0;
  let cpu = 0;
  const pace: ScanPace = {
    busyShare,
    now: () => (clock += tickMs),
    cpuNow: () => (cpu += tickMs),
    rest: (ms, signal) => {
      rests.push(ms);
      return rest(ms, signal);
    },
  };
  return { pace, rests };
}

/** A rest that ends only when its signal is aborted, rejecting as a real timer does. */
const restUntilAborted: Rest = (_ms, signal) =>
  new Promise((_resolve, reject) => {
    if (!signal) return; // nothing could end it: the test's timeout says so
    signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
  });

interface Fixture {
  /** Holds the watched folder, and room for files outside it. */
  root: string;
  folder: string;
  monitor: UploadMonitor;
  lines: LogLine[];
  /** The rests of periodic rescans so far (each pace's rests, in order). */
  rests: number[];
  /** What a periodic rescan's rest does (default: returns at once). */
  setRest(rest: Rest): void;
}

/** A monitor of a folder of three files, on a real store, whose periodic rescans rest as the test says. */
async function watchedFolder(t: TestContext, rescanIntervalMs: number): Promise<Fixture> {
  const root = await makeTempDir('rescan-interval');
  const folder = path.join(root, 'source');
  await mkdir(folder);
  for (const name of ['a.txt', 'b.txt', 'c.txt']) await writeFile(path.join(folder, name), name);
  const store = openSqliteStore(path.join(root, 'state.db'));
  const request = await store.createUpload(
    { uploadId: 'u1', sourceFolder: folder, destinationBucket: 'b', destinationPrefix: '', pattern: '**' },
    Date.now(),
  );
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  let rest: Rest = async () => {};
  const { pace, rests } = recordedPace(PERIODIC_RESCAN_SHARE, (ms, signal) => rest(ms, signal));
  const monitor = new UploadMonitor(request, {
    store,
    logger,
    readiness: { settleMs: 0, stream: undefined },
    rescanIntervalMs,
    tasksChanged: () => {},
    observationClock: Date.now,
    periodicPace: pace,
  });
  t.after(async () => {
    await monitor.stop();
    await store.close();
    await removeTempDir(root);
  });
  await monitor.start();
  return { root, folder, monitor, lines, rests, setRest: (next) => (rest = next) };
}

/**
 * Waits until the monitor's current scan has finished, and returns its report. start() and
 * requestRescan() put a new report in place before they return, so this is the scan they began.
 */
function finishedScan(monitor: UploadMonitor): Promise<ScanReport> {
  return waitFor(
    () => {
      const scan = monitor.lastScan();
      return scan?.finishedAt != null ? scan : undefined;
    },
    { message: 'the scan finished' },
  );
}

const finishedLines = (lines: LogLine[]) => lines.filter((line) => line.msg === 'scan finished');

describe('a paced scan', () => {
  test('rests after each slice so that it uses at most its share of a core', () => {
    assert.equal(restAfter(10, 0.005), 1990);
    assert.equal(restAfter(10, 0.5), 10);
    assert.equal(restAfter(10, 1), 0);
  });

  test('rests at most MAX_REST_MS, however long a slice took (a stalled machine)', () => {
    assert.equal(restAfter(20, 0.005), 3980, 'a slice of twice the usual length is paid back in full');
    assert.equal(restAfter(2000, 0.005), MAX_REST_MS, 'a 2 s stall does not earn a 400 s rest');
    assert.equal(MAX_REST_MS, 4000);
  });

  test('a slice that took long rests the capped time', async (t) => {
    const root = await makeTempDir('paced-scan-cap');
    t.after(() => removeTempDir(root));
    for (const name of ['a', 'b']) await writeFile(path.join(root, name), name);
    const { pace, rests } = recordedPace(0.005, async () => {}, 2000);
    for await (const batch of scanFolder(root, () => true, { pace })) assert.ok(batch.length > 0);
    assert.ok(rests.length > 0);
    for (const ms of rests) assert.equal(ms, MAX_REST_MS, 'each 2 s slice rested 4 s, not 398 s');
  });

  test(
    'hurrying ends a rest in progress at once, and no other rest follows',
    { timeout: 20_000 },
    async (t) => {
      const root = await makeTempDir('paced-scan-hurry');
      t.after(() => removeTempDir(root));
      for (const name of ['a', 'b', 'c', 'd']) await writeFile(path.join(root, name), name);
      const hurry = new AbortController();
      const { pace, rests } = recordedPace(0.005, (ms, signal) => {
        setImmediate(() => hurry.abort()); // hurried while its first rest has begun
        return restUntilAborted(ms, signal);
      });
      pace.hurried = hurry.signal;
      let files = 0;
      for await (const batch of scanFolder(root, () => true, { pace })) files += batch.length;
      assert.equal(files, 4);
      assert.deepEqual(rests, [restAfter(20, 0.005)], 'one rest, cut short; then full speed');
    },
  );

  test('a stop during a rest still ends the scan with the stop', { timeout: 20_000 }, async (t) => {
    const root = await makeTempDir('paced-scan-stop');
    t.after(() => removeTempDir(root));
    for (const name of ['a', 'b']) await writeFile(path.join(root, name), name);
    const stop = new AbortController();
    const { pace } = recordedPace(0.005, (ms, signal) => {
      setImmediate(() => stop.abort(new Error('stopped')));
      return restUntilAborted(ms, signal);
    });
    pace.hurried = new AbortController().signal;
    const scan = async () => {
      for await (const batch of scanFolder(root, () => true, { pace, signal: stop.signal })) void batch;
    };
    await assert.rejects(scan(), /stopped/);
  });

  test('rests as its share says, and stops resting once hurried', async (t) => {
    const root = await makeTempDir('paced-scan');
    t.after(() => removeTempDir(root));
    for (const name of ['a', 'b', 'c', 'd', 'e', 'f']) await writeFile(path.join(root, name), name);
    const { pace, rests } = recordedPace(0.25, async () => {
      if (rests.length === 2) pace.busyShare = 1; // hurried during its second rest
    });
    let files = 0;
    for await (const batch of scanFolder(root, () => true, { pace })) files += batch.length;
    assert.equal(files, 6);
    assert.deepEqual(rests, [60, 60], 'each 20 ms slice rested 60 ms (25%) until hurried');
  });

  test('refuses a share of 0 or above 1', async () => {
    for (const busyShare of [0, 1.5]) {
      await assert.rejects(scanFolder('/', () => true, { pace: { busyShare } }).next(), RangeError);
    }
  });
});

describe('periodic rescans', () => {
  test('are paced; the first scan and a requested one are not', async (t) => {
    const { monitor, rests, lines } = await watchedFolder(t, 100);
    assert.equal((await finishedScan(monitor)).kind, 'initial');
    assert.equal(monitor.requestRescan(), 'started');
    await finishedScan(monitor);
    assert.deepEqual(rests, [], 'neither the first scan nor the requested one rested');
    await waitFor(() => finishedLines(lines).some((line) => line.cause === 'periodic'), {
      message: 'a periodic rescan',
    });
    assert.ok(rests.length > 0, 'the periodic rescan rested');
    for (const ms of rests) assert.equal(ms, restAfter(20, PERIODIC_RESCAN_SHARE));
  });

  test('a rescan asked for during a paced one ends its rest at once and hurries it', async (t) => {
    const { monitor, rests, setRest } = await watchedFolder(t, 100);
    await finishedScan(monitor);
    setRest(restUntilAborted); // the periodic rescan rests until something cuts the rest short
    await waitFor(() => rests.length === 1, { message: 'the periodic rescan resting' });
    assert.equal(monitor.requestRescan(), 'already_running');
    const rescan = await finishedScan(monitor);
    assert.equal(rescan.kind, 'rescan');
    assert.equal(rests.length, 1, 'no rest after it was hurried');
  });
});

describe('requested rescans and the scan log', () => {
  test('a rescan asked for while one runs starts no other', async (t) => {
    const { monitor } = await watchedFolder(t, 60_000);
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
    const { root, folder, lines } = await watchedFolder(t, 100);
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
