// Arrivals (see Arrival in domain/model.ts): recorded when a marker completes or a one-shot upload
// does, with the notification of each, which the instance that recorded it delivers (or another,
// once that one's row is gone); the scan that lets an upload's markers go; the manifest's listing
// of the completed files, and its record.
import type {
  EpochMs,
  ManifestEntry,
  ManifestRecord,
  NotificationOutcome,
  Upload,
} from '../../domain/model.js';
import { assertLimit } from '../errors.js';
import type { Queryable } from './connection.js';
import type { Notifier } from './notify.js';
import { toldBy } from './queue.js';
import { toUpload, type UploadRow } from './rows.js';

// The completed tasks that are not markers of the uploads row `u`: its kept count of completed
// tasks, less its completed markers (a few rows of file_tasks_markers), so that an arrival never
// reads the upload's other tasks. The counts' triggers run at the end of each statement, so a
// later statement of the transaction reads them exact. The bytes are the completed tasks' sizes,
// which are the sizes uploaded (completeTask writes both).
const COMPLETED_NOT_MARKERS = {
  files: `
    ((SELECT c.files FROM upload_task_counts c WHERE c.upload_id = u.upload_id AND c.status = 'completed')
     - (SELECT count(*) FROM file_tasks m
        WHERE m.upload_id = u.upload_id AND m.status = 'completed' AND m.is_marker))`,
  bytes: `
    ((SELECT c.bytes_total FROM upload_task_counts c WHERE c.upload_id = u.upload_id AND c.status = 'completed')
     - (SELECT COALESCE(sum(m.size), 0)::bigint FROM file_tasks m
        WHERE m.upload_id = u.upload_id AND m.status = 'completed' AND m.is_marker))`,
};

/**
 * The SET list of an arrival of the uploads row `u` at `at`, with `markerKey`, `files` and `bytes`
 * (all SQL), and, for an upload with a notify_url, its notification: pending, from scratch, held
 * by `instanceId` (an SQL parameter).
 */
function arrivalRecorded(
  at: string,
  markerKey: string,
  files: string,
  bytes: string,
  instanceId: string,
): string {
  return `
    arrival_at = ${at},
    arrival_files = ${files},
    arrival_bytes = ${bytes},
    arrival_marker_key = ${markerKey},
    notification_status = CASE WHEN u.notify_url IS NULL THEN NULL ELSE 'pending' END,
    notification_arrival_at = CASE WHEN u.notify_url IS NULL THEN NULL ELSE ${at} END,
    notification_attempts = CASE WHEN u.notify_url IS NULL THEN NULL ELSE 0 END,
    notification_last_error = NULL,
    notification_last_attempt_at = NULL,
    notification_delivered_at = NULL,
    notification_held_by = CASE WHEN u.notify_url IS NULL THEN NULL ELSE ${instanceId}::text END`;
}

// One row per upload. later_files and later_bytes: the files that are not markers completed after
// the marker in the same group commit, which it did not wait for.
const RECORD_MARKER_ARRIVALS = `
  UPDATE uploads u SET ${arrivalRecorded(
    'a.at',
    'a.marker_key',
    `${COMPLETED_NOT_MARKERS.files} - a.later_files`,
    `${COMPLETED_NOT_MARKERS.bytes} - a.later_bytes`,
    '$6',
  )}
  FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::bigint[])
    AS a (upload_id, at, marker_key, later_files, later_bytes)
  WHERE u.upload_id = a.upload_id`;

// Once: an upload whose marker went up has its arrival already.
const RECORD_COMPLETION_ARRIVAL = `
  UPDATE uploads u SET ${arrivalRecorded(
    '$2::bigint',
    'NULL',
    COMPLETED_NOT_MARKERS.files,
    COMPLETED_NOT_MARKERS.bytes,
    '$3',
  )}
  WHERE u.upload_id = $1 AND u.arrival_at IS NULL`;

// The first time the folder was scanned whole, its markers may go: the other instances are told,
// as of tasks made ready ($3, $4: see notify.ts). Every part of the statement reads the row as it
// was before it.
const MARK_SCANNED = `
  WITH earlier AS (SELECT scanned_at FROM uploads WHERE upload_id = $1),
  scanned AS (UPDATE uploads SET scanned_at = $2 WHERE upload_id = $1 RETURNING 1)
  SELECT pg_notify($3, $4) FROM earlier
  WHERE earlier.scanned_at IS NULL AND EXISTS (SELECT 1 FROM scanned)`;

// A range of file_tasks_by_upload_status from a bound, in its order: a page costs its rows, however
// many the upload has. The bound is on the index's whole key, and the upload and status are kept
// outside the LIMIT: then no other index can give the order, and the planner cannot take the
// primary key's instead, betting that the upload's tasks come soon after the bound (for an upload
// whose tasks are few, or all behind it, that walks the table). Past the upload's last completed
// task the index holds other rows, which the outer filter drops: a last page is short, not wrong.
export const MANIFEST_ENTRIES = `
  SELECT task_id, object_key, COALESCE(uploaded_size, size) AS size, sha256, etag, mtime_ms
  FROM (
    SELECT * FROM file_tasks
    WHERE (upload_id, status, task_id) > ($1, 'completed', $2) AND NOT is_marker
    ORDER BY upload_id, status, task_id
    LIMIT $3
  ) AS page
  WHERE upload_id = $1 AND status = 'completed'
  ORDER BY task_id`;

const RECORD_MANIFEST = `
  UPDATE uploads SET manifest_written_key = $2, manifest_files = $3, manifest_bytes = $4, manifest_sha256 = $5,
                     manifest_written_at = $6
  WHERE upload_id = $1`;

// The pending notifications this instance holds, and those held by an instance that has no row
// any more, taken over in the same statement. The takeover is a compare-and-swap on the holder
// the statement began with: when two instances take at once, the second one's UPDATE waits for
// the first's, then finds the row held by another than it read, and leaves it. (A NOT EXISTS on
// instances in the UPDATE's own WHERE would not do: checked again on the row the first changed,
// it still sees no instance row.) The held ones are read as the statement began, before it took
// any (uploads_notifying).
const TAKE_NOTIFICATIONS = `
  WITH orphaned AS (
    SELECT upload_id, notification_held_by AS previous FROM uploads u
    WHERE notification_status = 'pending' AND notification_held_by IS DISTINCT FROM $1
      AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.instance_id = u.notification_held_by)
  ),
  taken AS (
    UPDATE uploads u SET notification_held_by = $1
    FROM orphaned o
    WHERE u.upload_id = o.upload_id AND u.notification_status = 'pending'
      AND u.notification_held_by IS NOT DISTINCT FROM o.previous
    RETURNING u.*
  )
  SELECT * FROM (
    SELECT * FROM taken
    UNION ALL
    SELECT * FROM uploads WHERE notification_status = 'pending' AND notification_held_by = $1
  ) AS pending
  ORDER BY notification_arrival_at, upload_id`;

const RECORD_NOTIFICATION = `
  UPDATE uploads SET notification_status = $3, notification_attempts = $4, notification_last_error = $5,
                     notification_last_attempt_at = $6,
                     notification_delivered_at = CASE WHEN $3 = 'delivered' THEN $6 ELSE notification_delivered_at END
  WHERE upload_id = $1 AND notification_arrival_at = $2`;

/** A marker completed, and what of its upload completed after it in the same group commit. */
export interface MarkerArrival {
  uploadId: string;
  at: EpochMs;
  markerKey: string;
  /** The files that are not markers completed after the marker in the same transaction, and their bytes. */
  laterFiles: number;
  laterBytes: number;
}

/** In the transaction that completed the markers: one arrival per upload, the latest. */
export async function recordMarkers(
  tx: Queryable,
  instanceId: string,
  arrivals: readonly MarkerArrival[],
): Promise<void> {
  const column = <T>(value: (arrival: MarkerArrival) => T): T[] => arrivals.map(value);
  await tx.query({
    name: 'arrivals-record-markers',
    text: RECORD_MARKER_ARRIVALS,
    values: [
      column((a) => a.uploadId),
      column((a) => a.at),
      column((a) => a.markerKey),
      column((a) => a.laterFiles),
      column((a) => a.laterBytes),
      instanceId,
    ],
  });
}

/** In the transaction that completed the one-shot upload. */
export async function recordCompletion(
  tx: Queryable,
  uploadId: string,
  now: EpochMs,
  instanceId: string,
): Promise<void> {
  await tx.query({
    name: 'arrivals-record-completion',
    text: RECORD_COMPLETION_ARRIVAL,
    values: [uploadId, now, instanceId],
  });
}

export async function markScanned(
  db: Queryable,
  uploadId: string,
  now: EpochMs,
  notifier: Notifier,
): Promise<void> {
  await db.query({
    name: 'arrivals-mark-scanned',
    text: MARK_SCANNED,
    values: [uploadId, now, ...toldBy(notifier)],
  });
}

interface ManifestEntryRow {
  task_id: number;
  object_key: string;
  size: number;
  sha256: string | null;
  etag: string | null;
  mtime_ms: number;
}

export async function manifestEntries(
  db: Queryable,
  uploadId: string,
  afterTaskId: number,
  limit: number,
): Promise<ManifestEntry[]> {
  assertLimit('manifestEntries', limit);
  const { rows } = await db.query<ManifestEntryRow>({
    name: 'arrivals-manifest-entries',
    text: MANIFEST_ENTRIES,
    values: [uploadId, afterTaskId, limit],
  });
  return rows.map((row) => ({
    taskId: row.task_id,
    key: row.object_key,
    size: row.size,
    sha256: row.sha256,
    etag: row.etag,
    mtimeMs: row.mtime_ms,
  }));
}

export async function recordManifest(
  db: Queryable,
  uploadId: string,
  manifest: ManifestRecord,
): Promise<void> {
  const { key, files, bytes, sha256, writtenAt } = manifest;
  await db.query({
    name: 'arrivals-record-manifest',
    text: RECORD_MANIFEST,
    values: [uploadId, key, files, bytes, sha256, writtenAt],
  });
}

export async function takeNotifications(db: Queryable, instanceId: string): Promise<Upload[]> {
  const { rows } = await db.query<UploadRow>({
    name: 'arrivals-take-notifications',
    text: TAKE_NOTIFICATIONS,
    values: [instanceId],
  });
  return rows.map(toUpload);
}

export async function recordNotification(
  db: Queryable,
  uploadId: string,
  arrivalAt: EpochMs,
  outcome: NotificationOutcome,
): Promise<boolean> {
  const { status, attempts, lastError, at } = outcome;
  const { rowCount } = await db.query({
    name: 'arrivals-record-notification',
    text: RECORD_NOTIFICATION,
    values: [uploadId, arrivalAt, status, attempts, lastError, at],
  });
  return rowCount === 1;
}
