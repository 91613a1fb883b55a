// The values of a row checked on their way out of either database, where the columns' words
// become the domain's. The CHECK constraints make these failures impossible unless the database
// was edited by hand; they replace a cast, so that such a row is reported instead of flowing
// through the engine.
import { IF_EXISTS_CHOICES, NOTIFICATION_STATUSES } from '../domain/model.js';
import type {
  Arrival,
  IfExists,
  ManifestRecord,
  NotificationState,
  NotificationStatus,
  UploadCounts,
  ValidationMethod,
} from '../domain/model.js';
import { checkObjectProperties, type ObjectProperties } from '../domain/object-properties.js';
import { isTaskStatus, isUploadStatus } from '../domain/status.js';
import type { TaskStatus, UploadStatus } from '../domain/status.js';

export function ifExists(value: string): IfExists {
  const known: readonly string[] = IF_EXISTS_CHOICES;
  if (!known.includes(value)) throw new Error(`unknown if_exists '${value}' in uploads`);
  return value as IfExists;
}

export function uploadStatus(value: string): UploadStatus {
  if (!isUploadStatus(value)) throw new Error(`unknown upload status '${value}' in uploads`);
  return value;
}

export function taskStatus(value: string): TaskStatus {
  if (!isTaskStatus(value)) throw new Error(`unknown task status '${value}' in file_tasks`);
  return value;
}

export function validationMethod(value: string | null): ValidationMethod | null {
  if (value === null || value === 'etag' || value === 'content-md5') return value;
  throw new Error(`unknown validation method '${value}' in file_tasks`);
}

export function notificationStatus(value: string): NotificationStatus {
  const known: readonly string[] = NOTIFICATION_STATUSES;
  if (!known.includes(value)) throw new Error(`unknown notification status '${value}' in uploads`);
  return value as NotificationStatus;
}

/** An upload's marker globs, as its column holds them (a JSON array in SQLite, a text[] in PostgreSQL). */
export function completeMarkers(uploadId: string, value: unknown): string[] {
  if (!Array.isArray(value) || !value.every((glob) => typeof glob === 'string'))
    throw new Error(`upload '${uploadId}' has complete_markers that are not a list of globs`);
  return value as string[];
}

/** The columns of an upload's arrival, manifest and notification, as both stores read them. */
export interface ArrivalColumns {
  arrival_at: number | null;
  arrival_files: number | null;
  arrival_bytes: number | null;
  arrival_marker_key: string | null;
  manifest_written_key: string | null;
  manifest_files: number | null;
  manifest_bytes: number | null;
  manifest_sha256: string | null;
  manifest_written_at: number | null;
  notification_status: string | null;
  notification_arrival_at: number | null;
  notification_attempts: number | null;
  notification_last_error: string | null;
  notification_last_attempt_at: number | null;
  notification_delivered_at: number | null;
}

// Each is there whole or not at all (CHECK constraints): its time, or status, says which.
function part<T>(value: T | null, column: string): T {
  if (value === null) throw new Error(`${column} is NULL in uploads where the rest of it is not`);
  return value;
}

export function arrivalOf(row: ArrivalColumns): Arrival | null {
  if (row.arrival_at === null) return null;
  return {
    at: row.arrival_at,
    files: part(row.arrival_files, 'arrival_files'),
    bytes: part(row.arrival_bytes, 'arrival_bytes'),
    markerKey: row.arrival_marker_key,
  };
}

export function manifestOf(row: ArrivalColumns): ManifestRecord | null {
  if (row.manifest_written_at === null) return null;
  return {
    key: part(row.manifest_written_key, 'manifest_written_key'),
    files: part(row.manifest_files, 'manifest_files'),
    bytes: part(row.manifest_bytes, 'manifest_bytes'),
    sha256: part(row.manifest_sha256, 'manifest_sha256'),
    writtenAt: row.manifest_written_at,
  };
}

export function notificationOf(row: ArrivalColumns): NotificationState | null {
  if (row.notification_status === null) return null;
  return {
    status: notificationStatus(row.notification_status),
    arrivalAt: part(row.notification_arrival_at, 'notification_arrival_at'),
    attempts: part(row.notification_attempts, 'notification_attempts'),
    lastError: row.notification_last_error,
    lastAttemptAt: row.notification_last_attempt_at,
    deliveredAt: row.notification_delivered_at,
  };
}

/** The columns of an upload's object properties, with its metadata and tags as JSON objects. */
export interface ObjectPropertyColumns {
  storage_class: string | null;
  sse: string | null;
  sse_kms_key_id: string | null;
  metadata: Record<string, string>;
  tags: Record<string, string>;
}

// Checked again on the way out, like the statuses: a row edited by hand is reported, not sent to S3.
export function objectProperties(uploadId: string, columns: ObjectPropertyColumns): ObjectProperties {
  try {
    return checkObjectProperties({
      storageClass: columns.storage_class,
      sse: columns.sse,
      sseKmsKeyId: columns.sse_kms_key_id,
      metadata: columns.metadata,
      tags: columns.tags,
    });
  } catch (error) {
    throw new Error(`upload '${uploadId}' has object properties S3 would refuse: ${String(error)}`, {
      cause: error,
    });
  }
}

/** One status's kept counts of an upload's tasks, as both stores read them. */
export interface TaskCountRow {
  upload_id: string;
  status: string;
  files: number;
  bytes_total: number;
  bytes_uploaded: number;
}

/** An upload's counts from its rows of kept counts (none: an upload with no task). */
export function uploadCountsOf(rows: readonly TaskCountRow[]): UploadCounts {
  const counts: UploadCounts = {
    files: { pending: 0, in_progress: 0, completed: 0, failed: 0, total: 0 },
    bytes: { total: 0, uploaded: 0 },
    backlogBytes: 0,
  };
  for (const row of rows) {
    const status = taskStatus(row.status);
    counts.files[status] = row.files;
    counts.files.total += row.files;
    counts.bytes.total += row.bytes_total;
    counts.bytes.uploaded += row.bytes_uploaded;
    if (status === 'pending' || status === 'in_progress') {
      counts.backlogBytes += Math.max(0, row.bytes_total - row.bytes_uploaded);
    }
  }
  return counts;
}
