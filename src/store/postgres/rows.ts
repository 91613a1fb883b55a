// Rows as PostgreSQL returns them through the store's pool (bigint read as numbers, see
// connection.ts; json parsed), and their mapping to the domain model: the one place that knows
// both the column names and the field names.
import type { FileTask, MultipartState, Upload, UploadedPart } from '../../domain/model.js';
import {
  arrivalOf,
  completeMarkers,
  ifExists,
  manifestOf,
  notificationOf,
  objectProperties,
  taskStatus,
  uploadStatus,
  validationMethod,
  type ArrivalColumns,
} from '../row-values.js';

export interface UploadRow extends ArrivalColumns {
  upload_id: string;
  source_folder: string;
  destination_bucket: string;
  destination_prefix: string;
  pattern: string;
  status: string;
  watch: boolean;
  if_exists: string;
  storage_class: string | null;
  sse: string | null;
  sse_kms_key_id: string | null;
  object_metadata: Record<string, string>;
  object_tags: Record<string, string>;
  created_at: number;
  updated_at: number;
  completed_at: number | null;
  last_error: string | null;
  last_completed_at: number | null;
  listed_at: number | null;
  watched_by: string | null;
  complete_markers: string[];
  manifest_key: string | null;
  notify_url: string | null;
  scanned_at: number | null;
}

export interface TaskRow {
  task_id: number;
  upload_id: string;
  relative_path: string;
  object_key: string;
  size: number;
  mtime_ms: number;
  ino: number | null;
  ctime_ms: number | null;
  status: string;
  bytes_uploaded: number;
  attempts: number;
  last_error: string | null;
  ready_at: number | null;
  observed_at: number;
  etag: string | null;
  validation: string | null;
  sha256: string | null;
  uploaded_size: number | null;
  stream_refused: boolean;
  hash_first: boolean;
  interrupted: boolean;
  skipped: string | null;
  claimed_by: string | null;
  is_marker: boolean;
  created_at: number;
  updated_at: number;
  completed_at: number | null;
  failed_at: number | null;
}

export interface MultipartRow {
  task_id: number;
  s3_upload_id: string;
  bucket: string;
  object_key: string;
  size: number;
  mtime_ms: number;
  ino: number | null;
  ctime_ms: number | null;
  part_size: number;
  streamed: boolean;
  copied_bytes: number;
  copy_source_etag: string | null;
  created_at: number;
}

export interface PartRow {
  task_id: number;
  part_number: number;
  etag: string;
  size: number;
}

export type { TaskCountRow } from '../row-values.js';

export function toUpload(row: UploadRow): Upload {
  return {
    uploadId: row.upload_id,
    sourceFolder: row.source_folder,
    destinationBucket: row.destination_bucket,
    destinationPrefix: row.destination_prefix,
    pattern: row.pattern,
    status: uploadStatus(row.status),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    lastError: row.last_error,
    lastCompletedAt: row.last_completed_at,
    watch: row.watch,
    completedAt: row.completed_at,
    ifExists: ifExists(row.if_exists),
    listedAt: row.listed_at,
    watchedBy: row.watched_by,
    objectProperties: objectProperties(row.upload_id, {
      storage_class: row.storage_class,
      sse: row.sse,
      sse_kms_key_id: row.sse_kms_key_id,
      metadata: row.object_metadata,
      tags: row.object_tags,
    }),
    completeMarkers: completeMarkers(row.upload_id, row.complete_markers),
    manifestKey: row.manifest_key,
    notifyUrl: row.notify_url,
    scannedAt: row.scanned_at,
    arrival: arrivalOf(row),
    manifest: manifestOf(row),
    notification: notificationOf(row),
  };
}

export function toFileTask(row: TaskRow): FileTask {
  return {
    taskId: row.task_id,
    uploadId: row.upload_id,
    relativePath: row.relative_path,
    objectKey: row.object_key,
    size: row.size,
    mtimeMs: row.mtime_ms,
    ino: row.ino,
    ctimeMs: row.ctime_ms,
    status: taskStatus(row.status),
    bytesUploaded: row.bytes_uploaded,
    attempts: row.attempts,
    lastError: row.last_error,
    readyAt: row.ready_at,
    observedAt: row.observed_at,
    etag: row.etag,
    validation: validationMethod(row.validation),
    sha256: row.sha256,
    uploadedSize: row.uploaded_size,
    streamRefused: row.stream_refused,
    hashFirst: row.hash_first,
    interrupted: row.interrupted,
    claimedBy: row.claimed_by,
    skipped: row.skipped,
    marker: row.is_marker,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    completedAt: row.completed_at,
    failedAt: row.failed_at,
  };
}

export function toUploadedPart(row: PartRow): UploadedPart {
  return { partNumber: row.part_number, etag: row.etag, size: row.size };
}

export function toMultipartState(row: MultipartRow, parts: readonly PartRow[]): MultipartState {
  return {
    taskId: row.task_id,
    s3UploadId: row.s3_upload_id,
    bucket: row.bucket,
    key: row.object_key,
    size: row.size,
    mtimeMs: row.mtime_ms,
    ino: row.ino,
    ctimeMs: row.ctime_ms,
    partSize: row.part_size,
    streamed: row.streamed,
    copiedBytes: row.copied_bytes,
    copySourceEtag: row.copy_source_etag,
    parts: parts.map(toUploadedPart),
    createdAt: row.created_at,
  };
}
