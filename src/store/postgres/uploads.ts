// Uploads: their statements and the operations built on them. Each statement has a name, so that
// a connection prepares it once and reuses its plan.
import pg from 'pg';
import type { EpochMs, NewUpload, UploadCounts, UploadTotals, Upload } from '../../domain/model.js';
import { NO_OBJECT_PROPERTIES } from '../../domain/object-properties.js';
import type { UploadStatus } from '../../domain/status.js';
import { taskStatus, uploadCountsOf } from '../row-values.js';
import { DuplicateUploadIdError, type QueueCounts } from '../store.js';
import type { Queryable } from './connection.js';
import { lockForStatusChange } from './locks.js';
import { toUpload } from './rows.js';
import { WATCH_LEASE_ENDED } from './watch-leases.js';
import type { TaskCountRow, UploadRow } from './rows.js';

// The upload, its four count rows and its turn, in one statement: counts and turns are only ever
// updated from then on (see migrations.ts).
const INSERT_UPLOAD = `
  WITH created AS (
    INSERT INTO uploads (upload_id, source_folder, destination_bucket, destination_prefix, pattern, status,
                         created_at, updated_at, watch, if_exists, storage_class, sse, sse_kms_key_id,
                         object_metadata, object_tags, complete_markers, manifest_key, notify_url)
    VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6, $7, $8, $9, $10, $11, $12::json, $13::json, $14::text[],
            $15, $16)
    RETURNING *
  ), counts AS (
    INSERT INTO upload_task_counts (upload_id, status, files, bytes_total, bytes_uploaded)
    SELECT created.upload_id, counted.status, 0, 0, 0
    FROM created, unnest(ARRAY['pending', 'in_progress', 'completed', 'failed']) AS counted (status)
  ), turns AS (
    INSERT INTO upload_turns (upload_id) SELECT upload_id FROM created
  )
  SELECT * FROM created`;

// A one-shot upload whose files are all completed: none pending, in progress or failed, by the
// kept counts, checked in the same statement that moves it.
const COMPLETE_ONE_SHOT = `
  UPDATE uploads SET status = 'completed', completed_at = $2, updated_at = $2, ${WATCH_LEASE_ENDED}
  WHERE upload_id = $1 AND status = 'active' AND NOT watch
    AND NOT EXISTS (SELECT 1 FROM upload_task_counts c
                    WHERE c.upload_id = $1 AND c.status <> 'completed' AND c.files > 0)`;

// The tasks of a cancelled upload leave the queue (ready_at NULL). in_progress tasks keep theirs
// until their runner stops (see readyAtUnlessCancelled in queue.ts).
const DEQUEUE_TASKS_OF_UPLOAD = `
  UPDATE file_tasks SET ready_at = NULL, updated_at = $2
  WHERE upload_id = $1 AND status IN ('pending', 'failed') AND ready_at IS NOT NULL`;

// The upload's last error becomes the failure of this task (its path and message).
const TAKE_ERROR_OF_TASK = `
  UPDATE uploads SET
    (last_error, last_error_task_id) =
      (SELECT t.relative_path || ': ' || t.last_error, t.task_id FROM file_tasks t WHERE t.task_id = $1),
    updated_at = $2
  WHERE upload_id = (SELECT upload_id FROM file_tasks WHERE task_id = $1)`;

// An upload whose last error is about one of these tasks, now completed, shows the newest failure
// of its other files instead, or none, with the time of that completion. The tasks arrive as
// arrays: a whole group commit's in one statement.
const FORGET_ERRORS_OF_TASKS = `
  UPDATE uploads u SET
    (last_error, last_error_task_id) =
      (SELECT t.relative_path || ': ' || t.last_error, t.task_id FROM file_tasks t
       WHERE t.upload_id = u.upload_id AND t.status = 'failed'
       ORDER BY t.failed_at DESC, t.task_id DESC LIMIT 1),
    updated_at = completed.now
  FROM unnest($1::bigint[], $2::bigint[]) AS completed (task_id, now)
  JOIN file_tasks done ON done.task_id = completed.task_id
  WHERE u.upload_id = done.upload_id AND u.last_error_task_id = completed.task_id`;

// The queue: one pass over the kept counts (a few rows per upload), never over file_tasks.
const QUEUE_COUNTS = `
  SELECT c.status, SUM(c.files)::bigint AS files, SUM(c.bytes_total)::bigint AS bytes
  FROM upload_task_counts c JOIN uploads u ON u.upload_id = c.upload_id
  WHERE u.status IN ('pending', 'active')
  GROUP BY c.status`;

const TASK_COUNTS_OF = `
  SELECT upload_id, status, files, bytes_total, bytes_uploaded FROM upload_task_counts
  WHERE upload_id = ANY($1::text[])`;

export async function create(db: Queryable, upload: NewUpload, now: EpochMs): Promise<Upload> {
  const properties = upload.objectProperties ?? NO_OBJECT_PROPERTIES;
  try {
    const { rows } = await db.query<UploadRow>({
      name: 'uploads-insert',
      text: INSERT_UPLOAD,
      values: [
        upload.uploadId,
        upload.sourceFolder,
        upload.destinationBucket,
        upload.destinationPrefix,
        upload.pattern,
        now,
        upload.watch !== false,
        upload.ifExists ?? 'overwrite',
        properties.storageClass,
        properties.sse,
        properties.sseKmsKeyId,
        JSON.stringify(properties.metadata),
        JSON.stringify(properties.tags),
        upload.completeMarkers ?? [],
        upload.manifestKey ?? null,
        upload.notifyUrl ?? null,
      ],
    });
    const [row] = rows;
    if (row === undefined) throw new Error(`inserting upload '${upload.uploadId}' returned no row`);
    return toUpload(row);
  } catch (error) {
    if (error instanceof pg.DatabaseError && error.code === '23505' && error.constraint === 'uploads_pkey') {
      throw new DuplicateUploadIdError(upload.uploadId);
    }
    throw error;
  }
}

export async function get(db: Queryable, uploadId: string): Promise<Upload | undefined> {
  const { rows } = await db.query<UploadRow>({
    name: 'uploads-select',
    text: 'SELECT * FROM uploads WHERE upload_id = $1',
    values: [uploadId],
  });
  return rows[0] && toUpload(rows[0]);
}

export async function list(db: Queryable, statuses: readonly UploadStatus[]): Promise<Upload[]> {
  const { rows } = await db.query<UploadRow>({
    name: 'uploads-select-by-status',
    text: 'SELECT * FROM uploads WHERE status = ANY($1::text[]) ORDER BY created_at, upload_id',
    values: [statuses],
  });
  return rows.map(toUpload);
}

export async function activate(db: Queryable, uploadId: string, now: EpochMs): Promise<boolean> {
  const { rowCount } = await db.query({
    name: 'uploads-activate',
    text: `UPDATE uploads SET status = 'active', updated_at = $2 WHERE upload_id = $1 AND status = 'pending'`,
    values: [uploadId, now],
  });
  return rowCount === 1;
}

/** In the transaction `tx`, which holds the upload's row until it ends (see locks.ts). */
export async function complete(tx: Queryable, uploadId: string, now: EpochMs): Promise<boolean> {
  await lockForStatusChange(tx, uploadId);
  const { rowCount } = await tx.query({
    name: 'uploads-complete-one-shot',
    text: COMPLETE_ONE_SHOT,
    values: [uploadId, now],
  });
  return rowCount === 1;
}

/** In the transaction `tx`, which holds the upload's row until it ends (see locks.ts). */
export async function cancel(tx: Queryable, uploadId: string, now: EpochMs): Promise<boolean> {
  await lockForStatusChange(tx, uploadId);
  const { rowCount } = await tx.query({
    name: 'uploads-cancel',
    text: `UPDATE uploads SET status = 'cancelled', updated_at = $2, ${WATCH_LEASE_ENDED}
           WHERE upload_id = $1 AND status IN ('pending', 'active')`,
    values: [uploadId, now],
  });
  if (rowCount !== 1) return false;
  await tx.query({ name: 'uploads-dequeue-tasks', text: DEQUEUE_TASKS_OF_UPLOAD, values: [uploadId, now] });
  return true;
}

export async function setError(
  db: Queryable,
  uploadId: string,
  message: string | null,
  now: EpochMs,
): Promise<void> {
  await db.query({
    name: 'uploads-set-error',
    text: `UPDATE uploads SET last_error = $2, last_error_task_id = NULL, updated_at = $3 WHERE upload_id = $1`,
    values: [uploadId, message, now],
  });
}

export async function takeErrorOfTask(db: Queryable, taskId: number, now: EpochMs): Promise<void> {
  await db.query({ name: 'uploads-take-error-of-task', text: TAKE_ERROR_OF_TASK, values: [taskId, now] });
}

/** Each task completed at its `now`. */
export async function forgetErrorsOfTasks(
  db: Queryable,
  completed: readonly { taskId: number; now: EpochMs }[],
): Promise<void> {
  await db.query({
    name: 'uploads-forget-errors-of-tasks',
    text: FORGET_ERRORS_OF_TASKS,
    values: [completed.map((task) => task.taskId), completed.map((task) => task.now)],
  });
}

/** The last file of each upload named completed at its `now`. */
export async function markCompletions(
  db: Queryable,
  lastCompletions: ReadonlyMap<string, EpochMs>,
): Promise<void> {
  await db.query({
    name: 'uploads-mark-completions',
    text: `UPDATE uploads u SET last_completed_at = m.now
           FROM unnest($1::text[], $2::bigint[]) AS m (upload_id, now) WHERE u.upload_id = m.upload_id`,
    values: [[...lastCompletions.keys()], [...lastCompletions.values()]],
  });
}

export async function totals(db: Queryable, uploadId: string): Promise<UploadTotals> {
  const { files, bytes } = (await countsOf(db, [uploadId])).get(uploadId) ?? uploadCountsOf([]);
  return { files, bytes };
}

export async function countsOf(
  db: Queryable,
  uploadIds: readonly string[],
): Promise<Map<string, UploadCounts>> {
  const rowsOf = new Map<string, TaskCountRow[]>(uploadIds.map((uploadId) => [uploadId, []]));
  if (uploadIds.length > 0) {
    const { rows } = await db.query<TaskCountRow>({
      name: 'uploads-task-counts-of',
      text: TASK_COUNTS_OF,
      values: [uploadIds],
    });
    for (const row of rows) rowsOf.get(row.upload_id)?.push(row);
  }
  return new Map([...rowsOf].map(([uploadId, rows]) => [uploadId, uploadCountsOf(rows)]));
}

export async function queueCounts(db: Queryable): Promise<QueueCounts> {
  const counts: QueueCounts = {
    pending: { files: 0, bytes: 0 },
    in_progress: { files: 0, bytes: 0 },
    completed: { files: 0, bytes: 0 },
    failed: { files: 0, bytes: 0 },
  };
  const { rows } = await db.query<{ status: string; files: number; bytes: number }>({
    name: 'uploads-queue-counts',
    text: QUEUE_COUNTS,
  });
  for (const row of rows) counts[taskStatus(row.status)] = { files: row.files, bytes: row.bytes };
  return counts;
}
