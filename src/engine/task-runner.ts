import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { FileTask, UploadRequest } from '../domain/model.js';
import type { Logger } from '../logger.js';
import type { Store } from '../store/store.js';
import { FileChangedError, FileVanishedError, describeS3Error } from '../transfer/errors.js';
import type { ResumeState, Uploader, UploadProgressListener } from '../transfer/types.js';
import { readyAtFor } from './readiness.js';

/** Progress of a single file is written at most this often (parts are written as each finishes). */
const PROGRESS_WRITE_INTERVAL_MS = 1000;

export interface TaskRunnerOptions {
  store: Store;
  uploader: Uploader;
  logger: Logger;
  settleMs: number;
  failedRequeueIntervalMs: number;
  now?: () => number;
}

/** Why a running task was told to stop. */
export type StopReason = 'cancelled' | 'shutdown';

/**
 * Runs one claimed task: hands the file to the uploader, persists what it reports as it happens,
 * and records the outcome. Every outcome ends in exactly one guarded transition of the task.
 */
export class TaskRunner {
  private readonly now: () => number;

  constructor(private readonly options: TaskRunnerOptions) {
    this.now = options.now ?? Date.now;
  }

  async run(task: FileTask, signal: AbortSignal, stopReason: () => StopReason | undefined): Promise<void> {
    const { store, logger } = this.options;
    const log = logger.child({ uploadId: task.uploadId, taskId: task.taskId, path: task.relativePath });
    const request = await store.getRequest(task.uploadId);
    if (!request) {
      await store.dropTask(task.taskId);
      return;
    }
    if (request.status === 'cancelled') {
      // Claimed just before its request was cancelled: leave it, untouched, with the cancelled request.
      await store.releaseTask(
        task.taskId,
        { size: task.size, mtimeMs: task.mtimeMs, readyAt: this.now() },
        null,
        this.now(),
      );
      return;
    }
    const filePath = path.join(request.sourceFolder, ...task.relativePath.split('/'));
    try {
      const resume = await this.resumeStateOf(task);
      const result = await this.options.uploader.upload(
        {
          filePath,
          bucket: request.destinationBucket,
          key: task.objectKey,
          size: task.size,
          mtimeMs: task.mtimeMs,
          signal,
        },
        resume,
        this.progressListener(task, request),
      );
      const completed = await store.completeTask(
        task.taskId,
        { etag: result.etag, validation: result.validation },
        this.now(),
      );
      await store.deleteMultipart(task.taskId);
      await this.noticeChangeSinceUpload(task, filePath);
      log.info(
        {
          key: task.objectKey,
          size: task.size,
          method: result.method,
          bytesSent: result.bytesSent,
          partsReused: result.partsReused,
          etag: result.etag,
          validation: result.validation,
          recorded: completed,
        },
        'file uploaded',
      );
    } catch (error) {
      await this.recordFailure(task, request, filePath, error, stopReason(), log);
    }
  }

  /**
   * A write that lands while the last request is in flight is reported by the watcher while the
   * task is still in_progress, when it cannot be recorded; look once more so that it is not left
   * for the next rescan.
   */
  private async noticeChangeSinceUpload(task: FileTask, filePath: string): Promise<void> {
    const current = await stat(filePath).catch(() => undefined);
    if (!current?.isFile() || (current.size === task.size && current.mtimeMs === task.mtimeMs)) return;
    const now = this.now();
    const file = { relativePath: task.relativePath, size: current.size, mtimeMs: current.mtimeMs };
    await this.options.store.recordObservedFiles(
      task.uploadId,
      [file],
      () => task.objectKey,
      (changed) => readyAtFor(changed, now, this.options.settleMs),
      now,
    );
  }

  private async resumeStateOf(task: FileTask): Promise<ResumeState | undefined> {
    const saved = await this.options.store.getMultipart(task.taskId);
    if (!saved) return undefined;
    return {
      s3UploadId: saved.s3UploadId,
      partSize: saved.partSize,
      parts: saved.parts,
      size: saved.size,
      mtimeMs: saved.mtimeMs,
    };
  }

  private progressListener(task: FileTask, request: UploadRequest): UploadProgressListener {
    const { store } = this.options;
    let lastWrite = 0;
    let pending: Promise<void> = Promise.resolve();
    return {
      multipartCreated: async ({ s3UploadId, partSize }) => {
        await store.saveMultipart(
          {
            taskId: task.taskId,
            s3UploadId,
            bucket: request.destinationBucket,
            key: task.objectKey,
            size: task.size,
            mtimeMs: task.mtimeMs,
            partSize,
          },
          this.now(),
        );
      },
      partUploaded: async (part) => {
        await store.recordPart(task.taskId, part);
      },
      bytesUploaded: (total) => {
        const now = this.now();
        if (now - lastWrite < PROGRESS_WRITE_INTERVAL_MS && total < task.size) return;
        lastWrite = now;
        pending = pending.then(() => store.recordProgress(task.taskId, total, now)).catch(() => undefined);
      },
    };
  }

  private async recordFailure(
    task: FileTask,
    request: UploadRequest,
    filePath: string,
    error: unknown,
    stopReason: StopReason | undefined,
    log: Logger,
  ): Promise<void> {
    const { store } = this.options;
    const now = this.now();
    if (stopReason) {
      // Cancelled or shutting down: the task goes back to the queue with its multipart progress,
      // so that a restart resumes it (a cancelled request's tasks are never claimed again).
      await store.releaseTask(
        task.taskId,
        { size: task.size, mtimeMs: task.mtimeMs, readyAt: now },
        null,
        now,
      );
      log.info({ reason: stopReason }, 'upload stopped');
      return;
    }
    if (error instanceof FileVanishedError) {
      await this.dropVanished(task, request, log);
      return;
    }
    if (error instanceof FileChangedError) {
      const current = await stat(filePath).catch(() => undefined);
      if (!current?.isFile()) {
        await this.dropVanished(task, request, log);
        return;
      }
      const version = { size: current.size, mtimeMs: current.mtimeMs };
      const readyAt = readyAtFor(version, now, this.options.settleMs);
      await store.releaseTask(
        task.taskId,
        { ...version, readyAt },
        'the file changed during its upload; it will be uploaded again once it settles',
        now,
      );
      log.info({ size: current.size }, 'file changed during its upload; back to pending');
      return;
    }
    const message = describeS3Error(error);
    const retryAt = now + this.options.failedRequeueIntervalMs;
    await store.failTask(task.taskId, message, retryAt, now);
    await store.setRequestError(task.uploadId, `${task.relativePath}: ${message}`, now);
    log.error(
      { err: error, key: task.objectKey, retryAt: new Date(retryAt).toISOString() },
      `upload failed: ${message}`,
    );
  }

  private async dropVanished(task: FileTask, request: UploadRequest, log: Logger): Promise<void> {
    const { store, uploader } = this.options;
    const saved = await store.getMultipart(task.taskId);
    if (saved) {
      await uploader
        .abortMultipart(saved.bucket, saved.key, saved.s3UploadId)
        .catch((error: unknown) =>
          log.warn({ err: error }, 'could not abort the multipart upload of a vanished file'),
        );
    }
    await store.dropTask(task.taskId);
    const note = `${task.relativePath} vanished before it was uploaded; dropped from the queue`;
    await store.setRequestError(request.uploadId, note, this.now());
    log.warn(note);
  }
}
