// File tasks: what the monitor records, what the API pages through, and the transitions of one
// task's run. Every transition of a run is guarded by status = 'in_progress'.
import type { Database } from 'better-sqlite3';
import { sameVersion } from '../../domain/file-version.js';
import type { CompletedUpload, EpochMs, FileReadiness, FileTask, ObservedFile } from '../../domain/model.js';
import type { FailureKind, TaskStatus } from '../../domain/status.js';
import type { TaskRelease } from '../store.js';
import { cursorOfTaskId, taskIdOfCursor } from '../cursors.js';
import { assertLimit } from '../errors.js';
import { readyAtUnlessCancelled } from './queue.js';
import { toFileTask } from './rows.js';
import type { TaskRow } from './rows.js';

interface ObservedFileRow {
  uploadId: string;
  relativePath: string;
  objectKey: string;
  size: number;
  mtimeMs: number;
  ino: number;
  ctimeMs: number;
  observedAt: EpochMs;
  readyAt: EpochMs;
  settledAt: EpochMs;
  isMarker: number;
  now: EpochMs;
}

/** A task completed, as the completion's other writes need it. */
export interface CompletedTask {
  uploadId: string;
  objectKey: string;
  marker: boolean;
}

interface TaskFailure {
  message: string;
  kind: FailureKind;
  retryAt: EpochMs | null;
}

interface TaskPage {
  uploadId: string;
  status?: TaskStatus;
  afterTaskId: number;
  limit: number;
}

export type TaskQueries = ReturnType<typeof taskQueries>;

/** The row holds the released version (IS: NULL, in rows older than inode numbers, equals NULL). */
const SAME_VERSION = 'size = @size AND mtime_ms = @mtimeMs AND ino IS @ino AND ctime_ms IS @ctimeMs';

export function taskQueries(db: Database) {
  const selectUploadStatus = db
    .prepare<[string], string>(`SELECT status FROM uploads WHERE upload_id = ?`)
    .pluck();

  // A new path → a pending task. A known path with another version, observed no earlier than
  // the one it holds → pending again, from scratch, unless a runner holds it (it notices the
  // change itself). What the last completed upload put at the key (etag, sha256, uploaded_size)
  // stays: it is what an append copies from. The same version, or an older observation → no write at all (not even
  // observed_at, so that rescanning an unchanged tree writes nothing), and `changes` counts
  // exactly the tasks created or changed. A NULL ino or ctime_ms (a row written before they were
  // recorded) never differs: recordBatch fills it in with adoptIdentity instead. When only the
  // ctime differs from the last upload (a chmod), hash_first asks the runner to compare contents
  // before sending; it holds as long as later observations differ from that upload in ctime alone.
  // Whether the task is a marker is set once, when it is created.
  const upsertObservedFile = db.prepare<ObservedFileRow>(`
    INSERT INTO file_tasks (upload_id, relative_path, object_key, size, mtime_ms, ino, ctime_ms, status,
                            bytes_uploaded, attempts, ready_at, observed_at, is_marker, created_at, updated_at)
    VALUES (@uploadId, @relativePath, @objectKey, @size, @mtimeMs, @ino, @ctimeMs, 'pending', 0, 0, @readyAt,
            @observedAt, @isMarker, @now, @now)
    ON CONFLICT (upload_id, relative_path) DO UPDATE SET
      hash_first = CASE
        WHEN file_tasks.size = excluded.size AND file_tasks.mtime_ms = excluded.mtime_ms
          AND file_tasks.ino = excluded.ino
          AND (file_tasks.hash_first = 1 OR (file_tasks.status = 'completed'
               AND file_tasks.sha256 IS NOT NULL AND file_tasks.uploaded_size = excluded.size))
        THEN 1 ELSE 0 END,
      size = excluded.size,
      mtime_ms = excluded.mtime_ms,
      ino = excluded.ino,
      ctime_ms = excluded.ctime_ms,
      observed_at = excluded.observed_at,
      status = 'pending',
      bytes_uploaded = 0,
      attempts = 0,
      last_error = NULL,
      ready_at = CASE WHEN file_tasks.stream_refused = 1 THEN @settledAt ELSE excluded.ready_at END,
      completed_at = NULL,
      failed_at = NULL,
      updated_at = excluded.updated_at
    WHERE (file_tasks.size <> excluded.size OR file_tasks.mtime_ms <> excluded.mtime_ms
           OR file_tasks.ino <> excluded.ino OR file_tasks.ctime_ms <> excluded.ctime_ms)
      AND excluded.observed_at >= file_tasks.observed_at
      AND file_tasks.status <> 'in_progress'`);

  // The version a task holds: a rescan of an unchanged tree only reads (an upsert that ends in
  // its WHERE still costs about four times this lookup).
  const selectVersion = db
    .prepare<[string, string], [number, number, number | null, number | null]>(
      `SELECT size, mtime_ms, ino, ctime_ms FROM file_tasks WHERE upload_id = ? AND relative_path = ?`,
    )
    .raw();

  // A row written before inode numbers and ctimes were recorded takes the ones observed, once,
  // without any other change: an upgrade must not upload every file again.
  const adoptIdentity = db.prepare<{ uploadId: string; relativePath: string; ino: number; ctimeMs: number }>(`
    UPDATE file_tasks SET ino = COALESCE(ino, @ino), ctime_ms = COALESCE(ctime_ms, @ctimeMs)
    WHERE upload_id = @uploadId AND relative_path = @relativePath`);

  const selectTask = db.prepare<[number], TaskRow>(`SELECT * FROM file_tasks WHERE task_id = ?`);
  // Read once at start-up: a full scan, which costs less than an index kept on every write.
  const selectLatestObservedAt = db.prepare<[], { latest: number | null }>(
    `SELECT MAX(observed_at) AS latest FROM file_tasks`,
  );

  const selectTaskPage = db.prepare<TaskPage, TaskRow>(`
    SELECT * FROM file_tasks
    WHERE upload_id = @uploadId AND task_id > @afterTaskId
    ORDER BY task_id LIMIT @limit`);

  const selectTaskPageByStatus = db.prepare<Required<TaskPage>, TaskRow>(`
    SELECT * FROM file_tasks
    WHERE upload_id = @uploadId AND status = @status AND task_id > @afterTaskId
    ORDER BY task_id LIMIT @limit`);

  // A file streamed while it grows shows its size so far (size stays when none is given).
  const updateProgress = db.prepare<{
    taskId: number;
    bytesUploaded: number;
    size: number | null;
    now: EpochMs;
  }>(`
    UPDATE file_tasks SET bytes_uploaded = @bytesUploaded, size = COALESCE(@size, size), updated_at = @now
    WHERE task_id = @taskId AND status = 'in_progress'`);

  // A completed task holds the version that was uploaded (a streamed file's settled one), counts
  // its whole size as uploaded, and the errors of earlier attempts are no longer news; its next
  // version may be streamed again.
  const completeRunningTask = db.prepare<
    Omit<CompletedUpload, 'skipped'> & { skipped: string | null; taskId: number; now: EpochMs },
    { upload_id: string; object_key: string; is_marker: number }
  >(`
    UPDATE file_tasks SET status = 'completed', size = @size, mtime_ms = @mtimeMs, ino = @ino,
                          ctime_ms = @ctimeMs, bytes_uploaded = @size,
                          etag = @etag, validation = @validation, sha256 = @sha256, uploaded_size = @size,
                          skipped = @skipped, stream_refused = 0, hash_first = 0, interrupted = 0,
                          last_error = NULL, failed_at = NULL, completed_at = @now, updated_at = @now
    WHERE task_id = @taskId AND status = 'in_progress'
    RETURNING upload_id, object_key, is_marker`);

  // bytes_uploaded is kept: the multipart upload, and so the progress, survives for the next attempt.
  const failRunningTask = db.prepare<TaskFailure & { taskId: number; now: EpochMs }>(`
    UPDATE file_tasks SET status = 'failed', last_error = @message, failure_kind = @kind,
                          ready_at = ${readyAtUnlessCancelled('@retryAt')}, failed_at = @now, updated_at = @now
    WHERE task_id = @taskId AND status = 'in_progress'`);

  // Released with the same version (e.g. at shutdown), the task keeps its progress and attempts;
  // with a new version it starts from scratch, as recordObservedFiles does; hash_first stays while
  // only the ctime moved. Every right-hand side reads the row as it was before this update.
  const releaseRunningTask = db.prepare<
    Omit<TaskRelease, 'refuseStreaming' | 'refundAttempt'> & {
      taskId: number;
      note: string | null;
      refuseStreaming: number;
      refund: number;
      now: EpochMs;
    }
  >(`
    UPDATE file_tasks SET
      status = 'pending',
      attempts = CASE WHEN ${SAME_VERSION} THEN MAX(attempts - @refund, 0) ELSE 0 END,
      bytes_uploaded = CASE WHEN ${SAME_VERSION} THEN bytes_uploaded ELSE 0 END,
      hash_first = CASE WHEN size = @size AND mtime_ms = @mtimeMs AND ino IS @ino THEN hash_first ELSE 0 END,
      size = @size,
      mtime_ms = @mtimeMs,
      ino = @ino,
      ctime_ms = @ctimeMs,
      observed_at = @observedAt,
      ready_at = ${readyAtUnlessCancelled('@readyAt')},
      last_error = @note,
      stream_refused = MAX(stream_refused, @refuseStreaming),
      updated_at = @now
    WHERE task_id = @taskId AND status = 'in_progress'`);

  // Its multipart state goes with it (ON DELETE CASCADE).
  const deleteTask = db.prepare<[number]>(`DELETE FROM file_tasks WHERE task_id = ?`);

  const recordBatch = db.transaction(
    (
      uploadId: string,
      files: readonly ObservedFile[],
      objectKeyFor: (relativePath: string) => string,
      readinessOf: (file: ObservedFile) => FileReadiness,
      now: EpochMs,
      isMarker?: (relativePath: string) => boolean,
    ): number => {
      const uploadStatus = selectUploadStatus.get(uploadId);
      if (uploadStatus === undefined) {
        throw new Error(`recordObservedFiles: there is no upload '${uploadId}'`);
      }
      // A cancelled or completed upload uploads nothing more: what its watcher still reports is not recorded.
      if (uploadStatus === 'cancelled' || uploadStatus === 'completed') return 0;
      let changed = 0;
      for (const file of files) {
        const held = selectVersion.get(uploadId, file.relativePath);
        if (held !== undefined) {
          const [size, mtimeMs, ino, ctimeMs] = held;
          if (sameVersion({ size, mtimeMs, ino, ctimeMs }, file)) {
            if (ino === null || ctimeMs === null) {
              const { relativePath } = file;
              adoptIdentity.run({ uploadId, relativePath, ino: file.ino, ctimeMs: file.ctimeMs });
            }
            continue;
          }
        }
        const { readyAt, settledAt } = readinessOf(file);
        changed += upsertObservedFile.run({
          uploadId,
          relativePath: file.relativePath,
          objectKey: objectKeyFor(file.relativePath),
          size: file.size,
          mtimeMs: file.mtimeMs,
          ino: file.ino,
          ctimeMs: file.ctimeMs,
          observedAt: file.observedAt,
          readyAt,
          settledAt,
          isMarker: isMarker?.(file.relativePath) === true ? 1 : 0,
          now,
        }).changes;
      }
      return changed;
    },
  );

  return {
    recordObservedFiles: recordBatch,

    get(taskId: number): FileTask | undefined {
      const row = selectTask.get(taskId);
      return row && toFileTask(row);
    },

    latestObservedAt(): EpochMs {
      return selectLatestObservedAt.get()?.latest ?? 0;
    },

    list(
      uploadId: string,
      options: { status?: TaskStatus; limit: number; cursor?: string },
    ): { items: FileTask[]; nextCursor: string | null } {
      assertLimit('listTasks', options.limit);
      const afterTaskId = options.cursor === undefined ? 0 : taskIdOfCursor(options.cursor);
      // One row more than asked tells whether another page exists, so the last page says so.
      const page = { uploadId, afterTaskId, limit: options.limit + 1 };
      const rows =
        options.status === undefined
          ? selectTaskPage.all(page)
          : selectTaskPageByStatus.all({ ...page, status: options.status });
      const items = rows.slice(0, options.limit).map(toFileTask);
      const last = items.at(-1);
      const nextCursor = rows.length > options.limit && last ? cursorOfTaskId(last.taskId) : null;
      return { items, nextCursor };
    },

    recordProgress(taskId: number, bytesUploaded: number, now: EpochMs, size?: number): void {
      updateProgress.run({ taskId, bytesUploaded, size: size ?? null, now });
    },

    /** The task completed, or undefined when it was not in progress. In a transaction (see sqlite-store.ts). */
    complete(taskId: number, upload: CompletedUpload, now: EpochMs): CompletedTask | undefined {
      const { etag, validation, sha256, size, mtimeMs, ino, ctimeMs } = upload;
      const skipped = upload.skipped ?? null;
      const values = { taskId, etag, validation, sha256, size, mtimeMs, ino, ctimeMs, skipped, now };
      const row = completeRunningTask.get(values);
      return row && { uploadId: row.upload_id, objectKey: row.object_key, marker: row.is_marker === 1 };
    },

    fail(taskId: number, failure: TaskFailure, now: EpochMs): boolean {
      const { message, kind, retryAt } = failure;
      return failRunningTask.run({ taskId, message, kind, retryAt, now }).changes === 1;
    },

    release(taskId: number, version: TaskRelease, note: string | null, now: EpochMs): boolean {
      const { size, mtimeMs, ino, ctimeMs, observedAt, readyAt } = version;
      const refuseStreaming = version.refuseStreaming === true ? 1 : 0;
      const refund = version.refundAttempt === true ? 1 : 0;
      const values = {
        taskId,
        size,
        mtimeMs,
        ino,
        ctimeMs,
        observedAt,
        readyAt,
        note,
        refuseStreaming,
        refund,
        now,
      };
      return releaseRunningTask.run(values).changes === 1;
    },

    drop(taskId: number): void {
      deleteTask.run(taskId);
    },
  };
}
