// How statements that run at once, on several connections of this process or of other
// instances, keep an upload's status and its tasks in step, as SQLite's one writer at a time did.
//
// An upload's status goes to cancelled or completed only under `SELECT ... FOR UPDATE` on its row
// (lockForStatusChange). Every statement that records tasks for an upload, claims them, or puts
// them back in the queue reads the upload's status through FOR KEY SHARE on its row (the
// fragments below). KEY SHARE conflicts with FOR UPDATE alone: such a statement waits for a
// cancel in flight and then reads 'cancelled', or the cancel waits for it and then takes out of
// the queue what it wrote. Updates of an upload's other columns (its last error, its last
// completion) take neither, and wait on none of them.
//
// Locks are taken in one order: the upload's row (as above), task rows, upload_turns,
// upload_task_counts (once per statement, in key order: see migrations.ts), then the upload's row
// for an update of another column. Claims skip the task rows others hold (SKIP LOCKED). What
// that order cannot settle (two statements that change many tasks meeting them in different
// orders) is a deadlock, which PostgreSQL breaks by failing one transaction, and connection.ts
// runs that one again.
import type { Queryable } from './connection.js';

/** The status of the upload whose id is the SQL `uploadId`, read under FOR KEY SHARE. */
export function heldUploadStatus(uploadId: string): string {
  return `(SELECT status FROM uploads WHERE upload_id = ${uploadId} FOR KEY SHARE)`;
}

/** The ids of the active uploads, each read under FOR KEY SHARE. */
export const HELD_ACTIVE_UPLOADS = `(SELECT upload_id FROM uploads WHERE status = 'active' FOR KEY SHARE)`;

/**
 * Holds the upload's row until the transaction `tx` ends, before its status changes: every
 * statement reading its status under FOR KEY SHARE has ended, and none starts until then.
 */
export async function lockForStatusChange(tx: Queryable, uploadId: string): Promise<void> {
  await tx.query({
    name: 'lock-upload-for-status-change',
    text: 'SELECT 1 FROM uploads WHERE upload_id = $1 FOR UPDATE',
    values: [uploadId],
  });
}
