import { hostname } from 'node:os';
import { DatabaseLostError } from '../domain/errors.js';
import type {
  FileTask,
  RescanOutcome,
  ScanReport,
  Upload,
  UploadCounts,
  UploadProgress,
} from '../domain/model.js';
import type { Logger } from '../logger.js';
import { DEFAULT_LEASE_MS, type ClaimBudget, type Store, type StoreChange } from '../store/store.js';
import type { ObjectAuditor } from '../transfer/object-audit.js';
import type { S3Probe } from '../transfer/s3-probe.js';
import type { Uploader } from '../transfer/types.js';
import type { WatchObserver } from '../watch/types.js';
import { Dispatcher, IDLE_POLL_MS } from './dispatcher.js';
import { ObservationClock } from './observation-clock.js';
import { UploadMonitor } from './monitor.js';
import { sweepOrphanUploads } from './orphan-sweep.js';
import type { Readiness } from './readiness.js';
import { S3Health, type S3HealthReport } from './s3-health.js';
import { TaskRunner, fileLogFields, type StopReason } from './task-runner.js';
import type { UploadLifecycle } from './lifecycle.js';
import { phaseOf, progressOf } from './progress.js';
import { Throughput } from './throughput.js';
import { EventBus } from './events.js';
import { ExistingObjects } from './existing-objects.js';
import { InFlightFiles } from './in-flight-files.js';
import { PhaseWatch } from './phase-watch.js';
import type { ServiceEvent } from '../domain/events.js';
import type { InstanceInfo } from '../domain/instance.js';
import type { UploadPhase } from '../domain/status.js';
import { VERSION } from '../version.js';
import { Heartbeat } from './heartbeat.js';
import { WatchLeases } from './watch-leases.js';
import { Arrivals } from './arrivals.js';
import { Notifications } from './notifications.js';
import { NotificationSender } from '../arrival/notification.js';

export interface EngineOptions {
  store: Store;
  uploader: Uploader;
  /** Looks at what the buckets hold: the orphan sweep at start-up. */
  auditor: ObjectAuditor;
  /** Asks whether S3 answers at all, to tell an outage from a failed file. */
  probeS3: S3Probe;
  /** For tests: the first delay between probes while S3 cannot be reached (doubling up to a minute). */
  firstProbeDelayMs?: number;
  logger: Logger;
  settleSeconds: number;
  /** Files uploaded while they are still being written (see Readiness.stream). */
  stream: Readiness['stream'];
  rescanIntervalSeconds: number;
  failedRequeueIntervalSeconds: number;
  maxConcurrentFiles: number;
  /** The memory for file data the files in flight may hold (see DispatcherOptions.memory). */
  claimMemory?: ClaimBudget;
  /**
   * A file at least this large that appeared after the listing of what S3 holds is asked with a
   * HEAD before it is sent (see ExistingObjectsOptions.headFromBytes); default: every file.
   */
  headFromBytes?: number;
  /** The service's own database files, by real path: never uploaded, whatever the pattern. */
  databaseFiles?: readonly string[];
  /** Told of the file-system events every watch receives (the metrics). */
  watchObserver?: WatchObserver;
  /** Where the engine tells what happens (domain/events.ts); default: a bus of its own. */
  events?: EventBus;
  /** How often every watched upload's phase is looked at, for changes no event announces. */
  phaseTickMs?: number;
  /** How long in-flight uploads may go on after a stop is asked, before they are aborted. */
  shutdownGraceMs?: number;
  /**
   * This instance as it registers in the store; its sourceRoots (ALLOWED_SOURCE_ROOTS) bound the
   * uploads it watches and claims tasks of. Default: this process on this host, any folder.
   */
  instance?: InstanceInfo;
  /** HEARTBEAT_SECONDS, in milliseconds; default DEFAULT_HEARTBEAT_MS. */
  heartbeatMs?: number;
  /** LEASE_SECONDS, in milliseconds, as the store was opened with: told in the log. */
  leaseMs?: number;
  /**
   * QUEUE_POLL_SECONDS, in milliseconds: how often the dispatcher looks at the queue when nothing
   * wakes it, while the store hears the other instances' changes; otherwise every IDLE_POLL_MS.
   * Default DEFAULT_QUEUE_POLL_MS.
   */
  queuePollMs?: number;
  /** NOTIFY_ALLOWED_HOSTS: a notify_url naming another host is not sent to (null: any). */
  notifyAllowedHosts?: readonly string[] | null;
  /** For tests: the first delay between a notification's attempts (doubling up to minutes). */
  notifyBaseDelayMs?: number;
  now?: () => number;
}

/** How often the queue is polled while other instances' changes are heard, unless told otherwise. */
export const DEFAULT_QUEUE_POLL_MS = 5000;

/** How often the instance beats, unless told otherwise (HEARTBEAT_SECONDS). */
export const DEFAULT_HEARTBEAT_MS = 5000;

interface RunningTask {
  task: FileTask;
  abort: AbortController;
  stopReason: StopReason | undefined;
  done: Promise<void>;
}

const DEFAULT_SHUTDOWN_GRACE_MS = 3000;
const MONITOR_RESTART_DELAY_MS = 5000;
const RECORD_RETRY_DELAY_MS = 2000;

/** Settings in seconds may be fractional; the store keeps times in whole milliseconds. */
function wholeMilliseconds(seconds: number): number {
  return Math.round(seconds * 1000);
}

/**
 * The only part that decides: it watches every live upload (monitors), claims and runs tasks
 * (dispatcher + runner), and reacts to uploads being created and cancelled.
 */
export class Engine implements UploadLifecycle {
  private readonly monitors = new Map<string, UploadMonitor>();
  /** One-shot uploads being recorded as completed. */
  private readonly completing = new Set<string>();
  private readonly running = new Map<number, RunningTask>();
  private readonly dispatcher: Dispatcher;
  private readonly runner: TaskRunner;
  private readonly log: Logger;
  private readonly now: () => number;
  private stopping = false;
  private readonly observationClock = new ObservationClock();
  private readonly readiness: Readiness;
  private readonly s3: S3Health;
  private readonly throughput: Throughput;
  private readonly phases: PhaseWatch;
  private readonly existing: ExistingObjects;
  /** The files being uploaded, and whether the monitor observed them meanwhile. */
  private readonly inFlight = new InFlightFiles();
  /** What the engine tells: files started, progressing, completed, failed; uploads created, cancelled, phases. */
  readonly events: EventBus;
  /** Ends the start-up sweep when a stop comes first. */
  private readonly startAbort = new AbortController();
  private readonly instance: InstanceInfo;
  private readonly heartbeat: Heartbeat;
  private readonly watchLeases: WatchLeases;
  private readonly arrivals: Arrivals;
  private readonly notifications: Notifications;
  /** Stops listening for the other instances' changes. */
  private unlisten: (() => void) | undefined;

  constructor(private readonly options: EngineOptions) {
    this.log = options.logger;
    this.now = options.now ?? Date.now;
    this.throughput = new Throughput(this.now);
    this.events = options.events ?? new EventBus(options.logger);
    this.phases = new PhaseWatch({
      counts: (uploadIds) => options.store.uploadCounts(uploadIds),
      phaseOf: (uploadId, counts) => this.watchedPhase(uploadId, counts),
      watched: () => this.monitors.keys(),
      publish: (event) => {
        this.events.publish(event);
        // Only an upload that writes a manifest has anything to do when it becomes idle.
        const { uploadId } = event;
        if (
          event.type === 'upload.phase' &&
          event.phase === 'idle' &&
          this.monitors.get(uploadId)?.writesManifest
        )
          this.arrivals.idle(uploadId);
      },
      logger: options.logger,
      tickMs: options.phaseTickMs,
      now: this.now,
    });
    this.readiness = { settleMs: wholeMilliseconds(options.settleSeconds), stream: options.stream };
    this.s3 = new S3Health({
      probe: options.probeS3,
      logger: options.logger,
      onReachable: () => this.dispatcher.wake(),
      firstProbeDelayMs: options.firstProbeDelayMs,
      now: this.now,
    });
    this.existing = new ExistingObjects({
      store: options.store,
      auditor: options.auditor,
      logger: options.logger,
      headFromBytes: options.headFromBytes,
      now: this.now,
    });
    this.notifications = new Notifications({
      store: options.store,
      sender: new NotificationSender({
        logger: options.logger.child({ component: 'notification' }),
        allowedHosts: options.notifyAllowedHosts ?? null,
        baseDelayMs: options.notifyBaseDelayMs,
      }),
      logger: options.logger,
    });
    this.arrivals = new Arrivals({
      store: options.store,
      uploader: options.uploader,
      logger: options.logger,
      publish: (event) => this.events.publish(event),
      notify: (upload) => this.notifications.deliver(upload),
      now: this.now,
    });
    this.runner = new TaskRunner({
      markers: this.arrivals,
      existing: this.existing,
      inFlight: this.inFlight,
      watchedHere: (uploadId) => this.monitors.has(uploadId),
      s3Health: this.s3,
      store: options.store,
      uploader: options.uploader,
      logger: options.logger,
      readiness: this.readiness,
      failedRequeueIntervalMs: wholeMilliseconds(options.failedRequeueIntervalSeconds),
      observationClock: this.observationClock.stamp,
      bytesConfirmed: (task, bytes) => this.throughput.add(task.uploadId, bytes),
      publish: (event) => this.publishFileEvent(event),
      now: this.now,
    });
    this.instance = options.instance ?? {
      host: hostname(),
      pid: process.pid,
      version: VERSION,
      sourceRoots: null,
    };
    this.heartbeat = new Heartbeat({
      store: options.store,
      instance: this.instance,
      intervalMs: options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
      leaseMs: options.leaseMs ?? DEFAULT_LEASE_MS,
      logger: options.logger,
      running: () => [...this.running.keys()],
      lost: (taskIds) => this.leasesLost(taskIds),
      reaped: () => this.dispatcher.wake(),
      watching: () => this.watchLeases.watching(),
      watchesRenewed: (before, renewed) => this.watchLeases.renewed(before, renewed),
      takeWatchLeases: () => this.watchLeases.take(),
      takeNotifications: () => this.notifications.takeOver(),
      now: this.now,
    });
    this.watchLeases = new WatchLeases({
      store: options.store,
      sourceRoots: this.instance.sourceRoots,
      logger: options.logger,
      watch: (upload) => this.watchUpload(upload),
      unwatch: (uploadId) => void this.unwatch(uploadId),
    });
    this.dispatcher = new Dispatcher({
      store: options.store,
      sourceRoots: this.instance.sourceRoots,
      maxConcurrentFiles: options.maxConcurrentFiles,
      memory: options.claimMemory,
      runTask: (task) => this.runTask(task),
      mayClaim: () => this.s3.reachable,
      pollMs: () =>
        options.store.hearsChanges ? (options.queuePollMs ?? DEFAULT_QUEUE_POLL_MS) : IDLE_POLL_MS,
      logger: options.logger,
      now: this.now,
    });
  }

  /**
   * Registers this instance and starts its heartbeat, recovers the tasks no running instance
   * holds, then every pending or active upload under its roots is watched again.
   */
  async start(): Promise<void> {
    const { store, auditor } = this.options;
    const startedAt = this.now();
    await this.heartbeat.register();
    this.heartbeat.start();
    this.unlisten = store.onChange((change) => this.changed(change));
    this.observationClock.raiseFloor(await store.latestObservedAt());
    const recovered = await store.recoverInterruptedTasks(this.now());
    if (recovered > 0)
      this.log.info(
        { recovered },
        'tasks interrupted by a crash or stop (held by no running instance) are pending again',
      );
    // A restart is how an operator says "I fixed it" (the credentials, a permission, the bucket):
    // what failed for such reasons, or for reasons that pass with time, is tried again at once.
    const retried = await store.retryFailedTasksOfKinds(['configuration', 'transient'], this.now());
    if (retried > 0) this.log.info({ retried }, 'failed tasks are tried again at start-up');
    // The uploads it watches: its share of those no live instance watches (more at each heartbeat).
    // A completed one-shot upload is not scanned again; one not yet completed is scanned once more.
    await this.watchLeases.take();
    // Scans go on meanwhile; uploads start after, so that none of this run is taken for an orphan.
    const signal = this.startAbort.signal;
    await sweepOrphanUploads({ store, auditor, logger: this.log, startedAt, signal });
    if (this.stopping) return;
    this.dispatcher.start();
    this.phases.start();
    this.log.info({ watching: this.watchLeases.watching().length }, 'engine started');
    // Aborts a cancel could not finish before (S3 unreachable, a crash mid-cancel), in the
    // background: a slow S3 must not hold up the start, nor a stop.
    void this.finishCancels();
  }

  private async finishCancels(): Promise<void> {
    try {
      for (const upload of await this.options.store.listUploads(['cancelled'])) {
        if (this.stopping) return;
        await this.abortMultipartsOf(upload.uploadId);
      }
    } catch (error) {
      this.log.error(
        { err: error },
        'could not finish the aborts of cancelled uploads; the next start tries again',
      );
    }
  }

  /** Stops taking work, gives in-flight uploads a short grace, aborts the rest and records their state. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.startAbort.abort();
    this.unlisten?.();
    this.s3.stop();
    this.existing.stop();
    this.arrivals.stop();
    this.notifications.stop();
    this.watchLeases.stop();
    await this.dispatcher.stop();
    await this.phases.stop();
    await Promise.all([...this.monitors.values()].map((monitor) => monitor.stop()));
    this.monitors.clear();
    await this.watchLeases
      .release()
      .catch((error: unknown) =>
        this.log.error(
          { err: error, instanceId: this.options.store.instanceId },
          'cannot release the watch leases; other instances take these uploads once the leases expire',
        ),
      );
    const graceMs = this.options.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS;
    const drained = this.dispatcher.drain();
    const timer = setTimeout(() => {
      for (const entry of this.running.values()) this.stopTask(entry, 'shutdown');
    }, graceMs);
    await drained;
    clearTimeout(timer);
    // The leases were renewed while the tasks in flight ended; now no task is held.
    await this.heartbeat.stop();
    this.log.info('engine stopped');
  }

  /**
   * Tasks this instance runs whose leases expired before a heartbeat could renew them: another
   * instance may hold them already, and whatever this one records of them is refused. Their
   * uploads stop; the instance that claims them resumes from S3's list of parts.
   */
  private leasesLost(taskIds: readonly number[]): void {
    for (const taskId of taskIds) {
      const entry = this.running.get(taskId);
      if (!entry) continue;
      this.log.warn(
        { ...fileLogFields(entry.task), instanceId: this.options.store.instanceId },
        'lease lost: no heartbeat renewed it within LEASE_SECONDS and the task went back to the queue; stopping its upload here',
      );
      this.stopTask(entry, 'lease_lost');
    }
  }

  uploadCreated(upload: Upload): void {
    if (this.stopping) return;
    this.events.publish({ type: 'upload.created', uploadId: upload.uploadId, at: this.now() });
    // Its creator watches it, unless it cannot take the lease now: then a heartbeat takes it.
    this.watchLeases
      .take(upload.uploadId)
      .catch((error: unknown) =>
        this.log.error(
          { err: error, uploadId: upload.uploadId },
          'cannot take the watch lease of the new upload; the next heartbeat tries again',
        ),
      );
  }

  /**
   * Another instance changed the store: tasks ready are claimed now, an upload created there is
   * watched here if this instance's share of the watching says so, and the files of an upload
   * cancelled there stop here too. After notifications were lost, it looks at the queue and the
   * watch leases once; a cancel missed meanwhile is found by the runners, whose records are refused.
   */
  private changed(change: StoreChange): void {
    if (this.stopping) return;
    switch (change.kind) {
      case 'tasks_ready':
        this.dispatcher.wake();
        return;
      case 'upload_created':
        this.takeWatchLeases(change.uploadId);
        return;
      case 'upload_cancelled':
        void this.cancelledElsewhere(change.uploadId);
        return;
      case 'look_again':
        this.dispatcher.wake();
        this.takeWatchLeases();
        return;
    }
  }

  /** The watch leases nobody holds, as the heartbeat takes them; a failure waits for the next beat. */
  private takeWatchLeases(uploadId?: string): void {
    this.watchLeases
      .take()
      .catch((error: unknown) =>
        this.log.error(
          { err: error, uploadId, instanceId: this.options.store.instanceId },
          'cannot take the watch leases of uploads nobody watches; the next heartbeat tries again',
        ),
      );
  }

  /**
   * An upload cancelled through another instance (told once: a second cancel changes nothing and
   * tells nothing): its files in flight here stop, as for a local cancel.
   */
  private async cancelledElsewhere(uploadId: string): Promise<void> {
    const inFlight = [...this.running.values()].filter((entry) => entry.task.uploadId === uploadId).length;
    this.log.info(
      { uploadId, instanceId: this.options.store.instanceId, inFlight },
      'upload cancelled by another instance: stopping its files in flight here',
    );
    try {
      await this.uploadCancelled(uploadId);
    } catch (error) {
      this.log.error(
        { err: error, uploadId },
        'could not finish the cancel of an upload cancelled by another instance; the next start aborts what is left',
      );
    }
  }

  /** The watch lease of an upload was lost: another instance may watch it now. */
  private async unwatch(uploadId: string): Promise<void> {
    const monitor = this.monitors.get(uploadId);
    this.monitors.delete(uploadId);
    this.existing.forget(uploadId);
    await monitor?.stop();
  }

  async uploadCancelled(uploadId: string): Promise<void> {
    this.watchLeases.forget(uploadId);
    const monitor = this.monitors.get(uploadId);
    this.monitors.delete(uploadId);
    this.existing.forget(uploadId);
    this.events.publish({ type: 'upload.cancelled', uploadId, at: this.now() });
    this.phases.ended(uploadId, 'cancelled');
    const stops: Promise<void>[] = [];
    if (monitor) stops.push(monitor.stop());
    for (const entry of this.running.values()) {
      if (entry.task.uploadId === uploadId) this.stopTask(entry, 'cancelled');
    }
    await Promise.all(stops);
    await this.waitForTasksOf(uploadId);
    await this.abortMultipartsOf(uploadId);
    this.throughput.forget(uploadId);
  }

  tasksRequeued(): void {
    this.dispatcher.wake();
    for (const uploadId of this.monitors.keys()) this.phases.lookSoon(uploadId);
  }

  rescan(uploadId: string): RescanOutcome {
    const monitor = this.stopping ? undefined : this.monitors.get(uploadId);
    return monitor ? monitor.requestRescan() : 'not_watched';
  }

  s3Health(): S3HealthReport {
    return this.s3.report();
  }

  lastScan(uploadId: string): ScanReport | null {
    return this.monitors.get(uploadId)?.lastScan() ?? null;
  }

  progress(upload: Upload, counts: UploadCounts): UploadProgress {
    const initialScanRunning = this.initialScanRunning(upload.uploadId);
    const bytesPerSecond = this.throughput.bytesPerSecond(upload.uploadId);
    return progressOf(upload, counts, { initialScanRunning, bytesPerSecond });
  }

  /** The phase of a watched upload; a one-shot upload found idle after its scan is completed. */
  private watchedPhase(uploadId: string, counts: UploadCounts): UploadPhase | undefined {
    const monitor = this.monitors.get(uploadId);
    if (!monitor || this.stopping) return undefined;
    const phase = phaseOf({ status: 'active' }, this.initialScanRunning(uploadId), counts.files);
    if (phase === 'idle' && monitor.oneShot && monitor.scannedWhole()) void this.complete(uploadId);
    return phase;
  }

  /**
   * A one-shot upload whose files are all completed becomes completed (the store checks its counts
   * again in the same statement): it is watched no more. A database error is logged; the next
   * look at its phase tries again.
   */
  private async complete(uploadId: string): Promise<void> {
    if (this.completing.has(uploadId)) return;
    this.completing.add(uploadId);
    try {
      const upload = await this.options.store.getUpload(uploadId);
      if (upload?.status !== 'active') return;
      await this.arrivals.beforeCompletion(upload, this.startAbort.signal);
      const at = this.now();
      if (!(await this.options.store.completeUpload(uploadId, at))) return;
      this.arrivals.completed(uploadId, at);
      this.watchLeases.forget(uploadId);
      const monitor = this.monitors.get(uploadId);
      this.monitors.delete(uploadId);
      this.existing.forget(uploadId);
      this.events.publish({ type: 'upload.completed', uploadId, at });
      this.phases.ended(uploadId, 'completed');
      this.throughput.forget(uploadId);
      this.log.info({ uploadId }, 'one-shot upload completed: every file it found is uploaded');
      await monitor?.stop();
    } catch (error) {
      if (this.stopping) return;
      this.log.error(
        { err: error, uploadId },
        'cannot write the manifest of the one-shot upload, or record it as completed; trying again',
      );
    } finally {
      this.completing.delete(uploadId);
    }
  }

  private initialScanRunning(uploadId: string): boolean {
    const monitor = this.stopping ? undefined : this.monitors.get(uploadId);
    const scan = monitor?.lastScan();
    // A monitor that has not begun its first scan yet is about to: the backlog is not known.
    return monitor !== undefined && (!scan || (scan.kind === 'initial' && scan.finishedAt === null));
  }

  /** A file's event, told; one that may change its upload's phase has the phase looked at. */
  private publishFileEvent(event: ServiceEvent): void {
    if (event.type === 'file.started') this.throughput.began(event.uploadId);
    this.events.publish(event);
    if (event.type !== 'file.progress') this.phases.lookSoon(event.uploadId);
  }

  private watchUpload(upload: Upload): void {
    if (this.monitors.has(upload.uploadId)) return;
    const monitor = new UploadMonitor(upload, {
      store: this.options.store,
      logger: this.log,
      readiness: this.readiness,
      rescanIntervalMs: wholeMilliseconds(this.options.rescanIntervalSeconds),
      tasksChanged: () => {
        this.dispatcher.wake();
        this.phases.lookSoon(upload.uploadId);
      },
      scanned: (report) => {
        const { kind, filesSeen, filesChanged, filesNotUtf8, durationMs, error, finishedAt } = report;
        const { uploadId } = upload;
        const at = finishedAt ?? this.now();
        const scan = { kind, filesSeen, filesChanged, filesNotUtf8, durationMs: durationMs ?? 0, error };
        this.events.publish({ type: 'upload.scanned', uploadId, ...scan, at });
        this.phases.lookSoon(uploadId);
        // A whole scan may let the upload's markers go.
        this.dispatcher.wake();
      },
      observationClock: this.observationClock.stamp,
      now: this.now,
      databaseFiles: this.options.databaseFiles,
      watchObserver: this.options.watchObserver,
      observed: (relativePaths) => this.inFlight.observed(upload.uploadId, relativePaths),
    });
    this.monitors.set(upload.uploadId, monitor);
    this.existing.watch(upload);
    this.phases.watching(upload.uploadId);
    this.phases.lookSoon(upload.uploadId);
    monitor.start().then(
      () => {
        this.dispatcher.wake();
        this.phases.lookSoon(upload.uploadId);
      },
      (error: unknown) => {
        // Only the database can fail here (scan errors are handled by the monitor): try again later.
        this.log.error({ err: error, uploadId: upload.uploadId }, 'cannot start watching; retrying');
        if (this.monitors.get(upload.uploadId) === monitor) this.monitors.delete(upload.uploadId);
        void monitor.stop();
        setTimeout(() => void this.watchAgain(upload.uploadId), MONITOR_RESTART_DELAY_MS).unref();
      },
    );
  }

  /** A monitor that could not start: watch the upload again, if it is still live by then. */
  private async watchAgain(uploadId: string): Promise<void> {
    if (this.stopping) return;
    try {
      const upload = await this.options.store.getUpload(uploadId);
      const live = upload?.status === 'pending' || upload?.status === 'active';
      if (upload && live && this.watchLeases.holds(uploadId) && !this.stopping) this.watchUpload(upload);
    } catch (error) {
      this.log.error({ err: error, uploadId }, 'cannot read the upload to watch it again; retrying');
      setTimeout(() => void this.watchAgain(uploadId), MONITOR_RESTART_DELAY_MS).unref();
    }
  }

  private runTask(task: FileTask): Promise<void> {
    const abort = new AbortController();
    const entry: RunningTask = { task, abort, stopReason: undefined, done: Promise.resolve() };
    entry.done = this.runner
      .run(task, abort.signal, () => entry.stopReason)
      .catch(async (error: unknown) => {
        this.log.error({ err: error, ...fileLogFields(task) }, 'recording an upload failed');
        await this.recordUnexpected(task, error);
      })
      .finally(() => {
        if (this.running.get(task.taskId) === entry) this.running.delete(task.taskId);
      });
    this.running.set(task.taskId, entry);
    return entry.done;
  }

  /**
   * The outcome could not be recorded (a full or read-only disk, say): fail the task so that it is
   * requeued. While the database refuses that too, try again every few seconds in the background
   * (the slot is free meanwhile): a task left in_progress would wait for a restart. A database
   * whose file was lost refuses until a restart, which makes the task pending again: no retrying.
   */
  private async recordUnexpected(task: FileTask, error: unknown): Promise<void> {
    try {
      await this.runner.recordUnexpected(task, error);
    } catch (again) {
      if (this.stopping || again instanceof DatabaseLostError) {
        this.log.error({ err: again, ...fileLogFields(task) }, 'the task is pending again at the next start');
        return;
      }
      this.log.error({ err: again, ...fileLogFields(task) }, 'cannot record the failed upload yet; retrying');
      setTimeout(() => void this.recordUnexpected(task, error), RECORD_RETRY_DELAY_MS).unref();
    }
  }

  private stopTask(entry: RunningTask, reason: StopReason): void {
    entry.stopReason ??= reason;
    entry.abort.abort(new Error(`upload stopped: ${reason}`));
  }

  private async waitForTasksOf(uploadId: string): Promise<void> {
    const ofUpload = [...this.running.values()].filter((entry) => entry.task.uploadId === uploadId);
    await Promise.allSettled(ofUpload.map((entry) => entry.done));
  }

  /** No multipart upload of a cancelled upload may be left on S3 to cost storage. */
  private async abortMultipartsOf(uploadId: string): Promise<void> {
    const { store, uploader } = this.options;
    for (const state of await store.listMultipartsOfUpload(uploadId)) {
      try {
        await uploader.abortMultipart(state.bucket, state.key, state.s3UploadId);
        await store.deleteMultipart(state.taskId);
      } catch (error) {
        this.log.error(
          { err: error, uploadId, key: state.key },
          'could not abort a multipart upload of a cancelled upload',
        );
      }
    }
  }
}
