// What the checks of S3 against the store need: a task found by its path (the orphan sweep maps
// an object key back to it) and a completed task sent back to the queue when its object, or its
// file, is no longer what was uploaded (verify).
import type { EpochMs, FileTask } from '../../domain/model.js';
import type { CompletedTaskRequeue } from '../store.js';
import type { Queryable } from './connection.js';
import { heldUploadStatus } from './locks.js';
import { notifyingUpdate, type Notifier } from './notify.js';
import { changedBy, toldBy } from './queue.js';
import { toFileTask } from './rows.js';
import type { TaskRow } from './rows.js';

// Uploaded again from scratch: the same version, so attempts stay. With forgetUpload ($4) the last
// upload is forgotten too, so that no append copies from an object that is not what was sent.
// The etag check leaves alone a task completed again since it was checked, and an upload no
// longer live uploads nothing more, so its tasks stay as they are (its status read under the lock
// locks.ts describes).
const REQUEUE_COMPLETED = notifyingUpdate(
  `UPDATE file_tasks SET
    status = 'pending',
    ready_at = $6,
    bytes_uploaded = 0,
    last_error = $3,
    completed_at = NULL,
    etag = CASE WHEN $4 THEN NULL ELSE etag END,
    validation = CASE WHEN $4 THEN NULL ELSE validation END,
    sha256 = CASE WHEN $4 THEN NULL ELSE sha256 END,
    uploaded_size = CASE WHEN $4 THEN NULL ELSE uploaded_size END,
    hash_first = CASE WHEN $4 THEN false ELSE $5 END,
    updated_at = $6
  WHERE task_id = $1 AND status = 'completed' AND etag IS NOT DISTINCT FROM $2::text
    AND ${heldUploadStatus('file_tasks.upload_id')} IN ('pending', 'active')`,
  '$7',
  '$8',
);

export async function findTaskByPath(
  db: Queryable,
  uploadId: string,
  relativePath: string,
): Promise<FileTask | undefined> {
  // The UNIQUE (upload_id, relative_path) index answers this.
  const { rows } = await db.query<TaskRow>({
    name: 'audit-task-by-path',
    text: 'SELECT * FROM file_tasks WHERE upload_id = $1 AND relative_path = $2',
    values: [uploadId, relativePath],
  });
  return rows[0] && toFileTask(rows[0]);
}

export async function requeueCompleted(
  db: Queryable,
  taskId: number,
  requeue: CompletedTaskRequeue,
  now: EpochMs,
  notifier: Notifier,
): Promise<boolean> {
  const { checkedEtag, reason, forgetUpload } = requeue;
  const hashFirst = requeue.hashFirst === true;
  const values = [taskId, checkedEtag, reason, forgetUpload, hashFirst, now, ...toldBy(notifier)];
  return (await changedBy(db, 'audit-requeue-completed', REQUEUE_COMPLETED, values)) === 1;
}
