// The dispatcher's queue: claiming ready tasks, and every way a task returns to 'pending'.
// Only tasks of active uploads are ever claimed or requeued: a pending upload has not started
// and a cancelled one must not upload anything more. The tasks of a cancelled upload are out of
// the queue altogether (ready_at NULL), and every range scan below starts after the NULLs, so
// however many there are they cost nothing.
//
// The queue is shared among uploads: each claim goes to the active upload with the fewest tasks
// in progress, and among those to the one served longest ago, so that a new upload's first file
// does not wait behind another's backlog. Each upload's tasks go in their own readyAt order.
//
// A marker waits (see notWaitingMarker): it is passed over as if not yet ready, by the claims and
// by nextReadyAt, until its upload was scanned whole and its other files are done.
import type { Database } from 'better-sqlite3';
import type { EpochMs, FileTask } from '../../domain/model.js';
import type { FailureKind } from '../../domain/status.js';
import { isUnderRoots } from '../../domain/instance.js';
import type { ClaimOptions } from '../store.js';
import { assertLimit } from '../errors.js';
import { toFileTask } from './rows.js';
import type { TaskRow } from './rows.js';

/**
 * The SQL for a ready_at to set on a file_tasks row: `value`, or NULL when the task's upload is
 * cancelled. cancelUpload takes the upload's pending and failed tasks out of the queue, but a
 * runner may still fail or release its task afterwards, and crash recovery may find it
 * in_progress: this keeps them out too.
 */
export function readyAtUnlessCancelled(value: string): string {
  return `CASE WHEN EXISTS (SELECT 1 FROM uploads r
                            WHERE r.upload_id = file_tasks.upload_id AND r.status = 'cancelled')
          THEN NULL ELSE ${value} END`;
}

/**
 * The SQL condition that the pending task `task` (an alias of file_tasks) is not a marker that
 * waits: a marker is claimed only once its upload was scanned whole (scanned_at) and no task of
 * the upload that is not a marker is pending, in progress or failed. Markers do not wait for each
 * other. The subqueries run for markers alone, which are few: a seek in the uploads' primary key,
 * and one per status in file_tasks_by_upload_status, which stops at the first task that is not a
 * marker.
 */
export function notWaitingMarker(task: string): string {
  return `(${task}.is_marker = 0 OR (
            (SELECT w.scanned_at FROM uploads w WHERE w.upload_id = ${task}.upload_id) IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM file_tasks o
                            WHERE o.upload_id = ${task}.upload_id AND o.status IN ('pending', 'in_progress', 'failed')
                              AND o.is_marker = 0)))`;
}

/** The statements that walk the queue's indexes, exported so that a test can check their plans. */
export const QUEUE_SCANS = {
  // The active uploads that have a ready task, with what a claim chooses by: that task (one seek
  // in file_tasks_by_upload_queue) and the upload's tasks in progress (one read of the kept
  // counts). A few reads per active upload, whatever the number of tasks; none per cancelled one.
  claimContenders: `
    SELECT r.upload_id, r.served_turn, head.task_id AS head_task_id, head.ready_at AS head_ready_at,
           COALESCE((SELECT c.files FROM upload_task_counts c
                     WHERE c.upload_id = r.upload_id AND c.status = 'in_progress'), 0) AS running
    FROM uploads r
    JOIN file_tasks head ON head.task_id = (
      SELECT t.task_id FROM file_tasks t
      WHERE t.upload_id = r.upload_id AND t.status = 'pending' AND t.ready_at <= @now
        AND ${notWaitingMarker('t')}
      ORDER BY t.ready_at, t.task_id LIMIT 1)
    WHERE r.status = 'active'`,

  // The turn of the last claim, as the active uploads remember it.
  latestTurn: `SELECT MAX(served_turn) FROM uploads WHERE status = 'active'`,

  // One upload's next ready task, in its own queue order: the order of file_tasks_by_upload_queue.
  claimHead: `
    SELECT t.task_id, t.ready_at FROM file_tasks t
    WHERE t.upload_id = @uploadId AND t.status = 'pending' AND t.ready_at <= @now AND ${notWaitingMarker('t')}
    ORDER BY t.ready_at, t.task_id LIMIT 1`,

  // IS NOT NULL makes this a range scan that starts after the NULLs, rather than a walk through them.
  nextReadyAt: `
    SELECT t.ready_at FROM file_tasks t
    WHERE t.status = 'pending' AND t.ready_at IS NOT NULL
      AND t.upload_id IN (SELECT upload_id FROM uploads WHERE status = 'active') AND ${notWaitingMarker('t')}
    ORDER BY t.ready_at LIMIT 1`,

  // last_error and failed_at stay, so that users still see why the task failed before. One range
  // of file_tasks_queue, usually empty, rather than one seek per active upload in
  // file_tasks_by_upload_queue, which the planner would otherwise take.
  requeueDueFailed: `
    UPDATE file_tasks INDEXED BY file_tasks_queue SET status = 'pending', ready_at = @now, updated_at = @now
    WHERE status = 'failed' AND ready_at <= @now
      AND upload_id IN (SELECT upload_id FROM uploads WHERE status = 'active')`,
} as const;

export type QueueQueries = ReturnType<typeof queueQueries>;

interface ContenderRow {
  upload_id: string;
  served_turn: number;
  running: number;
  head_task_id: number;
  head_ready_at: number;
}

interface HeadRow {
  task_id: number;
  ready_at: number;
}

interface ReadyTask {
  taskId: number;
  readyAt: EpochMs;
}

/** An active upload with a ready task, as a claim sees it. */
interface Contender {
  uploadId: string;
  /** The turn of its last claim (0: never claimed from). */
  servedTurn: number;
  running: number;
  /** Its next ready task. */
  head: ReadyTask;
}

/**
 * Whether `a` is served before `b`: fewer tasks in progress, then served longer ago, then the
 * older ready task, then the upload id, so that the order is total.
 */
function servedBefore(a: Contender, b: Contender): boolean {
  if (a.running !== b.running) return a.running < b.running;
  if (a.servedTurn !== b.servedTurn) return a.servedTurn < b.servedTurn;
  if (a.head.readyAt !== b.head.readyAt) return a.head.readyAt < b.head.readyAt;
  return a.uploadId < b.uploadId;
}

function nextToServe(contenders: readonly Contender[]): Contender | undefined {
  let next: Contender | undefined;
  for (const contender of contenders)
    if (next === undefined || servedBefore(contender, next)) next = contender;
  return next;
}

export function queueQueries(db: Database) {
  const selectContenders = db.prepare<{ now: EpochMs }, ContenderRow>(QUEUE_SCANS.claimContenders);
  const selectLatestTurn = db.prepare<[], number | null>(QUEUE_SCANS.latestTurn).pluck();
  const selectHead = db.prepare<{ uploadId: string; now: EpochMs }, HeadRow>(QUEUE_SCANS.claimHead);
  const markClaimed = db.prepare<{ taskId: number; now: EpochMs }, TaskRow>(`
    UPDATE file_tasks SET status = 'in_progress', attempts = attempts + 1, updated_at = @now
    WHERE task_id = @taskId RETURNING *`);
  const markServed = db.prepare<{ uploadId: string; turn: number }>(`
    UPDATE uploads SET served_turn = @turn WHERE upload_id = @uploadId`);
  // Picked and marked in one transaction, so two claimers can never take the same task. The
  // choice among the uploads is made here rather than in SQL: each pick changes what the next
  // one compares, and an upload's following task is then one seek.
  const claimFairly = db.transaction((now: EpochMs, limit: number, options: ClaimOptions): TaskRow[] => {
    const served = servedUploads(options.sourceRoots);
    const { budget } = options;
    const contenders: Contender[] = selectContenders
      .all({ now })
      .filter((row) => served === undefined || served.has(row.upload_id))
      .map((row) => ({
        uploadId: row.upload_id,
        servedTurn: row.served_turn,
        running: row.running,
        head: { taskId: row.head_task_id, readyAt: row.head_ready_at },
      }));
    if (contenders.length === 0) return [];
    // Turns compare active uploads only: the latest of theirs is the clock, including the turns
    // of uploads with nothing ready now, so that these come back behind the ones served since.
    let turn = selectLatestTurn.get() ?? 0;
    const claimed: TaskRow[] = [];
    let bytes = 0;
    while (claimed.length < limit) {
      const next = nextToServe(contenders);
      if (next === undefined) break;
      const row = markClaimed.get({ taskId: next.head.taskId, now })!;
      claimed.push(row);
      turn += 1;
      markServed.run({ uploadId: next.uploadId, turn });
      next.servedTurn = turn;
      next.running += 1;
      if (claimed.length === limit) break; // its following task is not needed
      // The size is known once the task is taken (the queue's index holds none): the task that
      // reaches the budget is the last.
      if (budget && (bytes += budget.bytesOf(row.size)) >= budget.bytes) break;
      const head = selectHead.get({ uploadId: next.uploadId, now });
      if (head === undefined) contenders.splice(contenders.indexOf(next), 1);
      else next.head = { taskId: head.task_id, readyAt: head.ready_at };
    }
    return claimed;
  });
  const selectNextReadyAt = db.prepare<[], { ready_at: number }>(QUEUE_SCANS.nextReadyAt);
  // The same range of file_tasks_queue as nextReadyAt, for the uploads named (a JSON array).
  const selectNextReadyAtOf = db.prepare<{ uploadIds: string }, { ready_at: number }>(`
    SELECT t.ready_at FROM file_tasks t
    WHERE t.status = 'pending' AND t.ready_at IS NOT NULL
      AND t.upload_id IN (SELECT value FROM json_each(@uploadIds)) AND ${notWaitingMarker('t')}
    ORDER BY t.ready_at LIMIT 1`);
  const selectActiveFolders = db.prepare<[], { upload_id: string; source_folder: string }>(
    `SELECT upload_id, source_folder FROM uploads WHERE status = 'active'`,
  );
  /**
   * The active uploads under `roots` (see isUnderRoots), or undefined for any upload: read apart
   * from the queue's scans, so that those keep their plans, and only when roots are given.
   */
  function servedUploads(roots: readonly string[] | null | undefined): Set<string> | undefined {
    if (roots === undefined || roots === null) return undefined;
    const active = selectActiveFolders.all();
    return new Set(
      active.filter((row) => isUnderRoots(row.source_folder, roots)).map((row) => row.upload_id),
    );
  }
  const requeueDueFailed = db.prepare<{ now: EpochMs }>(QUEUE_SCANS.requeueDueFailed);

  const requeueFailedOfUpload = db.prepare<{ uploadId: string; now: EpochMs }>(`
    UPDATE file_tasks SET status = 'pending', ready_at = @now, updated_at = @now
    WHERE upload_id = @uploadId AND status = 'failed'
      AND EXISTS (SELECT 1 FROM uploads WHERE upload_id = @uploadId AND status != 'cancelled')`);

  // Failures of these kinds (a JSON array), whatever their requeue time; failed-for-good tasks
  // (ready_at NULL) stay out.
  const requeueFailedOfKinds = db.prepare<{ kinds: string; now: EpochMs }>(`
    UPDATE file_tasks SET status = 'pending', ready_at = @now, updated_at = @now
    WHERE status = 'failed' AND ready_at IS NOT NULL
      AND failure_kind IN (SELECT value FROM json_each(@kinds))
      AND upload_id IN (SELECT upload_id FROM uploads WHERE status = 'active')`);

  // ready_at is kept: it is already past, and the task keeps its place in the queue. Its
  // multipart state is kept too, for the next attempt to resume from.
  const requeueInterrupted = db.prepare<{ now: EpochMs }>(`
    UPDATE file_tasks SET status = 'pending', ready_at = ${readyAtUnlessCancelled('ready_at')}, interrupted = 1,
                          updated_at = @now
    WHERE status = 'in_progress'`);

  return {
    claimReady(now: EpochMs, limit: number, options: ClaimOptions = {}): FileTask[] {
      assertLimit('claimReadyTasks', limit);
      return claimFairly(now, limit, options).map(toFileTask);
    },

    nextReadyAt(sourceRoots?: readonly string[] | null): EpochMs | null {
      const served = servedUploads(sourceRoots);
      if (served === undefined) return selectNextReadyAt.get()?.ready_at ?? null;
      return selectNextReadyAtOf.get({ uploadIds: JSON.stringify([...served]) })?.ready_at ?? null;
    },

    requeueDueFailed(now: EpochMs): number {
      return requeueDueFailed.run({ now }).changes;
    },

    retryFailed(uploadId: string, now: EpochMs): number {
      return requeueFailedOfUpload.run({ uploadId, now }).changes;
    },

    retryFailedOfKinds(kinds: readonly FailureKind[], now: EpochMs): number {
      return requeueFailedOfKinds.run({ kinds: JSON.stringify(kinds), now }).changes;
    },

    recoverInterrupted(now: EpochMs): number {
      return requeueInterrupted.run({ now }).changes;
    },
  };
}
