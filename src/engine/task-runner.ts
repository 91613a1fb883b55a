import type { Stats } from 'node:fs';
import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { sameVersion, versionOf } from '../domain/file-version.js';
import { DatabaseUnavailableError } from '../domain/errors.js';
import type { FileTask, FileVersion, Upload } from '../domain/model.js';
import { keyProblem } from '../domain/object-key.js';
import type { Logger } from '../logger.js';
import type { Store } from '../store/store.js';
import { normalizeEtag } from '../transfer/checksums.js';
import type { FailureKind } from '../domain/status.js';
import type { ServiceEvent } from '../domain/events.js';
import type { TaskFailure } from '../store/store.js';
import {
  FileChangedError,
  FileRewrittenError,
  FileVanishedError,
  ObjectTooLargeError,
  describeS3Error,
  isS3Unreachable,
} from '../transfer/errors.js';
import type { PreviousUpload, UploadedContent, Uploader, UploadProgressListener } from '../transfer/types.js';
import { describeUploadFailure, failureKindOf } from './failure-message.js';
import type { ExistingObjects } from './existing-objects.js';
import type { InFlightFiles } from './in-flight-files.js';
import type { S3Health } from './s3-health.js';
import { readinessOf, readyAtFor, settledAtFor, streamsNow, type Readiness } from './readiness.js';

/** Tries (claims of the task) at aborting a vanished file's multipart upload before giving up. */
const VANISHED_ABORT_ATTEMPTS = 3;

/**
 * A failure that may heal by itself is requeued after this, then after twice as long at each
 * attempt, up to the requeue interval: a file that failed in a short storm is back within a minute.
 */
export const FIRST_REQUEUE_DELAY_MS = 30_000;

/** Progress of a single file is written at most this often (parts are written as each finishes). */
const PROGRESS_WRITE_INTERVAL_MS = 1000;

/** A file's progress is told (file.progress) at most this often: a few times a second. */
const PROGRESS_EVENT_INTERVAL_MS = 250;

export interface TaskRunnerOptions {
  store: Store;
  uploader: Uploader;
  logger: Logger;
  readiness: Readiness;
  /** Whole milliseconds: the longest wait before a failed task is requeued. */
  failedRequeueIntervalMs: number;
  /** Tells an S3 outage from a failure of one file. */
  s3Health: Pick<S3Health, 'confirmOutage'>;
  /** Stamps observations (see ObservationClock). */
  observationClock: () => number;
  /** Bytes of the task's file S3 confirmed just now, during this run: the upload's throughput. */
  bytesConfirmed?: (task: FileTask, bytes: number) => void;
  /** What is already at a file's key (see IfExists); nothing is compared without it. */
  existing?: Pick<ExistingObjects, 'lookup'>;
  /** Tells what happens to each file (see domain/events.ts). */
  publish?: (event: ServiceEvent) => void;
  /** Whether the monitor observed a file during its upload; none: every file is looked at after it. */
  inFlight?: InFlightFiles;
  /**
   * Whether this instance watches the upload: the files of one another instance watches (it hears
   * their events, not this one) are looked at after their upload, as those of an upload not
   * watched at all. Default: every upload is.
   */
  watchedHere?: (uploadId: string) => boolean;
  /** What comes before and after a completion marker's upload (see arrivals.ts); none: nothing. */
  markers?: MarkerSteps;
  now?: () => number;
}

/** The steps around a marker's upload: the manifest before it, the arrival told after. */
export interface MarkerSteps {
  /** Before the marker is sent; a failure fails the marker's task, which is tried again. */
  beforeMarker(upload: Upload, signal: AbortSignal): Promise<void>;
  /** The marker's completion is recorded, with its upload's arrival. */
  markerUploaded(task: FileTask): void;
}

/**
 * Why a running task was told to stop. 'lease_lost': this instance no longer holds it (its lease
 * expired and the task went back to the queue; see heartbeat.ts).
 */
export type StopReason = 'cancelled' | 'shutdown' | 'lease_lost';

/**
 * Runs one claimed task: hands the file to the uploader, persists what it reports as it happens,
 * and records the outcome. Every outcome ends in exactly one guarded transition of the task.
 */
/**
 * The fields of every log line about a task's file, under the same names wherever it is logged: a
 * search of the logs by our upload id, or by an object key, finds every line of its files.
 */
export function fileLogFields(task: FileTask): {
  uploadId: string;
  taskId: number;
  path: string;
  key: string;
} {
  return { uploadId: task.uploadId, taskId: task.taskId, path: task.relativePath, key: task.objectKey };
}

export class TaskRunner {
  private readonly now: () => number;
  private readonly publish: (event: ServiceEvent) => void;

  constructor(private readonly options: TaskRunnerOptions) {
    this.now = options.now ?? Date.now;
    this.publish = options.publish ?? (() => undefined);
  }

  async run(task: FileTask, signal: AbortSignal, stopReason: () => StopReason | undefined): Promise<void> {
    const { store, logger } = this.options;
    // Made only when a line about the file is logged at warn or above: most files never need one.
    const log = (): Logger => logger.child(fileLogFields(task));
    const upload = await store.getUpload(task.uploadId);
    if (!upload) {
      await store.dropTask(task.taskId);
      return;
    }
    if (upload.status === 'cancelled') {
      // Claimed just before its upload was cancelled: it leaves the queue with its upload.
      await this.releaseUnchanged(task, null);
      return;
    }
    const filePath = path.join(upload.sourceFolder, ...task.relativePath.split('/'));
    const keyError = keyProblem(task.objectKey);
    if (keyError !== null) {
      const message = `${keyError}: rename the file or shorten the upload's destination_prefix; it is not retried automatically`;
      await this.failForGood(task, upload, filePath, message, log());
      return;
    }
    const { readiness } = this.options;
    const { taskId, uploadId, relativePath, objectKey: key, size, attempts: attempt } = task;
    const at = this.now();
    this.options.inFlight?.begin(uploadId, relativePath);
    this.publish({ type: 'file.started', uploadId, taskId, path: relativePath, key, size, attempt, at });
    try {
      if (task.marker) await this.options.markers?.beforeMarker(upload, signal);
      const existing = await this.options.existing?.lookup(upload, task, signal);
      const result = await this.options.uploader.upload(
        {
          filePath,
          bucket: upload.destinationBucket,
          key: task.objectKey,
          objectProperties: upload.objectProperties,
          size: task.size,
          mtimeMs: task.mtimeMs,
          ino: task.ino,
          ctimeMs: task.ctimeMs,
          stream: !task.marker && !task.streamRefused && streamsNow(task, this.now(), readiness),
          settleMs: readiness.settleMs,
          previous: previousUploadOf(task),
          hashFirst: task.hashFirst ? uploadedContentOf(task) : undefined,
          existing,
          signal,
          // Without the key: the transfer's own lines name the bucket and key they are about.
          logFields: { uploadId, taskId, path: relativePath, component: 'transfer' },
        },
        await store.getMultipart(task.taskId),
        this.progressListener(task, upload),
      );
      const { etag, validation, sha256, size, mtimeMs, ino, ctimeMs, skipped } = result;
      const recorded = await store.completeTask(
        task.taskId,
        { etag, validation, sha256, size, mtimeMs, ino, ctimeMs, skipped },
        this.now(),
      );
      if (!recorded) {
        log().warn(
          { etag, method: result.method },
          'the upload finished, but the task was no longer in progress for this instance (its lease expired and it went back to the queue, or its upload was cancelled): not recorded here',
        );
      } else {
        const { bytesSent, method } = result;
        this.publish({
          type: 'file.completed',
          uploadId,
          taskId,
          path: relativePath,
          key,
          size,
          bytesSent,
          method,
          skipped: skipped ?? null,
          at: this.now(),
        });
        if (task.marker) this.options.markers?.markerUploaded(task);
      }
      // At debug: one line per file at info would drown the log of a folder of a million files.
      logger.debug(
        {
          ...fileLogFields(task),
          size,
          method: result.method,
          bytesSent: result.bytesSent,
          bytesCopied: result.bytesCopied,
          partsReused: result.partsReused,
          etag,
          sha256,
          validation,
          recorded,
        },
        result.method === 'unchanged'
          ? 'only the metadata of the file changed since its upload (its content hashes the same); nothing sent'
          : result.method === 'skipped'
            ? `file not sent: ${result.skipped ?? 'an object is already at its key'}`
            : 'file uploaded',
      );
      // An upload that is not watched, or not here, hears of no event: its file is looked at in any case.
      const observed = this.options.inFlight?.end(uploadId, relativePath) ?? true;
      const heard = upload.watch && (this.options.watchedHere?.(uploadId) ?? true);
      if (observed || !heard) {
        await this.noticeChangeSinceUpload({ ...task, size, mtimeMs, ino, ctimeMs }, filePath);
      }
    } catch (error) {
      this.options.inFlight?.end(uploadId, relativePath);
      await this.recordFailure(task, upload, filePath, error, stopReason(), log());
    }
  }

  /**
   * Last resort when recording an outcome failed (the database refused a write, a bug): the task
   * must not stay in_progress until the next restart, so it fails and is requeued like any failure.
   * The engine calls this again until the database takes it. When the database was what refused,
   * its taking this write means it is back: the task is due again at once (a database server that
   * restarted, a disk given room). Anything else needs a person to look first.
   */
  async recordUnexpected(task: FileTask, error: unknown): Promise<void> {
    const now = this.now();
    const message = `internal error while uploading: ${error instanceof Error ? error.message : String(error)}`;
    const failure: TaskFailure =
      error instanceof DatabaseUnavailableError
        ? { message, kind: 'transient', retryAt: now }
        : { message, kind: 'configuration', retryAt: now + this.options.failedRequeueIntervalMs };
    await this.fail(task, failure, now);
  }

  /** in_progress → failed, told as file.failed. */
  private async fail(task: FileTask, failure: TaskFailure, now: number): Promise<void> {
    if (!(await this.options.store.failTask(task.taskId, failure, now))) return;
    const { uploadId, taskId, relativePath: path, objectKey: key, size } = task;
    this.publish({
      type: 'file.failed',
      uploadId,
      taskId,
      path,
      key,
      size,
      message: failure.message,
      at: now,
    });
  }

  private progressListener(task: FileTask, upload: Upload): UploadProgressListener {
    const { store } = this.options;
    let lastWrite = 0;
    let lastTold = 0;
    let pending: Promise<void> = Promise.resolve();
    // What S3 held of the file when this run began (as last recorded): resumed parts are not new.
    let confirmed = task.bytesUploaded;
    return {
      multipartCreated: async (multipart) => {
        const { taskId, objectKey: key, size, mtimeMs, ino, ctimeMs } = task;
        const bucket = upload.destinationBucket;
        await store.saveMultipart(
          { taskId, bucket, key, size, mtimeMs, ino, ctimeMs, ...multipart },
          this.now(),
        );
      },
      partUploaded: async (part) => {
        await store.recordPart(task.taskId, part);
      },
      multipartAborted: async () => {
        await store.deleteMultipart(task.taskId);
      },
      bytesUploaded: (total, sizeSoFar) => {
        if (total > confirmed) {
          this.options.bytesConfirmed?.(task, total - confirmed);
          confirmed = total;
        }
        const now = this.now();
        const size = sizeSoFar ?? task.size;
        // The last bytes of a file of known size: completeTask records them in the same write.
        if (sizeSoFar === undefined && total >= size) return;
        if (now - lastTold >= PROGRESS_EVENT_INTERVAL_MS) {
          lastTold = now;
          const { uploadId, taskId, relativePath: path } = task;
          this.publish({
            type: 'file.progress',
            uploadId,
            taskId,
            path,
            bytesUploaded: total,
            size,
            at: now,
          });
        }
        if (now - lastWrite < PROGRESS_WRITE_INTERVAL_MS && total < size) return;
        lastWrite = now;
        // Progress is informative: a failed write of it must not fail the upload.
        pending = pending
          .then(() => store.recordProgress(task.taskId, total, now, sizeSoFar))
          .catch(() => undefined);
      },
    };
  }

  private async recordFailure(
    task: FileTask,
    upload: Upload,
    filePath: string,
    error: unknown,
    stopReason: StopReason | undefined,
    log: Logger,
  ): Promise<void> {
    const { store } = this.options;
    if (stopReason === 'lease_lost') {
      // Not this instance's any more: nothing of it is recorded here (the store would refuse).
      log.info({ reason: stopReason }, 'upload stopped');
      return;
    }
    if (stopReason) {
      // Cancelled: it leaves the queue with its upload. Shutting down: back to the queue with its
      // multipart progress, so that the next start resumes it.
      await this.releaseUnchanged(task, stopReason === 'cancelled' ? null : this.now());
      log.info({ reason: stopReason }, 'upload stopped');
      return;
    }
    if (error instanceof FileVanishedError) {
      await this.dropVanished(task, upload, log);
      return;
    }
    if (error instanceof FileChangedError || error instanceof FileRewrittenError) {
      const observedAt = this.options.observationClock();
      const current = await lstatOrUndefined(filePath);
      if (!current?.isFile()) {
        await this.dropVanished(task, upload, log);
        return;
      }
      const now = this.now();
      const version = { ...versionOf(current), observedAt };
      // A file rewritten in place would be sent again at every rewrite: it waits until it settles.
      const refuseStreaming =
        error instanceof FileRewrittenError && (error.how === 'rewritten' || error.how === 'outgrown');
      const readyAt = (refuseStreaming ? settledAtFor : readyAtFor)(version, now, this.options.readiness);
      const note = refuseStreaming
        ? `${error.message}, once it settles`
        : error instanceof FileRewrittenError
          ? error.message
          : 'the file changed during its upload; it will be uploaded again once it settles';
      await store.releaseTask(task.taskId, { ...version, readyAt, refuseStreaming }, note, now);
      log.info(
        { size: current.size, reason: error.message },
        'file changed during its upload; back to pending',
      );
      return;
    }
    if (error instanceof ObjectTooLargeError) {
      const message = `${error.message}; it is not retried automatically, only once the file changes or on POST retry`;
      await this.failForGood(task, upload, filePath, message, log);
      return;
    }
    const message = describeUploadFailure(error, filePath);
    if (isS3Unreachable(error) && (await this.options.s3Health.confirmOutage(upload.destinationBucket))) {
      // S3 is down, not this file: back to the queue as it was, the attempt not counted and its
      // parts kept, to resume once S3 answers (the outage itself is logged once, by S3Health).
      const now = this.now();
      const { size, mtimeMs, ino, ctimeMs, observedAt } = task;
      const release = { size, mtimeMs, ino, ctimeMs, observedAt, readyAt: now, refundAttempt: true };
      await store.releaseTask(task.taskId, release, `waiting for S3 to answer: ${message}`, now);
      log.debug({ reason: message }, 'S3 cannot be reached; the file waits for it');
      return;
    }
    const now = this.now();
    const kind = failureKindOf(error);
    const retryAt = now + this.requeueDelayMs(kind, task.attempts);
    await this.fail(task, { message, kind, retryAt }, now);
    log.error({ err: error, kind, retryAt: new Date(retryAt).toISOString() }, `upload failed: ${message}`);
  }

  /** How long a failed task waits for its automatic requeue (see FIRST_REQUEUE_DELAY_MS). */
  private requeueDelayMs(kind: FailureKind, attempts: number): number {
    const interval = this.options.failedRequeueIntervalMs;
    if (kind !== 'transient') return interval;
    return Math.min(interval, FIRST_REQUEUE_DELAY_MS * 2 ** Math.min(Math.max(attempts - 1, 0), 20));
  }

  /**
   * A file S3 can never store as it is (its key is too long, it is over 5 TiB): the task fails
   * without a requeue time, since no retry can cure it; renaming the file (or a new version of it,
   * or POST retry, which then finds the old name gone) is what moves it again. `message` says so.
   */
  private async failForGood(
    task: FileTask,
    upload: Upload,
    filePath: string,
    message: string,
    log: Logger,
  ): Promise<void> {
    if (!(await lstatOrUndefined(filePath))?.isFile()) {
      await this.dropVanished(task, upload, log);
      return;
    }
    const now = this.now();
    await this.fail(task, { message, kind: 'permanent', retryAt: null }, now);
    log.error(`upload failed for good: ${message}`);
  }

  /** Back to pending with the version it had (its parts stay recorded); readyAt null leaves the queue. */
  private async releaseUnchanged(task: FileTask, readyAt: number | null): Promise<void> {
    const { size, mtimeMs, ino, ctimeMs, observedAt } = task;
    await this.options.store.releaseTask(
      task.taskId,
      { size, mtimeMs, ino, ctimeMs, observedAt, readyAt },
      null,
      this.now(),
    );
  }

  /**
   * A write that lands while the last request is in flight is reported by the watcher while the
   * task is still in_progress, when it cannot be recorded; look once more so that it is not left
   * for the next rescan. Only for a file the monitor observed during its upload (InFlightFiles).
   */
  private async noticeChangeSinceUpload(
    task: Pick<FileTask, 'uploadId' | 'relativePath' | 'objectKey'> & FileVersion,
    filePath: string,
  ): Promise<void> {
    const observedAt = this.now();
    const current = await lstatOrUndefined(filePath);
    if (!current?.isFile()) return;
    const file = { relativePath: task.relativePath, ...versionOf(current), observedAt };
    if (sameVersion(task, file)) return;
    await this.options.store.recordObservedFiles(
      task.uploadId,
      [file],
      () => task.objectKey,
      (changed) => readinessOf(changed, observedAt, this.options.readiness),
      observedAt,
    );
  }

  /**
   * The file is gone (or is no longer a regular file): its multipart upload is aborted and the task
   * dropped. When the abort fails, the task fails instead, so that the abort is tried again at the
   * requeue rather than the upload id being forgotten with the task.
   */
  private async dropVanished(task: FileTask, upload: Upload, log: Logger): Promise<void> {
    const { store, uploader } = this.options;
    const saved = await store.getMultipart(task.taskId);
    if (saved) {
      try {
        await uploader.abortMultipart(saved.bucket, saved.key, saved.s3UploadId);
      } catch (error) {
        if (task.attempts >= VANISHED_ABORT_ATTEMPTS) {
          // Not for ever (no abort permission, say): drop it, and leave the upload id in the log.
          log.error(
            { err: error, bucket: saved.bucket, key: saved.key, s3UploadId: saved.s3UploadId },
            'giving up aborting the multipart upload of a vanished file; abort it by hand or with a lifecycle rule',
          );
          await this.dropWithNote(task, upload, log);
          return;
        }
        const now = this.now();
        const message = `the file vanished, and its multipart upload could not be aborted yet: ${describeS3Error(error)}`;
        const retryAt = now + this.options.failedRequeueIntervalMs;
        await this.fail(task, { message, kind: failureKindOf(error), retryAt }, now);
        log.warn({ err: error }, message);
        return;
      }
    }
    await this.dropWithNote(task, upload, log);
  }

  private async dropWithNote(task: FileTask, upload: Upload, log: Logger): Promise<void> {
    await this.options.store.dropTask(task.taskId);
    const note = `${task.relativePath} vanished before it was uploaded; dropped from the queue`;
    await this.options.store.setUploadError(upload.uploadId, note, this.now());
    log.warn(note);
  }
}

/** What the last completed upload put at the key, when it is known whole (the base of an append). */
function previousUploadOf(task: FileTask): PreviousUpload | undefined {
  const { etag, sha256, uploadedSize } = task;
  if (etag === null || sha256 === null || uploadedSize === null) return undefined;
  return { etag: normalizeEtag(etag), sha256, size: uploadedSize };
}

/** What the last completed upload stored, for a file hashed before it is sent (hashFirst). */
function uploadedContentOf(task: FileTask): UploadedContent | undefined {
  const { etag, validation, sha256 } = task;
  if (etag === null || validation === null || sha256 === null) return undefined;
  return { etag: normalizeEtag(etag), validation, sha256 };
}

async function lstatOrUndefined(filePath: string): Promise<Stats | undefined> {
  return lstat(filePath).catch(() => undefined);
}
