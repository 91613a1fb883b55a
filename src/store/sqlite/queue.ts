// The dispatcher's queue: claiming ready tasks, and every way a task returns to 'pending'.
// Only tasks of active requests are ever claimed or requeued: a pending request has not started
// and a cancelled one must not upload anything more. The tasks of a cancelled request are out of
// the queue altogether (ready_at NULL), and every range scan of file_tasks_queue below starts
// after the NULLs, so however many there are they cost nothing.
import type { Database } from 'better-sqlite3';
import type { EpochMs, FileTask } from '../../domain/model.js';
import type { FailureKind } from '../../domain/status.js';
import { assertLimit } from './errors.js';
import { toFileTask } from './rows.js';
import type { TaskRow } from './rows.js';

/**
 * The SQL for a ready_at to set on a file_tasks row: `value`, or NULL when the task's request is
 * cancelled. cancelRequest takes the request's pending and failed tasks out of the queue, but a
 * runner may still fail or release its task afterwards, and crash recovery may find it
 * in_progress: this keeps them out too.
 */
export function readyAtUnlessCancelled(value: string): string {
  return `CASE WHEN EXISTS (SELECT 1 FROM upload_requests r
                            WHERE r.upload_id = file_tasks.upload_id AND r.status = 'cancelled')
          THEN NULL ELSE ${value} END`;
}

/** The statements that walk file_tasks_queue, exported so that a test can check their plans. */
export const QUEUE_SCANS = {
  // The tasks to claim, in queue order. The ORDER BY is exactly the order of the file_tasks_queue
  // index, which it walks from the first non-NULL ready_at and leaves at the limit.
  claimReady: `
    SELECT task_id FROM file_tasks
    WHERE status = 'pending' AND ready_at <= @now
      AND upload_id IN (SELECT upload_id FROM upload_requests WHERE status = 'active')
    ORDER BY ready_at, upload_id, task_id
    LIMIT @limit`,

  // IS NOT NULL makes this a range scan that starts after the NULLs, rather than a walk through them.
  nextReadyAt: `
    SELECT ready_at FROM file_tasks
    WHERE status = 'pending' AND ready_at IS NOT NULL
      AND upload_id IN (SELECT upload_id FROM upload_requests WHERE status = 'active')
    ORDER BY ready_at LIMIT 1`,

  // last_error and failed_at stay, so that users still see why the task failed before.
  requeueDueFailed: `
    UPDATE file_tasks SET status = 'pending', ready_at = @now, updated_at = @now
    WHERE status = 'failed' AND ready_at <= @now
      AND upload_id IN (SELECT upload_id FROM upload_requests WHERE status = 'active')`,
} as const;

export type QueueQueries = ReturnType<typeof queueQueries>;

export function queueQueries(db: Database) {
  const selectClaimable = db.prepare<{ now: EpochMs; limit: number }, number>(QUEUE_SCANS.claimReady).pluck();
  const markClaimed = db.prepare<{ taskId: number; now: EpochMs }, TaskRow>(`
    UPDATE file_tasks SET status = 'in_progress', attempts = attempts + 1, updated_at = @now
    WHERE task_id = @taskId RETURNING *`);
  // Picked and marked in one transaction, so two claimers can never take the same task. Two
  // statements cost about a third of one UPDATE ... WHERE task_id IN (SELECT ... LIMIT).
  const claimInOrder = db.transaction((now: EpochMs, limit: number): TaskRow[] =>
    selectClaimable.all({ now, limit }).map((taskId) => markClaimed.get({ taskId, now })!),
  );
  const selectNextReadyAt = db.prepare<[], { ready_at: number }>(QUEUE_SCANS.nextReadyAt);
  const requeueDueFailed = db.prepare<{ now: EpochMs }>(QUEUE_SCANS.requeueDueFailed);

  const requeueFailedOfRequest = db.prepare<{ uploadId: string; now: EpochMs }>(`
    UPDATE file_tasks SET status = 'pending', ready_at = @now, updated_at = @now
    WHERE upload_id = @uploadId AND status = 'failed'
      AND EXISTS (SELECT 1 FROM upload_requests WHERE upload_id = @uploadId AND status != 'cancelled')`);

  // Failures of these kinds (a JSON array), whatever their requeue time; failed-for-good tasks
  // (ready_at NULL) stay out.
  const requeueFailedOfKinds = db.prepare<{ kinds: string; now: EpochMs }>(`
    UPDATE file_tasks SET status = 'pending', ready_at = @now, updated_at = @now
    WHERE status = 'failed' AND ready_at IS NOT NULL
      AND failure_kind IN (SELECT value FROM json_each(@kinds))
      AND upload_id IN (SELECT upload_id FROM upload_requests WHERE status = 'active')`);

  // ready_at is kept: it is already past, and the task keeps its place in the queue. Its
  // multipart state is kept too, for the next attempt to resume from.
  const requeueInterrupted = db.prepare<{ now: EpochMs }>(`
    UPDATE file_tasks SET status = 'pending', ready_at = ${readyAtUnlessCancelled('ready_at')}, updated_at = @now
    WHERE status = 'in_progress'`);

  return {
    claimReady(now: EpochMs, limit: number): FileTask[] {
      assertLimit('claimReadyTasks', limit);
      return claimInOrder(now, limit).map(toFileTask);
    },

    nextReadyAt(): EpochMs | null {
      return selectNextReadyAt.get()?.ready_at ?? null;
    },

    requeueDueFailed(now: EpochMs): number {
      return requeueDueFailed.run({ now }).changes;
    },

    retryFailed(uploadId: string, now: EpochMs): number {
      return requeueFailedOfRequest.run({ uploadId, now }).changes;
    },

    retryFailedOfKinds(kinds: readonly FailureKind[], now: EpochMs): number {
      return requeueFailedOfKinds.run({ kinds: JSON.stringify(kinds), now }).changes;
    },

    recoverInterrupted(now: EpochMs): number {
      return requeueInterrupted.run({ now }).changes;
    },
  };
}
