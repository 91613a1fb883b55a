// The dispatcher's queue, but for the claim itself (claim.ts): when the next task is ready, and
// the ways a failed task returns to 'pending' (an in-progress one returns by leases.ts). Only tasks of active uploads are ever claimed or
// requeued: a pending upload has not started and a cancelled one must not upload anything more.
// Each statement reads the upload's status under the lock locks.ts describes, so that a cancel
// in flight is never missed.
import type { EpochMs } from '../../domain/model.js';
import type { FailureKind } from '../../domain/status.js';
import type { Queryable } from './connection.js';
import { HELD_ACTIVE_UPLOADS, heldUploadStatus } from './locks.js';
import { notifyingUpdate, payloadOf, type Notifier } from './notify.js';

/**
 * The SQL for a ready_at to set on a file_tasks row: `value`, or NULL when the task's upload is
 * cancelled. cancelUpload takes the upload's pending and failed tasks out of the queue, but a
 * runner may still fail or release its task afterwards, and crash recovery may find it
 * in_progress: this keeps them out too.
 */
export function readyAtUnlessCancelled(value: string): string {
  return `CASE WHEN ${heldUploadStatus('file_tasks.upload_id')} = 'cancelled' THEN NULL ELSE ${value} END`;
}

/**
 * The SQL condition that the folder `folder` (a column) is one of the folders of `roots` (a text[]
 * parameter, NULL for any folder) or below one: the rule of isUnderRoots, on real paths, which have
 * no trailing slash ('/' itself aside).
 */
export function underSourceRoots(folder: string, roots: string): string {
  return `(${roots}::text[] IS NULL OR EXISTS (
            SELECT 1 FROM unnest(${roots}::text[]) AS root (folder)
            WHERE ${folder} = root.folder OR starts_with(${folder}, rtrim(root.folder, '/') || '/')))`;
}

/**
 * The SQL condition that the pending task `task` (an alias of file_tasks) is not a marker that
 * waits: a marker is claimed only once its upload was scanned whole (`scannedAt`, the SQL of its
 * upload's scanned_at) and no task of the upload that is not a marker is pending, in progress or
 * failed. Markers do not wait for each other. It runs for markers alone, which are few, and
 * compares two counts of the same snapshot: the upload's kept counts of those statuses, and its
 * markers in them (file_tasks_markers). A search for one such task instead (EXISTS, LIMIT 1) is
 * planned as a scan of file_tasks expected to stop at once, which for an upload that has none, or
 * few among others' millions, reads them all.
 */
export function notWaitingMarker(task: string, scannedAt: string): string {
  return `(NOT ${task}.is_marker OR (
            ${scannedAt} IS NOT NULL
            AND (SELECT sum(c.files) FROM upload_task_counts c
                 WHERE c.upload_id = ${task}.upload_id AND c.status IN ('pending', 'in_progress', 'failed'))
              = (SELECT count(*) FROM file_tasks m
                 WHERE m.upload_id = ${task}.upload_id AND m.status IN ('pending', 'in_progress', 'failed')
                   AND m.is_marker)))`;
}

// IS NOT NULL makes this a range of file_tasks_queue that starts after the NULLs of cancelled
// uploads. $1: the source roots of the instance asking (NULL: any). A marker that waits is passed
// over, or the dispatcher would wake at its readyAt for nothing, again and again.
export const NEXT_READY_AT = `
  SELECT t.ready_at FROM file_tasks t
  WHERE t.status = 'pending' AND t.ready_at IS NOT NULL
    AND t.upload_id IN (SELECT upload_id FROM uploads
                        WHERE status = 'active' AND ${underSourceRoots('source_folder', '$1')})
    AND ${notWaitingMarker('t', '(SELECT w.scanned_at FROM uploads w WHERE w.upload_id = t.upload_id)')}
  ORDER BY t.ready_at LIMIT 1`;

// last_error and failed_at stay, so that users still see why the task failed before.
const REQUEUE_DUE_FAILED = notifyingUpdate(
  `UPDATE file_tasks SET status = 'pending', ready_at = $1, updated_at = $1
  WHERE status = 'failed' AND ready_at <= $1 AND upload_id IN ${HELD_ACTIVE_UPLOADS}`,
  '$2',
  '$3',
);

const REQUEUE_FAILED_OF_UPLOAD = notifyingUpdate(
  `UPDATE file_tasks SET status = 'pending', ready_at = $2, updated_at = $2
  WHERE upload_id = $1 AND status = 'failed' AND ${heldUploadStatus('$1')} <> 'cancelled'`,
  '$3',
  '$4',
);

// Failed-for-good tasks (ready_at NULL) stay out.
const REQUEUE_FAILED_OF_KINDS = notifyingUpdate(
  `UPDATE file_tasks SET status = 'pending', ready_at = $2, updated_at = $2
  WHERE status = 'failed' AND ready_at IS NOT NULL AND failure_kind = ANY($1::text[])
    AND upload_id IN ${HELD_ACTIVE_UPLOADS}`,
  '$3',
  '$4',
);

export async function nextReadyAt(
  db: Queryable,
  sourceRoots: readonly string[] | null,
): Promise<EpochMs | null> {
  const { rows } = await db.query<{ ready_at: number }>({
    name: 'queue-next-ready-at',
    text: NEXT_READY_AT,
    values: [sourceRoots],
  });
  return rows[0]?.ready_at ?? null;
}

/** The requeues tell the other instances that tasks are ready (see notify.ts). */
export async function requeueDueFailed(db: Queryable, now: EpochMs, notifier: Notifier): Promise<number> {
  return changedBy(db, 'queue-requeue-due-failed', REQUEUE_DUE_FAILED, [now, ...toldBy(notifier)]);
}

export async function retryFailed(
  db: Queryable,
  uploadId: string,
  now: EpochMs,
  notifier: Notifier,
): Promise<number> {
  const values = [uploadId, now, ...toldBy(notifier)];
  return changedBy(db, 'queue-requeue-failed-of-upload', REQUEUE_FAILED_OF_UPLOAD, values);
}

export async function retryFailedOfKinds(
  db: Queryable,
  kinds: readonly FailureKind[],
  now: EpochMs,
  notifier: Notifier,
): Promise<number> {
  const values = [kinds, now, ...toldBy(notifier)];
  return changedBy(db, 'queue-requeue-failed-of-kinds', REQUEUE_FAILED_OF_KINDS, values);
}

/** The channel and payload parameters of a statement that tells of tasks made ready. */
export function toldBy(notifier: Notifier): [string, string] {
  return [notifier.channel, payloadOf({ kind: 'tasks_ready' }, notifier.instanceId)];
}

/** Runs a statement made by notifyingUpdate, and returns how many rows it changed. */
export async function changedBy(
  db: Queryable,
  name: string,
  text: string,
  values: unknown[],
): Promise<number> {
  const { rows } = await db.query<{ changed: number }>({ name, text, values });
  return rows[0]?.changed ?? 0;
}
