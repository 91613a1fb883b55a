import { realpath } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import type { ObservedFile, RescanOutcome, ScanKind, ScanReport, UploadRequest } from '../domain/model.js';
import type { Logger } from '../logger.js';
import type { Store } from '../store/store.js';
import type { FolderWatch, PathFilter } from '../watch/types.js';
import { compilePattern } from '../domain/pattern.js';
import { objectKeyFor } from '../domain/object-key.js';
import { FolderUnreadableError, scanFolder } from '../watch/scanner.js';
import { errorCode } from '../watch/fs-errors.js';
import { MissedChangesError, watchFolder } from '../watch/watcher.js';
import { readinessOf, type Readiness } from './readiness.js';

/** After missed events, wait this long (so that a burst settles) before the catch-up rescan. */
const MISSED_EVENTS_RESCAN_DELAY_MS = 1000;

/**
 * A periodic rescan waits at least this many times the CPU time the last scan used, so that
 * rescans of a huge tree cost at most about 0.5% of a core, leaving room in a 1% idle budget for
 * the rest: a scan that used 1.5 s of CPU is followed by 300 s of rest. CPU time, not the scan's
 * duration: on a busy machine a scan of a small folder can take long while costing nothing.
 */
export const RESCAN_REST_FACTOR = 200;

/** The wait before the next periodic rescan: the interval, stretched after a scan that cost much. */
export function periodicRescanDelayMs(intervalMs: number, lastScanCpuMs: number): number {
  return Math.max(intervalMs, RESCAN_REST_FACTOR * lastScanCpuMs);
}

/** CPU time this process has used, in milliseconds (every thread: the scan's file-system calls too). */
function processCpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** Why a scan runs (for the logs): the API shows only its kind. */
type ScanCause = 'start' | 'periodic' | 'requested' | 'missed events';

export interface MonitorOptions {
  store: Store;
  logger: Logger;
  readiness: Readiness;
  rescanIntervalMs: number;
  /** New or changed tasks were recorded: the dispatcher should look. */
  tasksChanged: () => void;
  /** Stamps observations (see ObservationClock). */
  observationClock: () => number;
  now?: () => number;
  /** Measures how long scans take (default performance.now): a monotonic clock, in milliseconds. */
  monotonicNow?: () => number;
  /** Measures what scans cost (default: this process's CPU time), in milliseconds. */
  cpuNow?: () => number;
}

/**
 * Keeps one upload request's tasks in step with its folder: a full scan at start, file-system
 * events for low latency, and a periodic rescan as the safety net for missed events (and for what
 * changed while the service was down), spaced out for a tree that takes long to scan; a rescan
 * can also be asked for. It only records what it sees; the dispatcher decides. It remembers its
 * last scan (in memory) for the API.
 */
export class RequestMonitor {
  private readonly filter: PathFilter;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly monotonicNow: () => number;
  private readonly cpuNow: () => number;
  private watch: FolderWatch | undefined;
  private rescanTimer: NodeJS.Timeout | undefined;
  private readonly scanAbort = new AbortController();
  private scanning: Promise<void> | undefined;
  /** A scan runs, or the initial one is still to start: a requested rescan would only repeat it. */
  private scanInProgress = true;
  /** The last scan, running or finished; null before the first one starts. */
  private lastScanReport: ScanReport | null = null;
  /** Periodic rescans wait longer than the interval (logged once when that begins). */
  private restStretched = false;
  private stopped = false;
  /** The last scan failed (folder missing, unreadable): the next good scan clears the request's error. */
  private scanFailed = false;
  /** The tail of the chain of batches being recorded (see recordInOrder). */
  private recording: Promise<void> = Promise.resolve();

  constructor(
    private readonly request: UploadRequest,
    private readonly options: MonitorOptions,
  ) {
    this.filter = compilePattern(request.pattern);
    this.log = options.logger.child({ uploadId: request.uploadId });
    this.now = options.now ?? Date.now;
    this.monotonicNow = options.monotonicNow ?? (() => performance.now());
    this.cpuNow = options.cpuNow ?? processCpuMs;
  }

  async start(): Promise<void> {
    const { store } = this.options;
    await store.activateRequest(this.request.uploadId, this.now());
    await this.startWatching();
    this.scanning = this.scan('initial', 'start');
  }

  /** Scans the folder now, unless a scan runs already; the periodic rescan is rescheduled after it. */
  requestRescan(): RescanOutcome {
    if (this.stopped) return 'not_watched';
    if (this.scanInProgress) return 'already_running';
    clearTimeout(this.rescanTimer);
    this.rescanTimer = undefined;
    this.scanning = this.scan('rescan', 'requested');
    return 'started';
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
    if (this.watch || this.stopped) return;
    try {
      await this.assertSourceNotMoved();
      this.watch = await watchFolder(
        this.request.sourceFolder,
        this.filter,
        {
          filesChanged: (files) => void this.recordInOrder(files),
          error: (error) => this.watchFailed(error),
        },
        { observationClock: this.options.observationClock },
      );
      if (this.stopped) await this.closeWatch();
    } catch (error) {
      this.log.warn(
        { err: error, folder: this.request.sourceFolder },
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
        this.log.error({ err: error }, 'recording changed files failed; the next rescan will catch them');
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
    const now = this.now();
    const prefix = this.request.destinationPrefix;
    const changed = await store.recordObservedFiles(
      this.request.uploadId,
      files,
      (relativePath) => objectKeyFor(prefix, relativePath),
      (file) => readinessOf(file, now, readiness),
      now,
    );
    if (changed > 0) this.options.tasksChanged();
    return changed;
  }

  private async scan(kind: ScanKind, cause: ScanCause): Promise<void> {
    this.scanInProgress = true;
    // The wall clock may be stepped (NTP) during a scan: its duration is measured monotonically.
    const startedMs = this.monotonicNow();
    const cpuStartedMs = this.cpuNow();
    const report: ScanReport = {
      kind,
      startedAt: this.now(),
      finishedAt: null,
      durationMs: null,
      filesSeen: 0,
      filesChanged: 0,
      error: null,
    };
    this.lastScanReport = report;
    try {
      await this.assertSourceNotMoved();
      for await (const batch of scanFolder(this.request.sourceFolder, this.filter, {
        signal: this.scanAbort.signal,
        observationClock: this.options.observationClock,
        onError: (path, error) =>
          this.log.warn({ err: error, path }, 'part of the source folder cannot be read'),
      })) {
        if (this.stopped) break;
        report.filesSeen += batch.length;
        report.filesChanged += await this.recordInOrder(batch);
      }
      if (!this.stopped) {
        // A database that refuses this write is not a scan failure: the next good scan clears it.
        if (this.scanFailed) {
          await this.options.store.setRequestError(this.request.uploadId, null, this.now()).then(
            () => (this.scanFailed = false),
            (error: unknown) => this.log.error({ err: error }, 'cannot clear the scan error yet'),
          );
        }
        await this.startWatching();
      }
    } catch (error) {
      if (this.stopped) return;
      this.scanFailed = true;
      await this.closeWatch();
      const message = `cannot scan source folder ${this.request.sourceFolder}: ${(error as Error).message}`;
      report.error = message;
      this.log.error({ err: error, kind, cause }, message);
      await this.options.store
        .setRequestError(this.request.uploadId, message, this.now())
        .catch((storeError: unknown) => this.log.error({ err: storeError }, 'cannot record the scan error'));
    } finally {
      this.scanInProgress = false;
      const cost = { elapsedMs: this.monotonicNow() - startedMs, cpuMs: this.cpuNow() - cpuStartedMs };
      this.scanFinished(report, cause, cost);
    }
  }

  /**
   * Completes the report, logs it and schedules the next periodic rescan, rested in proportion to
   * the scan's CPU time. An idle folder's rescans log at debug: info only for the first scan, one
   * asked for, and one that found changes.
   */
  private scanFinished(
    report: ScanReport,
    cause: ScanCause,
    cost: { elapsedMs: number; cpuMs: number },
  ): void {
    if (this.stopped) return;
    const durationMs = Math.max(0, Math.round(cost.elapsedMs));
    const cpuMs = Math.max(0, Math.round(cost.cpuMs));
    report.finishedAt = this.now();
    report.durationMs = durationMs;
    const { rescanIntervalMs } = this.options;
    const delayMs = periodicRescanDelayMs(rescanIntervalMs, cpuMs);
    const summary = {
      kind: report.kind,
      cause,
      files: report.filesSeen,
      changed: report.filesChanged,
      ms: durationMs,
      cpuMs,
      nextRescanInMs: delayMs,
    };
    // A failed scan was logged as an error already, with its cause.
    if (report.error === null) {
      const worthTelling = report.kind === 'initial' || cause === 'requested' || report.filesChanged > 0;
      this.log[worthTelling ? 'info' : 'debug'](summary, 'scan finished');
    }
    this.noteRest(delayMs, cpuMs);
    this.scheduleRescan(delayMs, 'periodic');
  }

  /** Says once when periodic rescans start to wait longer than the interval, and when they stop. */
  private noteRest(delayMs: number, lastScanCpuMs: number): void {
    const stretched = delayMs > this.options.rescanIntervalMs;
    if (stretched === this.restStretched) return;
    this.restStretched = stretched;
    const fields = {
      lastScanCpuMs,
      nextRescanInMs: delayMs,
      rescanIntervalMs: this.options.rescanIntervalMs,
    };
    if (stretched) {
      this.log.info(
        fields,
        `scans of this folder cost much: periodic rescans wait ${RESCAN_REST_FACTOR} times the CPU time of the last scan, longer than the rescan interval`,
      );
    } else {
      this.log.debug(fields, 'periodic rescans are back to the rescan interval');
    }
  }

  /**
   * The request holds the folder's real path. When that path now leads elsewhere (the folder, or a
   * folder above it, was replaced by a symbolic link), nothing is scanned: the link is not followed.
   */
  private async assertSourceNotMoved(): Promise<void> {
    const folder = this.request.sourceFolder;
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

  /**
   * Missed events: rescan shortly, however long scans take (a running scan has no timer set, and
   * schedules its own next one).
   */
  private rescanSoon(): void {
    if (this.rescanTimer) {
      const delayMs = Math.min(MISSED_EVENTS_RESCAN_DELAY_MS, this.options.rescanIntervalMs);
      this.scheduleRescan(delayMs, 'missed events');
    }
  }
}
