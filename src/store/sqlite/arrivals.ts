// Arrivals (see Arrival in domain/model.ts): recorded when a marker completes or a one-shot upload
// does, with the notification of each; the scan that lets an upload's markers go; the manifest's
// listing of the completed files, and its record.
import type { Database } from 'better-sqlite3';
import type {
  EpochMs,
  ManifestEntry,
  ManifestRecord,
  NotificationOutcome,
  Upload,
} from '../../domain/model.js';
import { assertLimit } from '../errors.js';
import { toUpload, type UploadRow } from './rows.js';

export type ArrivalQueries = ReturnType<typeof arrivalQueries>;

// The upload's completed tasks that are not markers: its kept count of completed tasks, less its
// completed markers (a few rows of file_tasks_markers), so that an arrival never reads the upload's
// other tasks. Exact inside the transaction: the counts' triggers run with each change. The bytes
// are the completed tasks' sizes, which are the sizes uploaded (completeTask writes both).
const COMPLETED_NOT_MARKERS = {
  files: `
    COALESCE((SELECT c.files FROM upload_task_counts c
              WHERE c.upload_id = uploads.upload_id AND c.status = 'completed'), 0)
    - (SELECT count(*) FROM file_tasks m
       WHERE m.upload_id = uploads.upload_id AND m.status = 'completed' AND m.is_marker = 1)`,
  bytes: `
    COALESCE((SELECT c.bytes_total FROM upload_task_counts c
              WHERE c.upload_id = uploads.upload_id AND c.status = 'completed'), 0)
    - (SELECT COALESCE(SUM(m.size), 0) FROM file_tasks m
       WHERE m.upload_id = uploads.upload_id AND m.status = 'completed' AND m.is_marker = 1)`,
};

/**
 * The SET list of an arrival at @now with the marker key `markerKey` (SQL), and, for an upload
 * with a notify_url, its notification: pending, from scratch, held by @instanceId.
 */
function arrivalRecorded(markerKey: string): string {
  return `
    arrival_at = @now,
    arrival_files = ${COMPLETED_NOT_MARKERS.files},
    arrival_bytes = ${COMPLETED_NOT_MARKERS.bytes},
    arrival_marker_key = ${markerKey},
    notification_status = CASE WHEN notify_url IS NULL THEN NULL ELSE 'pending' END,
    notification_arrival_at = CASE WHEN notify_url IS NULL THEN NULL ELSE @now END,
    notification_attempts = CASE WHEN notify_url IS NULL THEN NULL ELSE 0 END,
    notification_last_error = NULL,
    notification_last_attempt_at = NULL,
    notification_delivered_at = NULL,
    notification_held_by = CASE WHEN notify_url IS NULL THEN NULL ELSE @instanceId END`;
}

interface ArrivalChange {
  uploadId: string;
  now: EpochMs;
  instanceId: string;
}

interface ManifestEntryRow {
  task_id: number;
  object_key: string;
  size: number;
  sha256: string | null;
  etag: string | null;
  mtime_ms: number;
}

/** The statements that read file_tasks, exported so that a test can check their plans. */
export const ARRIVAL_SCANS = {
  recordMarker: `UPDATE uploads SET ${arrivalRecorded('@markerKey')} WHERE upload_id = @uploadId`,

  // Once: an upload whose marker went up has its arrival already.
  recordCompletion: `
    UPDATE uploads SET ${arrivalRecorded('NULL')} WHERE upload_id = @uploadId AND arrival_at IS NULL`,

  // A range of file_tasks_by_upload_status from a bound on the rowid, in its order: a page costs
  // its rows, however many the upload has.
  manifestEntries: `
    SELECT task_id, object_key, COALESCE(uploaded_size, size) AS size, sha256, etag, mtime_ms
    FROM file_tasks
    WHERE upload_id = @uploadId AND status = 'completed' AND task_id > @afterTaskId AND is_marker = 0
    ORDER BY task_id LIMIT @limit`,
} as const;

export function arrivalQueries(db: Database) {
  const recordMarkerArrival = db.prepare<ArrivalChange & { markerKey: string }>(ARRIVAL_SCANS.recordMarker);
  const recordCompletionArrival = db.prepare<ArrivalChange>(ARRIVAL_SCANS.recordCompletion);

  const markScanned = db.prepare<{ uploadId: string; now: EpochMs }>(`
    UPDATE uploads SET scanned_at = @now WHERE upload_id = @uploadId`);

  const selectManifestEntries = db.prepare<
    { uploadId: string; afterTaskId: number; limit: number },
    ManifestEntryRow
  >(ARRIVAL_SCANS.manifestEntries);

  const recordManifest = db.prepare<{ uploadId: string } & ManifestRecord>(`
    UPDATE uploads SET manifest_written_key = @key, manifest_files = @files, manifest_bytes = @bytes,
                       manifest_sha256 = @sha256, manifest_written_at = @writtenAt
    WHERE upload_id = @uploadId`);

  // One process serves the file: every pending notification is its own.
  const selectPendingNotifications = db.prepare<[], UploadRow>(`
    SELECT * FROM uploads WHERE notification_status = 'pending'
    ORDER BY notification_arrival_at, upload_id`);

  const recordNotification = db.prepare<{ uploadId: string; arrivalAt: EpochMs } & NotificationOutcome>(`
    UPDATE uploads SET notification_status = @status, notification_attempts = @attempts,
                       notification_last_error = @lastError, notification_last_attempt_at = @at,
                       notification_delivered_at = CASE WHEN @status = 'delivered' THEN @at
                                                        ELSE notification_delivered_at END
    WHERE upload_id = @uploadId AND notification_arrival_at = @arrivalAt`);

  return {
    /** In the transaction that completed the marker. */
    recordMarker(uploadId: string, markerKey: string, now: EpochMs, instanceId: string): void {
      recordMarkerArrival.run({ uploadId, markerKey, now, instanceId });
    },

    /** In the transaction that completed the one-shot upload. */
    recordCompletion(uploadId: string, now: EpochMs, instanceId: string): void {
      recordCompletionArrival.run({ uploadId, now, instanceId });
    },

    markScanned(uploadId: string, now: EpochMs): void {
      markScanned.run({ uploadId, now });
    },

    manifestEntries(uploadId: string, afterTaskId: number, limit: number): ManifestEntry[] {
      assertLimit('manifestEntries', limit);
      return selectManifestEntries.all({ uploadId, afterTaskId, limit }).map((row) => ({
        taskId: row.task_id,
        key: row.object_key,
        size: row.size,
        sha256: row.sha256,
        etag: row.etag,
        mtimeMs: row.mtime_ms,
      }));
    },

    recordManifest(uploadId: string, manifest: ManifestRecord): void {
      const { key, files, bytes, sha256, writtenAt } = manifest;
      recordManifest.run({ uploadId, key, files, bytes, sha256, writtenAt });
    },

    takeNotifications(): Upload[] {
      return selectPendingNotifications.all().map(toUpload);
    },

    recordNotification(uploadId: string, arrivalAt: EpochMs, outcome: NotificationOutcome): boolean {
      const { status, attempts, lastError, at } = outcome;
      return recordNotification.run({ uploadId, arrivalAt, status, attempts, lastError, at }).changes === 1;
    },
  };
}
