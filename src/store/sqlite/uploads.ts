// Uploads: their statements, prepared once, and the operations built on them.
import Sqlite from 'better-sqlite3';
import type { Database } from 'better-sqlite3';
import type { EpochMs, IfExists, NewUpload, UploadCounts, UploadTotals, Upload } from '../../domain/model.js';
import { NO_OBJECT_PROPERTIES, type ObjectProperties } from '../../domain/object-properties.js';
import type { UploadStatus } from '../../domain/status.js';
import { DuplicateUploadIdError, type QueueCounts } from '../store.js';
import { taskStatus, uploadCountsOf } from '../row-values.js';
import { toUpload } from './rows.js';
import type { UploadRow, TaskCountRow } from './rows.js';

interface UploadChange {
  uploadId: string;
  now: EpochMs;
}

export type UploadQueries = ReturnType<typeof uploadQueries>;

export function uploadQueries(db: Database) {
  const insertUpload = db.prepare<
    Pick<NewUpload, 'uploadId' | 'sourceFolder' | 'destinationBucket' | 'destinationPrefix' | 'pattern'> & {
      watch: number;
      ifExists: IfExists;
      /** A JSON array. */
      completeMarkers: string;
      manifestKey: string | null;
      notifyUrl: string | null;
      now: EpochMs;
    } & ObjectPropertyColumns,
    UploadRow
  >(`
    INSERT INTO uploads (upload_id, source_folder, destination_bucket, destination_prefix, pattern,
                         status, created_at, updated_at, last_error, watch, if_exists,
                         storage_class, sse, sse_kms_key_id, object_metadata, object_tags,
                         complete_markers, manifest_key, notify_url)
    VALUES (@uploadId, @sourceFolder, @destinationBucket, @destinationPrefix, @pattern, 'pending', @now, @now, NULL,
            @watch, @ifExists, @storageClass, @sse, @sseKmsKeyId, @objectMetadata, @objectTags,
            @completeMarkers, @manifestKey, @notifyUrl)
    RETURNING *`);

  const selectUpload = db.prepare<[string], UploadRow>(`SELECT * FROM uploads WHERE upload_id = ?`);

  // The statuses arrive as one JSON array, so one prepared statement serves any set of them.
  const selectUploadsByStatus = db.prepare<[string], UploadRow>(`
    SELECT * FROM uploads
    WHERE status IN (SELECT value FROM json_each(?))
    ORDER BY created_at, upload_id`);

  const activatePendingRequest = db.prepare<UploadChange>(`
    UPDATE uploads SET status = 'active', updated_at = @now
    WHERE upload_id = @uploadId AND status = 'pending'`);

  const cancelOpenRequest = db.prepare<UploadChange>(`
    UPDATE uploads SET status = 'cancelled', updated_at = @now, watched_by = NULL
    WHERE upload_id = @uploadId AND status IN ('pending', 'active')`);

  // The tasks of a cancelled upload leave the queue: ready_at NULL sorts before every range the
  // queue's statements scan, so a cancelled backlog costs them nothing. in_progress tasks keep
  // theirs until their runner stops (see readyAtUnlessCancelled in queue.ts).
  const dequeueTasksOfRequest = db.prepare<UploadChange>(`
    UPDATE file_tasks SET ready_at = NULL, updated_at = @now
    WHERE upload_id = @uploadId AND status IN ('pending', 'failed') AND ready_at IS NOT NULL`);

  // A one-shot upload whose files are all completed: none pending, in progress or failed, by the
  // kept counts, checked in the same statement that moves it.
  const completeOneShot = db.prepare<UploadChange>(`
    UPDATE uploads SET status = 'completed', completed_at = @now, updated_at = @now, watched_by = NULL
    WHERE upload_id = @uploadId AND status = 'active' AND watch = 0
      AND NOT EXISTS (SELECT 1 FROM upload_task_counts c
                      WHERE c.upload_id = @uploadId AND c.status != 'completed' AND c.files > 0)`);

  const cancel = db.transaction((uploadId: string, now: EpochMs): boolean => {
    if (cancelOpenRequest.run({ uploadId, now }).changes !== 1) return false;
    dequeueTasksOfRequest.run({ uploadId, now });
    return true;
  });

  const updateUploadError = db.prepare<UploadChange & { message: string | null }>(`
    UPDATE uploads SET last_error = @message, last_error_task_id = NULL, updated_at = @now
    WHERE upload_id = @uploadId`);

  // The upload's last error becomes the failure of this task (its path and message).
  const takeErrorOfTask = db.prepare<{ taskId: number; now: EpochMs }>(`
    UPDATE uploads SET
      (last_error, last_error_task_id) =
        (SELECT t.relative_path || ': ' || t.last_error, t.task_id FROM file_tasks t WHERE t.task_id = @taskId),
      updated_at = @now
    WHERE upload_id = (SELECT upload_id FROM file_tasks WHERE task_id = @taskId)`);

  // An upload whose last error is about this task, now completed, shows the newest failure of its
  // other files instead, or none. A primary-key lookup that changes nothing in the common case.
  const forgetErrorOfTask = db.prepare<{ taskId: number; now: EpochMs }>(`
    UPDATE uploads SET
      (last_error, last_error_task_id) =
        (SELECT t.relative_path || ': ' || t.last_error, t.task_id FROM file_tasks t
         WHERE t.upload_id = uploads.upload_id AND t.status = 'failed'
         ORDER BY t.failed_at DESC, t.task_id DESC LIMIT 1),
      updated_at = @now
    WHERE upload_id = (SELECT upload_id FROM file_tasks WHERE task_id = @taskId)
      AND last_error_task_id = @taskId`);

  const selectTaskCounts = db.prepare<[string], TaskCountRow>(`
    SELECT upload_id, status, files, bytes_total, bytes_uploaded FROM upload_task_counts WHERE upload_id = ?`);

  // The ids arrive as one JSON array: one statement, one primary-key range per upload.
  const selectTaskCountsOf = db.prepare<[string], TaskCountRow>(`
    SELECT upload_id, status, files, bytes_total, bytes_uploaded FROM upload_task_counts
    WHERE upload_id IN (SELECT value FROM json_each(?))`);

  // The queue: one pass over the kept counts (a few rows per upload), never over file_tasks.
  const selectQueueCounts = db.prepare<[], { status: string; files: number; bytes: number }>(`
    SELECT c.status, SUM(c.files) AS files, SUM(c.bytes_total) AS bytes
    FROM upload_task_counts c JOIN uploads u ON u.upload_id = c.upload_id
    WHERE u.status IN ('pending', 'active')
    GROUP BY c.status`);

  const markCompletion = db.prepare<{ taskId: number; now: EpochMs }>(`
    UPDATE uploads SET last_completed_at = @now
    WHERE upload_id = (SELECT upload_id FROM file_tasks WHERE task_id = @taskId)`);

  return {
    create(upload: NewUpload, now: EpochMs): Upload {
      try {
        // all(), not get(): get() stops at the first row and drops what the end of the statement
        // reports, and in autocommit that is the commit: a full disk would go unnoticed.
        const [row] = insertUpload.all({
          uploadId: upload.uploadId,
          sourceFolder: upload.sourceFolder,
          destinationBucket: upload.destinationBucket,
          destinationPrefix: upload.destinationPrefix,
          pattern: upload.pattern,
          watch: upload.watch === false ? 0 : 1,
          ifExists: upload.ifExists ?? 'overwrite',
          completeMarkers: JSON.stringify(upload.completeMarkers ?? []),
          manifestKey: upload.manifestKey ?? null,
          notifyUrl: upload.notifyUrl ?? null,
          ...objectPropertyColumns(upload.objectProperties ?? NO_OBJECT_PROPERTIES),
          now,
        });
        if (row === undefined) throw new Error(`inserting upload '${upload.uploadId}' returned no row`);
        return toUpload(row);
      } catch (error) {
        if (error instanceof Sqlite.SqliteError && error.code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
          throw new DuplicateUploadIdError(upload.uploadId);
        }
        throw error;
      }
    },

    get(uploadId: string): Upload | undefined {
      const row = selectUpload.get(uploadId);
      return row && toUpload(row);
    },

    list(statuses: readonly UploadStatus[]): Upload[] {
      return selectUploadsByStatus.all(JSON.stringify(statuses)).map(toUpload);
    },

    activate(uploadId: string, now: EpochMs): boolean {
      return activatePendingRequest.run({ uploadId, now }).changes === 1;
    },

    complete(uploadId: string, now: EpochMs): boolean {
      return completeOneShot.run({ uploadId, now }).changes === 1;
    },

    cancel(uploadId: string, now: EpochMs): boolean {
      return cancel(uploadId, now);
    },

    setError(uploadId: string, message: string | null, now: EpochMs): void {
      updateUploadError.run({ uploadId, message, now });
    },

    takeErrorOfTask(taskId: number, now: EpochMs): void {
      takeErrorOfTask.run({ taskId, now });
    },

    forgetErrorOfTask(taskId: number, now: EpochMs): void {
      forgetErrorOfTask.run({ taskId, now });
    },

    totals(uploadId: string): UploadTotals {
      const { files, bytes } = uploadCountsOf(selectTaskCounts.all(uploadId));
      return { files, bytes };
    },

    countsOf(uploadIds: readonly string[]): Map<string, UploadCounts> {
      const rowsOf = new Map<string, TaskCountRow[]>(uploadIds.map((uploadId) => [uploadId, []]));
      for (const row of selectTaskCountsOf.all(JSON.stringify(uploadIds)))
        rowsOf.get(row.upload_id)?.push(row);
      return new Map([...rowsOf].map(([uploadId, rows]) => [uploadId, uploadCountsOf(rows)]));
    },

    queueCounts(): QueueCounts {
      const counts: QueueCounts = {
        pending: { files: 0, bytes: 0 },
        in_progress: { files: 0, bytes: 0 },
        completed: { files: 0, bytes: 0 },
        failed: { files: 0, bytes: 0 },
      };
      for (const row of selectQueueCounts.all())
        counts[taskStatus(row.status)] = { files: row.files, bytes: row.bytes };
      return counts;
    },

    /** The task completed now: so did the last file of its upload. */
    markCompletion(taskId: number, now: EpochMs): void {
      markCompletion.run({ taskId, now });
    },
  };
}

interface ObjectPropertyColumns {
  storageClass: string | null;
  sse: string | null;
  sseKmsKeyId: string | null;
  objectMetadata: string;
  objectTags: string;
}

function objectPropertyColumns(properties: ObjectProperties): ObjectPropertyColumns {
  return {
    storageClass: properties.storageClass,
    sse: properties.sse,
    sseKmsKeyId: properties.sseKmsKeyId,
    objectMetadata: JSON.stringify(properties.metadata),
    objectTags: JSON.stringify(properties.tags),
  };
}
