// The values of a row checked on their way out of either database, where the columns' words
// become the domain's. The CHECK constraints make these failures impossible unless the database
// was edited by hand; they replace a cast, so that such a row is reported instead of flowing
// through the engine.
import { IF_EXISTS_CHOICES } from '../domain/model.js';
import type { IfExists, UploadCounts, ValidationMethod } from '../domain/model.js';
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
