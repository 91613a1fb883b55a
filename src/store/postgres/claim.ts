// Claiming ready tasks, fairly among uploads, so that several claims at once (of this process or
// of other instances) never take the same task: each task is locked with FOR NO KEY UPDATE SKIP
// LOCKED as it is picked, so a concurrent claim passes over it to the next one, and it is marked
// in_progress before the lock is let go.
//
// The order is SQLite's (see ../sqlite/queue.ts), computed in one query rather than one pick at a
// time. There, each pick goes to the upload with the fewest tasks in progress, then the one
// served longest ago (its served turn), then the older ready task, then the upload id; the upload
// picked gets one more task in progress and the newest turn. So the j-th task (from 0) that a
// claim takes from an upload with r tasks in progress is taken at level r + j; at one level, an
// upload that reaches it with its first task (largest r) comes before one that reached it by
// earlier picks of this claim (their turns are newer than any before the claim), and those keep
// the order of their picks at the level below. Sorting every (upload, j) by
// (r + j, j, served turn, head readyAt, upload id) gives the same sequence as picking one at a time.
import type { EpochMs, FileTask } from '../../domain/model.js';
import { assertLimit } from '../errors.js';
import type { ClaimBudget, ClaimOptions } from '../store.js';
import type { Queryable, Sessions } from './connection.js';
import { leaseFromNow } from './leases.js';
import { notWaitingMarker, underSourceRoots } from './queue.js';
import { toFileTask } from './rows.js';
import type { TaskRow } from './rows.js';

/** The fair order of (upload, place) pairs, as the comment above derives it. */
const FAIR_ORDER = `running + place, place, served_turn, head_ready_at, upload_id COLLATE "C"`;

/** Each upload's ready tasks in `candidates`, in its own queue order, with the columns FAIR_ORDER needs. */
function inQueueOrder(candidates: string): string {
  return `
    row_number() OVER (PARTITION BY ${candidates}.upload_id ORDER BY task.ready_at, task.task_id) - 1 AS place,
    min(task.ready_at) OVER (PARTITION BY ${candidates}.upload_id) AS head_ready_at`;
}

// $1: now, $2: the limit, `roots`: the parameter of the instance's source roots (NULL: any
// folder), whose uploads alone are claimed from. Its cost grows with the number of active uploads, not of tasks: a few
// reads of file_tasks_by_upload_queue each. In two passes, so that a claim locks only the tasks it
// takes: first the fair order over each active upload's first $2 ready tasks, read without a lock,
// says how many tasks each upload gets (its share); then each upload's share is locked, FOR NO KEY
// UPDATE SKIP LOCKED, so that the tasks another claim holds are passed over for the next ones.
// With no other claim, the same tasks; with one, as many others. The active uploads' status is
// read under FOR KEY SHARE (see locks.ts). A marker that waits is passed over in both passes, as
// if not ready (see notWaitingMarker).
const pickReady = (roots: string): string => `
  contenders AS MATERIALIZED (
    SELECT u.upload_id, u.scanned_at, turn.served_turn, counts.files AS running
    FROM uploads u
    JOIN upload_turns turn ON turn.upload_id = u.upload_id
    JOIN upload_task_counts counts ON counts.upload_id = u.upload_id AND counts.status = 'in_progress'
    WHERE u.status = 'active' AND ${underSourceRoots('u.source_folder', roots)}
    FOR KEY SHARE OF u
  ),
  seen AS (
    SELECT c.upload_id, c.served_turn, c.running, ${inQueueOrder('c')}
    FROM contenders c
    CROSS JOIN LATERAL (
      SELECT t.task_id, t.ready_at FROM file_tasks t
      WHERE t.upload_id = c.upload_id AND t.status = 'pending' AND t.ready_at <= $1
        AND ${notWaitingMarker('t', 'c.scanned_at')}
      ORDER BY t.ready_at, t.task_id
      LIMIT $2
    ) task
  ),
  shares AS (
    SELECT upload_id, count(*) AS share
    FROM (SELECT upload_id, row_number() OVER (ORDER BY ${FAIR_ORDER}) AS pick FROM seen) AS ranked
    WHERE pick <= $2
    GROUP BY upload_id
  ),
  ready AS (
    SELECT c.upload_id, c.served_turn, c.running, task.task_id, task.size, ${inQueueOrder('c')}
    FROM shares s
    JOIN contenders c ON c.upload_id = s.upload_id
    CROSS JOIN LATERAL (
      SELECT t.task_id, t.size, t.ready_at FROM file_tasks t
      WHERE t.upload_id = s.upload_id AND t.status = 'pending' AND t.ready_at <= $1
        AND ${notWaitingMarker('t', 'c.scanned_at')}
      ORDER BY t.ready_at, t.task_id
      LIMIT s.share
      FOR NO KEY UPDATE SKIP LOCKED
    ) task
  ),
  picked AS (
    SELECT task_id, size, row_number() OVER (ORDER BY ${FAIR_ORDER}) AS pick FROM ready
  )`;

// $1: now, $3: the instance claiming, $4: its lease in milliseconds; `picked`: (task_id, pick), rows
// this transaction has locked. The tasks are held from now on by the instance, until the lease
// ends by the database's clock (see leases.ts). Each upload claimed from takes the turn of its last pick, counted on from the newest turn of
// the active uploads. The turns are written by an upsert whose rows all exist (they are made with
// the upload), for its order: it writes them in upload_id order, where an UPDATE ... FROM takes
// them in whatever order its join gives, and two claims that met the same uploads in opposite
// orders would wait on each other.
const MARK_PICKED = `
  claimed AS (
    UPDATE file_tasks t SET status = 'in_progress', attempts = t.attempts + 1, claimed_by = $3,
                            lease_expires_at = ${leaseFromNow('$4')}, updated_at = $1
    FROM picked p
    WHERE t.task_id = p.task_id AND t.status = 'pending'
    RETURNING t.*, p.pick
  ),
  served AS (
    INSERT INTO upload_turns AS turn (upload_id, served_turn)
    SELECT last.upload_id, latest.turn + last.pick
    FROM (SELECT upload_id, MAX(pick) AS pick FROM claimed GROUP BY upload_id) AS last,
         (SELECT COALESCE(MAX(t.served_turn), 0) AS turn
          FROM upload_turns t JOIN uploads u ON u.upload_id = t.upload_id
          WHERE u.status = 'active') AS latest
    ORDER BY last.upload_id
    ON CONFLICT (upload_id) DO UPDATE SET served_turn = excluded.served_turn
  )
  SELECT * FROM claimed ORDER BY pick`;

/** Picks and marks in one statement. $1: now, $2: the limit, $3: the instance, $4: its lease, $5: its roots. */
const CLAIM_READY = `WITH ${pickReady('$5')}, ${MARK_PICKED}`;

/** Picks and locks, for a budget to cut. $1: now, $2: the limit, $3: the roots. */
const PICK_FOR_BUDGET = `WITH ${pickReady('$3')} SELECT task_id, size FROM picked ORDER BY pick`;

/** Marks the tasks kept of those picked. $1: now, $2: their ids in pick order, $3: the instance, $4: its lease. */
const MARK_KEPT = `
  WITH picked AS (SELECT task_id, pick FROM unnest($2::bigint[]) WITH ORDINALITY AS p (task_id, pick)),
  ${MARK_PICKED}`;

/** Who claims: the instance, and how long its leases last. */
export interface Claimant {
  instanceId: string;
  leaseMs: number;
}

/**
 * Claims up to `limit` ready tasks for `claimant` (see Store.claimReadyTasks). Without a budget,
 * one statement. With one, the tasks' sizes are only known once picked, and the budget weighs them
 * in code: the picks are locked by one statement, the ones within the budget marked by a second,
 * in one transaction, so that no other claim can take any of them in between.
 */
export async function claimReady(
  sessions: Sessions,
  claimant: Claimant,
  now: EpochMs,
  limit: number,
  options: ClaimOptions = {},
): Promise<FileTask[]> {
  assertLimit('claimReadyTasks', limit);
  const { budget } = options;
  const roots = options.sourceRoots ?? null;
  const { instanceId, leaseMs } = claimant;
  if (budget === undefined) {
    const values = [now, limit, instanceId, leaseMs, roots];
    return sessions.session(async (db) => marked(db, 'claim-ready', CLAIM_READY, values));
  }
  return sessions.transaction(async (tx) => {
    const { rows: picked } = await tx.query<{ task_id: number; size: number }>({
      name: 'claim-pick-for-budget',
      text: PICK_FOR_BUDGET,
      values: [now, limit, roots],
    });
    const kept = withinBudget(picked, budget);
    if (kept.length === 0) return [];
    return marked(tx, 'claim-mark-kept', MARK_KEPT, [now, kept, instanceId, leaseMs]);
  });
}

async function marked(db: Queryable, name: string, text: string, values: unknown[]): Promise<FileTask[]> {
  const { rows } = await db.query<TaskRow>({ name, text, values });
  return rows.map(toFileTask);
}

/** The ids of the first tasks picked, up to the one whose weight reaches the budget. */
function withinBudget(picked: readonly { task_id: number; size: number }[], budget: ClaimBudget): number[] {
  const kept: number[] = [];
  let bytes = 0;
  for (const task of picked) {
    kept.push(task.task_id);
    bytes += budget.bytesOf(task.size);
    if (bytes >= budget.bytes) break;
  }
  return kept;
}
