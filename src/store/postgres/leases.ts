// Leases: a task in progress is held by the instance whose claim took it (claimed_by) until
// lease_expires_at, which the claim sets and each heartbeat of that instance renews (instances.ts).
// Every lease is judged by the database's clock, never an instance's own: instances whose clocks
// disagree still agree on which leases expired. A task whose lease expired is returned to the
// queue by the reaper, exactly as crash recovery returns the tasks of a killed process: pending,
// at its place in the queue, marked interrupted (its object may be in S3 unrecorded; its next run
// asks S3 first and resumes its multipart upload from S3's list of parts).
//
// A task returned to the queue may still have a runner on the instance that lost it (its process
// was paused, or cut off from the database, for longer than its lease): every transition of a run
// is guarded by claimed_by = that instance (tasks.ts), and the writes of its multipart progress
// refuse a task another instance holds (multipart.ts), so that the late runner changes nothing.
import type { EpochMs } from '../../domain/model.js';
import type { ReapedTask } from '../../domain/instance.js';
import type { Queryable } from './connection.js';
import type { Notifier } from './notify.js';
import { notifyingUpdate } from './notify.js';
import { changedBy, readyAtUnlessCancelled, toldBy } from './queue.js';

/** The database's clock, in epoch milliseconds: the time the statement began. */
export const DATABASE_NOW = `(extract(epoch FROM statement_timestamp()) * 1000)::bigint`;

/** The SQL of a lease that ends `leaseMs` (an SQL parameter) from the database's now. */
export function leaseFromNow(leaseMs: string): string {
  return `${DATABASE_NOW} + ${leaseMs}::bigint`;
}

/**
 * The SQL condition that the task `taskId` is not held by an instance other than `instanceId`
 * (both SQL parameters): no such task, or not in progress, or in progress for `instanceId`.
 */
export function notHeldByAnother(taskId: string, instanceId: string): string {
  return `NOT EXISTS (SELECT 1 FROM file_tasks held WHERE held.task_id = ${taskId}
                      AND held.status = 'in_progress' AND held.claimed_by IS DISTINCT FROM ${instanceId})`;
}

/** A lease that a claim made before leases existed never set is as good as expired. */
const LEASE_EXPIRED = `(lease_expires_at IS NULL OR lease_expires_at < ${DATABASE_NOW})`;

// ready_at is kept: it is already past, and the task keeps its place in the queue; a task of a
// cancelled upload leaves the queue. Its multipart state is kept too, for the next attempt.
const TAKE_BACK = `
  status = 'pending', ready_at = ${readyAtUnlessCancelled('ready_at')}, interrupted = true,
  claimed_by = NULL, lease_expires_at = NULL, updated_at = $1`;

// The tasks a heartbeat renews at this moment are passed over (SKIP LOCKED): that instance is alive.
// Tasks taken back tell the other instances, once, in the same statement ($2, $3: see notify.ts).
const REAP_EXPIRED = `
  WITH expired AS (
    SELECT task_id, claimed_by FROM file_tasks
    WHERE status = 'in_progress' AND ${LEASE_EXPIRED}
    FOR UPDATE SKIP LOCKED
  ),
  taken AS (
    UPDATE file_tasks SET ${TAKE_BACK}
    FROM expired WHERE file_tasks.task_id = expired.task_id
    RETURNING file_tasks.task_id, file_tasks.upload_id, expired.claimed_by
  ),
  told AS (SELECT pg_notify($2, $3) FROM (SELECT 1) AS one WHERE EXISTS (SELECT 1 FROM taken))
  SELECT taken.* FROM taken CROSS JOIN (SELECT count(*) FROM told) AS sent`;

// At start-up, besides the expired leases: the tasks of an instance that has no row any more
// (stopped, or removed by a reaper), and any in progress without an owner.
const RECOVER_UNHELD = notifyingUpdate(
  `UPDATE file_tasks SET ${TAKE_BACK}
  WHERE status = 'in_progress'
    AND (${LEASE_EXPIRED} OR claimed_by IS NULL
         OR NOT EXISTS (SELECT 1 FROM instances i WHERE i.instance_id = file_tasks.claimed_by))`,
  '$2',
  '$3',
);

/** The reaper's pass over the tasks: those whose lease expired go back to the queue. */
export async function reapExpired(db: Queryable, now: EpochMs, notifier: Notifier): Promise<ReapedTask[]> {
  const { rows } = await db.query<{ task_id: number; upload_id: string; claimed_by: string | null }>({
    name: 'leases-reap-expired',
    text: REAP_EXPIRED,
    values: [now, ...toldBy(notifier)],
  });
  return rows.map((row) => ({ taskId: row.task_id, uploadId: row.upload_id, claimedBy: row.claimed_by }));
}

/** Crash recovery (see Store.recoverInterruptedTasks): never a live instance's tasks. */
export async function recoverUnheld(db: Queryable, now: EpochMs, notifier: Notifier): Promise<number> {
  return changedBy(db, 'leases-recover-unheld', RECOVER_UNHELD, [now, ...toldBy(notifier)]);
}
