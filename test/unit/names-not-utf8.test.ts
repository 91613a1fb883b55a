// Names that are not valid UTF-8 cannot become S3 keys: their files, and every file under a folder
// so named, are skipped, counted on the scan, logged once per folder holding such names and noted
// on the upload. Real folders (names written as bytes), a real store, real inotify.
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { pino } from 'pino';
import type { ObservedFile, ScanReport } from '../../src/domain/model.js';
import { compilePattern } from '../../src/domain/pattern.js';
import { UploadMonitor } from '../../src/engine/monitor.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Store } from '../../src/store/store.js';
import { escapeNotUtf8, type NamesNotUtf8 } from '../../src/watch/names.js';
import { scanFolder } from '../../src/watch/scanner.js';
import { waitFor } from '../support/poll.js';
import { makeTempDir, removeTempDir } from '../support/temp-tree.js';

/** A path under `folder` whose name (or names) hold raw bytes: `bytes('bad', 0xff, '.txt')`. */
function bytesPath(folder: string, ...parts: (string | number)[]): Buffer {
  const name = parts.map((part) => (typeof part === 'number' ? Buffer.from([part]) : Buffer.from(part)));
  return Buffer.concat([Buffer.from(`${folder}/`), ...name]);
}

/**
 * good.txt, real�.txt (a valid name holding U+FFFD), bad\xff.txt, sub/ok.txt, sub/x\xe9.csv, and a
 * folder d\xfe holding in1.txt, in2.csv, deeper/in3.txt and q\xff.txt.
 */
function writeTree(folder: string): void {
  writeFileSync(path.join(folder, 'good.txt'), 'good');
  writeFileSync(path.join(folder, 'real\uFFFD.txt'), 'a valid name');
  writeFileSync(bytesPath(folder, 'bad', 0xff, '.txt'), 'bad');
  mkdirSync(path.join(folder, 'sub'));
  writeFileSync(path.join(folder, 'sub', 'ok.txt'), 'ok');
  writeFileSync(bytesPath(folder, 'sub/x', 0xe9, '.csv'), 'latin-1');
  mkdirSync(bytesPath(folder, 'd', 0xfe));
  writeFileSync(bytesPath(folder, 'd', 0xfe, '/in1.txt'), '1');
  writeFileSync(bytesPath(folder, 'd', 0xfe, '/in2.csv'), '2');
  mkdirSync(bytesPath(folder, 'd', 0xfe, '/deeper'));
  writeFileSync(bytesPath(folder, 'd', 0xfe, '/deeper/in3.txt'), '3');
  writeFileSync(bytesPath(folder, 'd', 0xfe, '/q', 0xff, '.txt'), 'q');
}

async function scanned(folder: string, pattern: string) {
  const files: ObservedFile[] = [];
  const found: NamesNotUtf8[] = [];
  const scan = scanFolder(folder, compilePattern(pattern), { onNamesNotUtf8: (names) => found.push(names) });
  for await (const batch of scan) files.push(...batch);
  const byFolder = new Map(found.map((names) => [names.folder, names]));
  assert.equal(byFolder.size, found.length, 'one report per folder');
  return { paths: files.map((file) => file.relativePath).sort(), byFolder };
}

describe('a scan', () => {
  test('counts the files under names that are not UTF-8, once per folder holding them', async (t) => {
    const folder = await makeTempDir('not-utf8-scan');
    t.after(() => removeTempDir(folder));
    writeTree(folder);
    const { paths, byFolder } = await scanned(folder, '**');
    assert.deepEqual(paths, ['good.txt', 'real\uFFFD.txt', 'sub/ok.txt']);
    assert.deepEqual([...byFolder.keys()].sort(), ['', 'sub']);
    // bad\xff.txt, and the four files under d\xfe (its own bad name q\xff.txt among them).
    assert.equal(byFolder.get('')?.files, 5);
    assert.ok(
      ['bad\\xff.txt', 'd\\xfe'].includes(byFolder.get('')?.example ?? ''),
      byFolder.get('')?.example,
    );
    assert.deepEqual(byFolder.get('sub'), { folder: 'sub', files: 1, example: 'sub/x\\xe9.csv' });
  });

  test('counts only the files the pattern takes (matched with U+FFFD for the bad bytes)', async (t) => {
    const folder = await makeTempDir('not-utf8-pattern');
    t.after(() => removeTempDir(folder));
    writeTree(folder);
    const { paths, byFolder } = await scanned(folder, '*.csv');
    assert.deepEqual(paths, []);
    assert.deepEqual([...byFolder.keys()].sort(), ['', 'sub']);
    assert.equal(byFolder.get('')?.files, 1, 'd\xfe/in2.csv');
    assert.equal(byFolder.get('')?.example, 'd\\xfe');
    assert.equal(byFolder.get('sub')?.files, 1);
  });

  test('without a listener, skips them as before', async (t) => {
    const folder = await makeTempDir('not-utf8-quiet');
    t.after(() => removeTempDir(folder));
    writeTree(folder);
    const files: string[] = [];
    for await (const batch of scanFolder(folder, () => true)) files.push(...batch.map((f) => f.relativePath));
    assert.deepEqual(files.sort(), ['good.txt', 'real\uFFFD.txt', 'sub/ok.txt']);
  });
});

describe('a name, escaped for people', () => {
  test('keeps its characters and writes the bytes that are not UTF-8 as \\xNN', () => {
    const name = Buffer.from([0x62, 0xff, 0xc3, 0xa9, 0xe9, 0x61, 0xf0, 0x9f, 0x98, 0x80, 0xf0, 0x9f]);
    assert.equal(escapeNotUtf8(name), 'b\\xffé\\xe9a😀\\xf0\\x9f');
    assert.equal(
      escapeNotUtf8(Buffer.from('\uFEFFbom')),
      '\uFEFFbom',
      'a byte-order mark is a character too',
    );
  });
});

interface LogLine {
  level: number;
  msg: string;
  folder?: string;
  files?: number;
  example?: string;
  cause?: string;
}

const WARN = 40;
const DEBUG = 20;
const SKIPPED = 'names that are not valid UTF-8 were skipped: S3 keys must be UTF-8; rename them';

interface Fixture {
  folder: string;
  store: Store;
  monitor: UploadMonitor;
  lines: LogLine[];
}

async function watched(t: TestContext, rescanIntervalMs: number): Promise<Fixture> {
  const root = await makeTempDir('not-utf8-monitor');
  const folder = path.join(root, 'source');
  await mkdir(folder);
  const store = openSqliteStore(path.join(root, 'state.db'));
  const upload = await store.createUpload(
    { uploadId: 'u1', sourceFolder: folder, destinationBucket: 'b', destinationPrefix: '', pattern: '**' },
    Date.now(),
  );
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const monitor = new UploadMonitor(upload, {
    store,
    logger,
    readiness: { settleMs: 0, stream: undefined },
    rescanIntervalMs,
    tasksChanged: () => {},
    observationClock: Date.now,
    periodicPace: { busyShare: 1 },
  });
  t.after(async () => {
    await monitor.stop();
    await store.close();
    await removeTempDir(root);
  });
  return { folder, store, monitor, lines };
}

/** Waits for a finished scan that started at or after `since`, and returns it. */
function scanSince(monitor: UploadMonitor, since: number): Promise<ScanReport> {
  return waitFor(
    () => {
      const scan = monitor.lastScan();
      return scan !== null && scan.startedAt >= since && scan.finishedAt !== null ? scan : undefined;
    },
    { message: 'a scan finished' },
  );
}

const lastError = async (store: Store) => (await store.getUpload('u1'))?.lastError;

describe('a watched folder with names that are not UTF-8', () => {
  test('counts them on the scan, logs one line per folder, and notes them on the upload', async (t) => {
    const { folder, store, monitor, lines } = await watched(t, 60_000);
    writeTree(folder);
    const startedAt = Date.now();
    await monitor.start();
    const initial = await scanSince(monitor, startedAt);
    assert.equal(initial.filesSeen, 3);
    assert.equal(initial.filesNotUtf8, 6);
    const skipped = lines.filter((line) => line.msg === SKIPPED);
    assert.deepEqual(skipped.map((line) => [line.folder, line.files, line.level]).sort(), [
      ['', 5, WARN],
      ['sub', 1, WARN],
    ]);
    const note = await lastError(store);
    assert.match(
      note ?? '',
      /^6 files were skipped in 2 folders because their names, or folders' names above them, are not valid UTF-8 \(e\.g\. '(bad\\xff\.txt|d\\xfe|sub\/x\\xe9\.csv)'\): S3 keys must be UTF-8; rename them to upload them$/,
    );
    const tasks = await store.listTasks('u1', { limit: 100 });
    assert.deepEqual(tasks.items.map((task) => task.relativePath).sort(), [
      'good.txt',
      'real\uFFFD.txt',
      'sub/ok.txt',
    ]);

    // The same again: nothing new to say at warn, and the note stays as it is.
    await store.setUploadError('u1', 'another problem', Date.now());
    const again = Date.now();
    assert.equal(monitor.requestRescan(), 'started');
    assert.equal((await scanSince(monitor, again)).filesNotUtf8, 6);
    const repeated = lines.filter((line) => line.msg === SKIPPED).slice(skipped.length);
    assert.deepEqual(
      repeated.map((line) => line.level),
      [DEBUG, DEBUG],
    );
    assert.equal(await lastError(store), 'another problem', 'an unchanged finding is not written again');

    // Renamed (here removed): the next scan finds none, and clears its own note only.
    rmSync(bytesPath(folder, 'bad', 0xff, '.txt'));
    rmSync(bytesPath(folder, 'd', 0xfe), { recursive: true });
    const fewer = Date.now();
    assert.equal(monitor.requestRescan(), 'started');
    assert.equal((await scanSince(monitor, fewer)).filesNotUtf8, 1);
    assert.equal(
      await lastError(store),
      "1 file was skipped because its name, or a folder's name above it, is not valid UTF-8 ('sub/x\\xe9.csv'): S3 keys must be UTF-8; rename it to upload it",
    );
    rmSync(bytesPath(folder, 'sub/x', 0xe9, '.csv'));
    const none = Date.now();
    assert.equal(monitor.requestRescan(), 'started');
    assert.equal((await scanSince(monitor, none)).filesNotUtf8, 0);
    assert.equal(await lastError(store), null);
  });

  test('one written while watched is counted without waiting for the periodic rescan', async (t) => {
    const { folder, store, monitor } = await watched(t, 600_000);
    await writeFile(path.join(folder, 'good.txt'), 'good');
    const startedAt = Date.now();
    await monitor.start();
    assert.equal((await scanSince(monitor, startedAt)).filesNotUtf8, 0);
    await waitFor(async () => (await store.listTasks('u1', { limit: 10 })).items.length === 1, {
      message: 'the watch running',
    });
    const written = Date.now();
    writeFileSync(bytesPath(folder, 'late', 0xff, '.txt'), 'late');
    assert.equal((await scanSince(monitor, written)).filesNotUtf8, 1);
    assert.match((await lastError(store)) ?? '', /^1 file was skipped .*\('late\\xff\.txt'\)/);
  });

  test('new folders: one so named, and one holding such a name, are counted too', async (t) => {
    const { folder, monitor } = await watched(t, 600_000);
    const startedAt = Date.now();
    await monitor.start();
    assert.equal((await scanSince(monitor, startedAt)).filesNotUtf8, 0);
    const written = Date.now();
    mkdirSync(bytesPath(folder, 'new', 0xff));
    writeFileSync(bytesPath(folder, 'new', 0xff, '/inside.txt'), 'inside');
    mkdirSync(path.join(folder, 'fresh', 'deep'), { recursive: true });
    writeFileSync(bytesPath(folder, 'fresh/deep/x', 0xff), 'x');
    await waitFor(
      () => {
        const scan = monitor.lastScan();
        return (
          scan !== null && scan.startedAt >= written && scan.filesNotUtf8 === 2 && scan.finishedAt !== null
        );
      },
      { message: 'a rescan that counted both' },
    );
  });
});
