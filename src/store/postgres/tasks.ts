// File tasks: what the API pages through, and the transitions of one task's run (what the monitor
// records is observed-files.ts). Every transition of a run is guarded by status = 'in_progress'
// and claimed_by = the instance making it, whose runner holds the task: a task taken back from it
// (its lease expired, see leases.ts) is left to whoever holds it now, and the transition says false.
// Each clears claimed_by and the lease: no instance holds the task any more.
import type { CompletedUpload, EpochMs, FileTask } from '../../domain/model.js';
import type { TaskStatus } from '../../domain/status.js';
import { cursorOfTaskId, taskIdOfCursor } from '../cursors.js';
import { assertLimit } from '../errors.js';
import type { TaskFailure, TaskRelease } from '../store.js';
import type { Queryable } from './connection.js';
import { notifyingUpdate, type Notifier } from './notify.js';
import { changedBy, readyAtUnlessCancelled, toldBy } from './queue.js';
import { toFileTask } from './rows.js';
import type { TaskRow } from './rows.js';

/** The row holds the released version ($2 to $5); IS NOT DISTINCT FROM: a NULL, in rows older than inode numbers, equals NULL. */
const SAME_VERSION =
  'size = $2 AND mtime_ms = $3 AND ino IS NOT DISTINCT FROM $4 AND ctime_ms IS NOT DISTINCT FROM $5';

// A completed task holds the version that was uploaded (a streamed file's settled one), counts its
// whole size as uploaded, and the errors of earlier attempts are no longer news; its next version
// may be streamed again. The completions arrive as arrays: a whole group commit in one statement.
const COMPLETE_RUNNING_TASKS = `
  UPDATE file_tasks t SET status = 'completed', size = c.size, mtime_ms = c.mtime_ms, ino = c.ino,
                          ctime_ms = c.ctime_ms, bytes_uploaded = c.size,
                          etag = c.etag, validation = c.validation, sha256 = c.sha256, uploaded_size = c.size,
                          skipped = c.skipped, stream_refused = false, hash_first = false, interrupted = false,
                          last_error = NULL, failed_at = NULL, claimed_by = NULL, lease_expires_at = NULL,
                          completed_at = c.now, updated_at = c.now
  FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::float8[], $7::float8[],
              $8::float8[], $9::text[], $10::bigint[])
    AS c (task_id, etag, validation, sha256, size, mtime_ms, ino, ctime_ms, skipped, now)
  WHERE t.task_id = c.task_id AND t.status = 'in_progress' AND t.claimed_by = $11
  RETURNING t.task_id, t.upload_id, t.object_key, t.is_marker`;

// bytes_uploaded is kept: the multipart upload, and so the progress, survives for the next attempt.
const FAIL_RUNNING_TASK = `
  UPDATE file_tasks SET status = 'failed', last_error = $2, failure_kind = $3,
                        ready_at = ${readyAtUnlessCancelled('$4::bigint')}, failed_at = $5, claimed_by = NULL,
                        lease_expires_at = NULL, updated_at = $5
  WHERE task_id = $1 AND status = 'in_progress' AND claimed_by = $6`;

// Released with the same version (e.g. at shutdown), the task keeps its progress and attempts;
// with a new version it starts from scratch, as recordObservedFiles does; hash_first stays while
// only the ctime moved. Every right-hand side reads the row as it was before this update.
const RELEASE_RUNNING_TASK = notifyingUpdate(
  `UPDATE file_tasks SET
    status = 'pending',
    attempts = CASE WHEN ${SAME_VERSION} THEN GREATEST(attempts - $10::integer, 0) ELSE 0 END,
    bytes_uploaded = CASE WHEN ${SAME_VERSION} THEN bytes_uploaded ELSE 0 END,
    hash_first = CASE WHEN size = $2 AND mtime_ms = $3 AND ino IS NOT DISTINCT FROM $4 THEN hash_first ELSE false END,
    size = $2::bigint,
    mtime_ms = $3::float8,
    ino = $4::float8,
    ctime_ms = $5::float8,
    observed_at = $6,
    ready_at = ${readyAtUnlessCancelled('$7::bigint')},
    last_error = $8,
    stream_refused = stream_refused OR $9::boolean,
    claimed_by = NULL,
    lease_expires_at = NULL,
    updated_at = $11
  WHERE task_id = $1 AND status = 'in_progress' AND claimed_by = $12`,
  '$13',
  '$14',
);

/** A completed task, as the group commit of completions needs it. */
export interface CompletedTask {
  taskId: number;
  uploadId: string;
  objectKey: string;
  marker: boolean;
}

export async function get(db: Queryable, taskId: number): Promise<FileTask | undefined> {
  const { rows } = await db.query<TaskRow>({
    name: 'tasks-select',
    text: 'SELECT * FROM file_tasks WHERE task_id = $1',
    values: [taskId],
  });
  return rows[0] && toFileTask(rows[0]);
}

/** Read once at start-up: a full scan, which costs less than an index kept on every write. */
export async function latestObservedAt(db: Queryable): Promise<EpochMs> {
  const { rows } = await db.query<{ latest: number | null }>({
    name: 'tasks-latest-observed-at',
    text: 'SELECT MAX(observed_at) AS latest FROM file_tasks',
  });
  return rows[0]?.latest ?? 0;
}

export async function list(
  db: Queryable,
  uploadId: string,
  options: { status?: TaskStatus; limit: number; cursor?: string },
): Promise<{ items: FileTask[]; nextCursor: string | null }> {
  assertLimit('listTasks', options.limit);
  const afterTaskId = options.cursor === undefined ? 0 : taskIdOfCursor(options.cursor);
  // One row more than asked tells whether another page exists, so the last page says so.
  const { rows } =
    options.status === undefined
      ? await db.query<TaskRow>({
          name: 'tasks-page',
          text: `SELECT * FROM file_tasks WHERE upload_id = $1 AND task_id > $2 ORDER BY task_id LIMIT $3`,
          values: [uploadId, afterTaskId, options.limit + 1],
        })
      : await db.query<TaskRow>({
          name: 'tasks-page-by-status',
          text: `SELECT * FROM file_tasks WHERE upload_id = $1 AND status = $4 AND task_id > $2
                 ORDER BY task_id LIMIT $3`,
          values: [uploadId, afterTaskId, options.limit + 1, options.status],
        });
  const items = rows.slice(0, options.limit).map(toFileTask);
  const last = items.at(-1);
  const nextCursor = rows.length > options.limit && last ? cursorOfTaskId(last.taskId) : null;
  return { items, nextCursor };
}

/** A file streamed while it grows shows its size so far (size stays when none is given). */
export async function recordProgress(
  db: Queryable,
  instanceId: string,
  taskId: number,
  bytesUploaded: number,
  now: EpochMs,
  size?: number,
): Promise<void> {
  await db.query({
    name: 'tasks-record-progress',
    text: `UPDATE file_tasks SET bytes_uploaded = $2, size = COALESCE($3::bigint, size), updated_at = $4
           WHERE task_id = $1 AND status = 'in_progress' AND claimed_by = $5`,
    values: [taskId, bytesUploaded, size ?? null, now, instanceId],
  });
}

/**
 * Completes the tasks among these that `instanceId` holds (each task id at most once); returns the
 * ones completed.
 */
export async function completeRunning(
  db: Queryable,
  instanceId: string,
  completions: readonly { taskId: number; upload: CompletedUpload; now: EpochMs }[],
): Promise<CompletedTask[]> {
  const column = <T>(value: (completion: (typeof completions)[number]) => T): T[] => completions.map(value);
  const { rows } = await db.query<{
    task_id: number;
    upload_id: string;
    object_key: string;
    is_marker: boolean;
  }>({
    name: 'tasks-complete-running',
    text: COMPLETE_RUNNING_TASKS,
    values: [
      column((c) => c.taskId),
      column((c) => c.upload.etag),
      column((c) => c.upload.validation),
      column((c) => c.upload.sha256),
      column((c) => c.upload.size),
      column((c) => c.upload.mtimeMs),
      column((c) => c.upload.ino),
      column((c) => c.upload.ctimeMs),
      column((c) => c.upload.skipped ?? null),
      column((c) => c.now),
      instanceId,
    ],
  });
  return rows.map((row) => ({
    taskId: row.task_id,
    uploadId: row.upload_id,
    objectKey: row.object_key,
    marker: row.is_marker,
  }));
}

export async function fail(
  db: Queryable,
  instanceId: string,
  taskId: number,
  failure: TaskFailure,
  now: EpochMs,
): Promise<boolean> {
  const { rowCount } = await db.query({
    name: 'tasks-fail-running',
    text: FAIL_RUNNING_TASK,
    values: [taskId, failure.message, failure.kind, failure.retryAt, now, instanceId],
  });
  return rowCount === 1;
}

export async function release(
  db: Queryable,
  instanceId: string,
  taskId: number,
  version: TaskRelease,
  note: string | null,
  now: EpochMs,
  notifier: Notifier,
): Promise<boolean> {
  const { size, mtimeMs, ino, ctimeMs, observedAt, readyAt } = version;
  const refuseStreaming = version.refuseStreaming === true;
  const refund = version.refundAttempt === true ? 1 : 0;
  const changed = await changedBy(db, 'tasks-release-running', RELEASE_RUNNING_TASK, [
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
    instanceId,
    ...toldBy(notifier),
  ]);
  return changed === 1;
}

/** Its multipart state goes with it (ON DELETE CASCADE). Not a task another instance holds. */
export async function drop(db: Queryable, instanceId: string, taskId: number): Promise<void> {
  await db.query({
    name: 'tasks-delete',
    text: `DELETE FROM file_tasks WHERE task_id = $1 AND NOT (status = 'in_progress' AND claimed_by IS DISTINCT FROM $2)`,
    values: [taskId, instanceId],
  });
}
