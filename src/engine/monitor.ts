import { realpath } from 'node:fs/promises';
import type { ObservedFile, UploadRequest } from '../domain/model.js';
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
}

/**
 * Keeps one upload request's tasks in step with its folder: a full scan at start, file-system
 * events for low latency, and a periodic rescan as the safety net for missed events (and for what
 * changed while the service was down). It only records what it sees; the dispatcher decides.
 */
export class RequestMonitor {
  private readonly filter: PathFilter;
  private readonly log: Logger;
  private readonly now: () => number;
  private watch: FolderWatch | undefined;
  private rescanTimer: NodeJS.Timeout | undefined;
  private readonly scanAbort = new AbortController();
  private scanning: Promise<void> | undefined;
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
  }

  async start(): Promise<void> {
    const { store } = this.options;
    await store.activateRequest(this.request.uploadId, this.now());
    await this.startWatching();
    this.scanning = this.scan('initial');
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
  private recordInOrder(files: ObservedFile[]): Promise<void> {
    const recorded = this.recording.then(() =>
      this.record(files).catch((error: unknown) =>
        this.log.error({ err: error }, 'recording changed files failed; the next rescan will catch them'),
      ),
    );
    this.recording = recorded;
    return recorded;
  }

  private async record(files: readonly ObservedFile[]): Promise<void> {
    if (files.length === 0 || this.stopped) return;
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
  }

  private async scan(kind: 'initial' | 'rescan'): Promise<void> {
    const started = this.now();
    let files = 0;
    try {
      await this.assertSourceNotMoved();
      for await (const batch of scanFolder(this.request.sourceFolder, this.filter, {
        signal: this.scanAbort.signal,
        observationClock: this.options.observationClock,
        onError: (path, error) =>
          this.log.warn({ err: error, path }, 'part of the source folder cannot be read'),
      })) {
        if (this.stopped) break;
        files += batch.length;
        await this.recordInOrder(batch);
      }
      if (!this.stopped) {
        this.log.debug({ kind, files, ms: this.now() - started }, 'scan finished');
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
      this.log.error({ err: error, kind }, message);
      await this.options.store
        .setRequestError(this.request.uploadId, message, this.now())
        .catch((storeError: unknown) => this.log.error({ err: storeError }, 'cannot record the scan error'));
    } finally {
      this.scheduleRescan();
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

  private scheduleRescan(delayMs = this.options.rescanIntervalMs): void {
    if (this.stopped) return;
    clearTimeout(this.rescanTimer);
    this.rescanTimer = setTimeout(() => {
      this.rescanTimer = undefined;
      this.scanning = this.scan('rescan');
    }, delayMs);
    this.rescanTimer.unref();
  }

  /** Missed events: rescan shortly (a running scan has no timer set, and schedules its own next one). */
  private rescanSoon(): void {
    if (this.rescanTimer)
      this.scheduleRescan(Math.min(MISSED_EVENTS_RESCAN_DELAY_MS, this.options.rescanIntervalMs));
  }
}
