// What the checks of S3 against the store need: a task found by its path (the orphan sweep maps
// an object key back to it) and a completed task sent back to the queue when its object, or its
// file, is no longer what was uploaded (verify).
import type { Database } from 'better-sqlite3';
import type { EpochMs, FileTask } from '../../domain/model.js';
import type { CompletedTaskRequeue } from '../store.js';
import { toFileTask } from './rows.js';
import type { TaskRow } from './rows.js';

export type AuditQueries = ReturnType<typeof auditQueries>;

export function auditQueries(db: Database) {
  // The UNIQUE (upload_id, relative_path) index answers this.
  const selectTaskByPath = db.prepare<[string, string], TaskRow>(`
    SELECT * FROM file_tasks WHERE upload_id = ? AND relative_path = ?`);

  // Uploaded again from scratch: the same version, so attempts stay. With forget_upload the last
  // upload is forgotten too, so that no append copies from an object that is not what was sent.
  // `etag IS @checkedEtag` leaves alone a task completed again since it was checked, and a
  // cancelled upload uploads nothing more, so its tasks stay as they are.
  const requeueCompleted = db.prepare<{
    taskId: number;
    checkedEtag: string | null;
    reason: string;
    forgetUpload: number;
    hashFirst: number;
    now: EpochMs;
  }>(`
    UPDATE file_tasks SET
      status = 'pending',
      ready_at = @now,
      bytes_uploaded = 0,
      last_error = @reason,
      completed_at = NULL,
      etag = CASE WHEN @forgetUpload = 1 THEN NULL ELSE etag END,
      validation = CASE WHEN @forgetUpload = 1 THEN NULL ELSE validation END,
      sha256 = CASE WHEN @forgetUpload = 1 THEN NULL ELSE sha256 END,
      uploaded_size = CASE WHEN @forgetUpload = 1 THEN NULL ELSE uploaded_size END,
      hash_first = CASE WHEN @forgetUpload = 1 THEN 0 ELSE @hashFirst END,
      updated_at = @now
    WHERE task_id = @taskId AND status = 'completed' AND etag IS @checkedEtag
      AND upload_id IN (SELECT upload_id FROM uploads WHERE status IN ('pending', 'active'))`);

  return {
    findTaskByPath(uploadId: string, relativePath: string): FileTask | undefined {
      const row = selectTaskByPath.get(uploadId, relativePath);
      return row && toFileTask(row);
    },

    requeueCompleted(taskId: number, requeue: CompletedTaskRequeue, now: EpochMs): boolean {
      const { checkedEtag, reason } = requeue;
      const forgetUpload = requeue.forgetUpload ? 1 : 0;
      const hashFirst = requeue.hashFirst === true ? 1 : 0;
      return (
        requeueCompleted.run({ taskId, checkedEtag, reason, forgetUpload, hashFirst, now }).changes === 1
      );
    },
  };
}
