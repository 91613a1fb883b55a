// The dispatcher's queue: claiming ready tasks, and every way a task returns to 'pending'.
// Only tasks of active requests are ever claimed or requeued: a pending request has not started
// and a cancelled one must not upload anything more.
import type { Database } from 'better-sqlite3';
import type { EpochMs, FileTask } from '../../domain/model.js';
import { assertLimit } from './errors.js';
import { toFileTask } from './rows.js';
import type { TaskRow } from './rows.js';

export type QueueQueries = ReturnType<typeof queueQueries>;

export function queueQueries(db: Database) {
  // One statement picks and marks the tasks, so two claimers can never take the same task. The
  // ORDER BY is exactly the order of the file_tasks_queue index, which it walks and leaves at
  // the limit.
  const claimReady = db.prepare<{ now: EpochMs; limit: number }, TaskRow>(`
    UPDATE file_tasks SET status = 'in_progress', attempts = attempts + 1, updated_at = @now
    WHERE task_id IN (
      SELECT task_id FROM file_tasks
      WHERE status = 'pending' AND ready_at <= @now
        AND upload_id IN (SELECT upload_id FROM upload_requests WHERE status = 'active')
      ORDER BY ready_at, upload_id, task_id
      LIMIT @limit)
    RETURNING *`);

  const selectNextReadyAt = db.prepare<[], { ready_at: number }>(`
    SELECT ready_at FROM file_tasks
    WHERE status = 'pending'
      AND upload_id IN (SELECT upload_id FROM upload_requests WHERE status = 'active')
    ORDER BY ready_at LIMIT 1`);

  // last_error and failed_at stay, so that users still see why the task failed before.
  const requeueDueFailed = db.prepare<{ now: EpochMs }>(`
    UPDATE file_tasks SET status = 'pending', ready_at = @now, updated_at = @now
    WHERE status = 'failed' AND ready_at <= @now
      AND upload_id IN (SELECT upload_id FROM upload_requests WHERE status = 'active')`);

  const requeueFailedOfRequest = db.prepare<{ uploadId: string; now: EpochMs }>(`
    UPDATE file_tasks SET status = 'pending', ready_at = @now, updated_at = @now
    WHERE upload_id = @uploadId AND status = 'failed'`);

  // ready_at is kept: it is already past, and the task keeps its place in the queue. Its
  // multipart state is kept too, for the next attempt to resume from.
  const requeueInterrupted = db.prepare<{ now: EpochMs }>(`
    UPDATE file_tasks SET status = 'pending', updated_at = @now WHERE status = 'in_progress'`);

  return {
    claimReady(now: EpochMs, limit: number): FileTask[] {
      assertLimit('claimReadyTasks', limit);
      // RETURNING gives rows in no promised order: restore the queue's.
      return claimReady
        .all({ now, limit })
        .map(toFileTask)
        .sort((a, b) => a.readyAt - b.readyAt || a.taskId - b.taskId);
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

    recoverInterrupted(now: EpochMs): number {
      return requeueInterrupted.run({ now }).changes;
    },
  };
}
