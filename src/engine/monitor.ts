import { realpath } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { DatabaseLostError } from '../domain/errors.js';
import type { ObservedFile, RescanOutcome, ScanKind, ScanReport, Upload } from '../domain/model.js';
import type { Logger } from '../logger.js';
import type { Store } from '../store/store.js';
import type { FolderWatch, PathFilter, WatchObserver } from '../watch/types.js';
import { compilePattern } from '../domain/pattern.js';
import { markerMatcher } from '../domain/arrival.js';
import { objectKeyFor } from '../domain/object-key.js';
import { FolderUnreadableError, scanFolder, type ScanPace } from '../watch/scanner.js';
import { errorCode } from '../fs-errors.js';
import { MissedChangesError, watchFolder } from '../watch/watcher.js';
import { BadNames } from './bad-names.js';
import { databaseFilesInside, excluding } from './database-files.js';
import { readinessOf, type Readiness } from './readiness.js';

/** After missed events, wait this long (so that a burst settles) before the catch-up rescan. */
const MISSED_EVENTS_RESCAN_DELAY_MS = 1000;

/**
 * A periodic rescan is paced to use at most this share of a core (0.5%), so that watching a huge
 * tree stays idle in every minute, not only on average: a rescan of 200,000 files that needs 2 s
 * of CPU is spread over about 400 s. The first scan, one asked for and one after missed events
 * run at full speed.
 */
export const PERIODIC_RESCAN_SHARE = 0.005;

/** Why a scan runs (for the logs): the API shows only its kind. */
type ScanCause = 'start' | 'periodic' | 'requested' | 'missed events';

export interface MonitorOptions {
  store: Store;
  logger: Logger;
  readiness: Readiness;
  rescanIntervalMs: number;
  /** New or changed tasks were recorded: the dispatcher should look. */
  tasksChanged: () => void;
  /** A scan finished (its report is complete). */
  scanned?: (report: ScanReport) => void;
  /** Stamps observations (see ObservationClock). */
  observationClock: () => number;
  now?: () => number;
  /** Measures how long scans take (default performance.now): a monotonic clock, in milliseconds. */
  monotonicNow?: () => number;
  /** For tests: how a periodic rescan is paced (default: PERIODIC_RESCAN_SHARE, real time). */
  periodicPace?: ScanPace;
  /** The service's own database files, by real path: never uploaded (see database-files.ts). */
  databaseFiles?: readonly string[];
  /** Told of the file-system events the watch receives (the metrics). */
  watchObserver?: WatchObserver;
  /** Told of every file observed, before it is recorded (see InFlightFiles). */
  observed?: (relativePaths: Iterable<string>) => void;
}

/**
 * Keeps one upload's tasks in step with its folder: a full scan at start, file-system
 * events for low latency, and a periodic rescan as the safety net for missed events (and for what
 * changed while the service was down), spaced out for a tree that takes long to scan; a rescan
 * can also be asked for. It only records what it sees; the dispatcher decides. It remembers its
 * last scan (in memory) for the API.
 */
export class UploadMonitor {
  private readonly filter: PathFilter;
  /** Whether a path is one of the upload's completion markers; undefined when it has none. */
  private readonly isMarker: ((relativePath: string) => boolean) | undefined;
  /** The service's database files inside this folder (relative paths), which it leaves out. */
  private readonly databaseFiles: ReadonlySet<string>;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly monotonicNow: () => number;
  private readonly periodicPace: ScanPace;
  /** Hurries the scan running now, if paced: a rescan asked for, or missed events, abort it. */
  private hurry: AbortController | undefined;
  private watch: FolderWatch | undefined;
  private rescanTimer: NodeJS.Timeout | undefined;
  private readonly scanAbort = new AbortController();
  private scanning: Promise<void> | undefined;
  /** A scan runs, or the initial one is still to start: a requested rescan would only repeat it. */
  private scanInProgress = true;
  /** The last scan, running or finished; null before the first one starts. */
  private lastScanReport: ScanReport | null = null;
  private stopped = false;
  /** The last scan failed (folder missing, unreadable): the next good scan clears the upload's error. */
  private scanFailed = false;
  /** A scan has gone through the whole folder without error, and recorded all it found. */
  private scannedWholeOnce = false;
  /** The last scan was whole (see scannedWholeOnce). */
  private lastScanWhole = false;
  /** A batch could not be recorded (the database refused it) since the current scan began. */
  private recordsLost = false;
  /** Names that are not valid UTF-8: counted by scans, logged, and noted on the upload. */
  private readonly badNames: BadNames;
  private databaseLostLogged = false;
  /** The tail of the chain of batches being recorded (see recordInOrder). */
  private recording: Promise<void> = Promise.resolve();

  constructor(
    private readonly upload: Upload,
    private readonly options: MonitorOptions,
  ) {
    this.databaseFiles = databaseFilesInside(upload.sourceFolder, options.databaseFiles ?? []);
    this.filter = excluding(compilePattern(upload.pattern), this.databaseFiles);
    this.isMarker = markerMatcher(upload.completeMarkers);
    this.log = options.logger.child({ uploadId: upload.uploadId });
    this.badNames = new BadNames(this.log, upload.lastError);
    this.now = options.now ?? Date.now;
    this.monotonicNow = options.monotonicNow ?? (() => performance.now());
    this.periodicPace = options.periodicPace ?? { busyShare: PERIODIC_RESCAN_SHARE };
  }

  async start(): Promise<void> {
    const { store } = this.options;
    await store.activateUpload(this.upload.uploadId, this.now());
    if (this.databaseFiles.size > 0) {
      this.log.info(
        { folder: this.upload.sourceFolder, files: [...this.databaseFiles] },
        "the service's own database is inside this folder; it is never uploaded",
      );
    }
    if (this.upload.watch) await this.startWatching();
    this.scanning = this.scan('initial', 'start');
  }

  /** Scans the folder now, unless a scan runs already; the periodic rescan is rescheduled after it. */
  requestRescan(): RescanOutcome {
    if (this.stopped) return 'not_watched';
    if (this.scanInProgress) {
      this.hurryRunningScan();
      return 'already_running';
    }
    clearTimeout(this.rescanTimer);
    this.rescanTimer = undefined;
    this.scanning = this.scan('rescan', 'requested');
    return 'started';
  }

  /** A one-shot upload (watch false): scanned once, not watched. */
  /** Its upload writes a manifest (see arrivals.ts). */
  get writesManifest(): boolean {
    return this.upload.manifestKey !== null;
  }

  get oneShot(): boolean {
    return !this.upload.watch;
  }

  /** A scan of the whole folder has finished without error, and none runs now. */
  scannedWhole(): boolean {
    return this.scannedWholeOnce && !this.scanInProgress;
  }

  /** A copy of the last scan's report (null before the first starts): it changes while the scan runs. */
  lastScan(): ScanReport | null {
    return this.lastScanReport && { ...this.lastScanReport };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.rescanTimer);
    this.scanAbort.abort();
    await this.closeWatch();
    await this.scanning;
    await this.recording;
  }

  /** Watching is best effort: when it cannot start, or is lost, scans go on and retry it. */
  private async startWatching(): Promise<void> {
    if (this.watch || this.stopped || !this.upload.watch) return;
    try {
      await this.assertSourceNotMoved();
      this.watch = await watchFolder(
        this.upload.sourceFolder,
        this.filter,
        {
          filesChanged: (files) => void this.recordInOrder(files),
          error: (error) => this.watchFailed(error),
          namesNotUtf8: (folder) => {
            if (this.badNames.worthRescanning(folder)) this.rescanSoon();
          },
        },
        { observationClock: this.options.observationClock, observer: this.options.watchObserver },
      );
      if (this.stopped) await this.closeWatch();
    } catch (error) {
      this.log.warn(
        { err: error, folder: this.upload.sourceFolder },
        'cannot watch the source folder; rescans go on',
      );
    }
  }

  private watchFailed(error: Error): void {
    this.log.warn({ err: error }, 'file-system events were missed; rescanning');
    if (error instanceof MissedChangesError && error.watchLost) void this.closeWatch();
    this.rescanSoon();
  }

  private async closeWatch(): Promise<void> {
    const watch = this.watch;
    this.watch = undefined;
    await watch?.close().catch((error: unknown) => this.log.warn({ err: error }, 'closing the watch failed'));
  }

  /**
   * Events and scan batches are recorded one batch at a time, in the order they were seen, so that
   * a batch never overtakes an earlier one (the store also ignores an observation older than the
   * one it holds). Resolves once this batch is recorded; a failure is logged, not thrown: the next
   * rescan records what was missed.
   */
  private recordInOrder(files: ObservedFile[]): Promise<number> {
    const recorded = this.recording.then(() =>
      this.record(files).catch((error: unknown) => {
        // A lost database file refuses every batch until a restart: said once, not at every rescan.
        if (error instanceof DatabaseLostError) {
          if (this.databaseLostLogged) return 0;
          this.databaseLostLogged = true;
        }
        this.log.error({ err: error }, 'recording changed files failed; the next rescan will catch them');
        this.recordsLost = true;
        return 0;
      }),
    );
    this.recording = recorded.then(() => undefined);
    return recorded;
  }

  /** Resolves to how many tasks were created or changed. */
  private async record(files: readonly ObservedFile[]): Promise<number> {
    if (files.length === 0 || this.stopped) return 0;
    const { store, readiness } = this.options;
    this.options.observed?.(files.map((file) => file.relativePath));
    const now = this.now();
    const prefix = this.upload.destinationPrefix;
    const { isMarker } = this;
    const changed = await store.recordObservedFiles(
      this.upload.uploadId,
      files,
      (relativePath) => objectKeyFor(prefix, relativePath),
      (file) => {
        const ready = readinessOf(file, now, readiness);
        // A marker is never streamed: it goes once settled, after every other file.
        return isMarker?.(file.relativePath) ? { ...ready, readyAt: ready.settledAt } : ready;
      },
      now,
      isMarker,
    );
    if (changed > 0) this.options.tasksChanged();
    return changed;
  }

  private async scan(kind: ScanKind, cause: ScanCause): Promise<void> {
    this.scanInProgress = true;
    this.hurry = cause === 'periodic' ? new AbortController() : undefined;
    const pace = this.hurry && { ...this.periodicPace, hurried: this.hurry.signal };
    // The wall clock may be stepped (NTP) during a scan: its duration is measured monotonically.
    const startedMs = this.monotonicNow();
    const report: ScanReport = {
      kind,
      startedAt: this.now(),
      finishedAt: null,
      durationMs: null,
      filesSeen: 0,
      filesChanged: 0,
      filesNotUtf8: 0,
      error: null,
    };
    this.badNames.scanStarted();
    this.lastScanReport = report;
    this.lastScanWhole = false;
    this.recordsLost = false;
    try {
      await this.assertSourceNotMoved();
      for await (const batch of scanFolder(this.upload.sourceFolder, this.filter, {
        signal: this.scanAbort.signal,
        observationClock: this.options.observationClock,
        onError: (path, error) =>
          this.log.warn({ err: error, path }, 'part of the source folder cannot be read'),
        onNamesNotUtf8: (names) => {
          this.badNames.found(names);
          report.filesNotUtf8 = this.badNames.files;
        },
        pace,
      })) {
        if (this.stopped) break;
        report.filesSeen += batch.length;
        report.filesChanged += await this.recordInOrder(batch);
      }
      if (!this.stopped) {
        // A database that refuses this write is not a scan failure: the next good scan clears it.
        if (this.scanFailed) {
          await this.options.store.setUploadError(this.upload.uploadId, null, this.now()).then(
            () => (this.scanFailed = false),
            (error: unknown) => this.log.error({ err: error }, 'cannot clear the scan error yet'),
          );
        }
        await this.noteBadNames();
        // Wait for the last batch: a failure to record it makes the scan not whole.
        await this.recording;
        if (!this.recordsLost) {
          this.lastScanWhole = true;
          this.scannedWholeOnce = true;
        }
        if (this.upload.watch) await this.startWatching();
        if (!this.recordsLost) {
          // Its markers wait for this: until a scan ends, files may still be found. Once watched,
          // a file made since is told by the watch.
          await this.options.store
            .markScanned(this.upload.uploadId, this.now())
            .catch((error: unknown) =>
              this.log.error(
                { err: error },
                'cannot record that the folder was scanned; its markers wait for the next scan',
              ),
            );
        }
      }
    } catch (error) {
      if (this.stopped) return;
      this.scanFailed = true;
      await this.closeWatch();
      const message = `cannot scan source folder ${this.upload.sourceFolder}: ${(error as Error).message}`;
      report.error = message;
      this.log.error({ err: error, kind, cause }, message);
      await this.options.store
        .setUploadError(this.upload.uploadId, message, this.now())
        .catch((storeError: unknown) => this.log.error({ err: storeError }, 'cannot record the scan error'));
    } finally {
      this.scanInProgress = false;
      this.hurry = undefined;
      this.scanFinished(report, cause, this.monotonicNow() - startedMs);
    }
  }

  /** After a whole scan: writes, changes or clears the upload's note about names that are not UTF-8. */
  private async noteBadNames(): Promise<void> {
    const { note, noted } = this.badNames.scanFinished();
    if (note === noted) return;
    const { store } = this.options;
    try {
      // Cleared only while the upload still shows it: a later error may have replaced it.
      const shown = note === null ? (await store.getUpload(this.upload.uploadId))?.lastError : noted;
      if (shown === noted) await store.setUploadError(this.upload.uploadId, note, this.now());
      this.badNames.wrote(note);
    } catch (error) {
      this.log.error(
        { err: error },
        'cannot note the names that are not valid UTF-8; the next scan tries again',
      );
    }
  }

  /**
   * Completes the report, logs it and schedules the next periodic rescan. An idle folder's
   * rescans log at debug: info only for the first scan, one asked for, and one that found changes.
   */
  private scanFinished(report: ScanReport, cause: ScanCause, elapsedMs: number): void {
    if (this.stopped) return;
    const durationMs = Math.max(0, Math.round(elapsedMs));
    report.finishedAt = this.now();
    report.durationMs = durationMs;
    const summary = {
      kind: report.kind,
      cause,
      files: report.filesSeen,
      changed: report.filesChanged,
      ms: durationMs,
      nextRescanInMs: this.upload.watch ? this.options.rescanIntervalMs : null,
    };
    // A failed scan was logged as an error already, with its cause.
    if (report.error === null) {
      const worthTelling = report.kind === 'initial' || cause === 'requested' || report.filesChanged > 0;
      this.log[worthTelling ? 'info' : 'debug'](summary, 'scan finished');
    }
    this.options.scanned?.({ ...report });
    // A one-shot upload is scanned once; a scan that failed (the folder missing, say), or whose
    // files the database did not all take, is tried again.
    if (this.upload.watch || !this.lastScanWhole) {
      this.scheduleRescan(this.options.rescanIntervalMs, 'periodic');
    }
  }

  /**
   * The upload holds the folder's real path. When that path now leads elsewhere (the folder, or a
   * folder above it, was replaced by a symbolic link), nothing is scanned: the link is not followed.
   */
  private async assertSourceNotMoved(): Promise<void> {
    const folder = this.upload.sourceFolder;
    // A folder that is gone says so in the scanner's words ("does not exist"), not realpath's.
    const real = await realpath(folder).catch((error: unknown) => {
      throw new FolderUnreadableError(folder, errorCode(error), error);
    });
    if (real !== folder) {
      throw new Error(`${folder} now leads to ${real} through a symbolic link, which is not followed`);
    }
  }

  private scheduleRescan(delayMs: number, cause: ScanCause): void {
    if (this.stopped) return;
    clearTimeout(this.rescanTimer);
    this.rescanTimer = setTimeout(() => {
      this.rescanTimer = undefined;
      this.scanning = this.scan('rescan', cause);
    }, delayMs);
    this.rescanTimer.unref();
  }

  /** The periodic rescan running now goes on at full speed, its rest in progress cut short. */
  private hurryRunningScan(): void {
    this.hurry?.abort();
  }

  /**
   * Missed events: rescan shortly, however long scans take (a running scan has no timer set, and
   * schedules its own next one).
   */
  private rescanSoon(): void {
    this.hurryRunningScan();
    if (this.rescanTimer) {
      const delayMs = Math.min(MISSED_EVENTS_RESCAN_DELAY_MS, this.options.rescanIntervalMs);
      this.scheduleRescan(delayMs, 'missed events');
    }
  }
}
