// Domain objects as the API shows them: snake_case names and ISO 8601 times.
import { redactNotifyUrl } from '../arrival/notify-url.js';
import type {
  Arrival,
  EpochMs,
  FileTask,
  ManifestRecord,
  NotificationState,
  UploadTotals,
  ScanReport,
  Upload,
  UploadProgress,
} from '../domain/model.js';
import type { Instance } from '../domain/instance.js';
import type { ObjectProperties } from '../domain/object-properties.js';
import type { VerifyReport } from '../service/verify.js';
import type {
  ArrivalReply,
  FileItem,
  ManifestReply,
  NotificationReply,
  InstanceReply,
  ObjectPropertiesReply,
  ScanReply,
  UploadDetailsReply,
  UploadProgressReply,
  UploadReply,
  UploadSummaryReply,
  VerifyReply,
} from './schemas.js';

function iso(time: EpochMs): string {
  return new Date(time).toISOString();
}

function isoOrNull(time: EpochMs | null): string | null {
  return time === null ? null : iso(time);
}

export function uploadReply(upload: Upload): UploadReply {
  return {
    upload_id: upload.uploadId,
    source_folder: upload.sourceFolder,
    destination_bucket: upload.destinationBucket,
    destination_prefix: upload.destinationPrefix,
    pattern: upload.pattern,
    status: upload.status,
    created_at: iso(upload.createdAt),
    updated_at: iso(upload.updatedAt),
    last_error: upload.lastError,
    watch: upload.watch,
    completed_at: isoOrNull(upload.completedAt),
    if_exists: upload.ifExists,
    listed_at: isoOrNull(upload.listedAt),
    object_properties: objectPropertiesReply(upload.objectProperties),
    complete_markers: [...upload.completeMarkers],
    manifest: upload.manifestKey !== null,
    manifest_key: upload.manifestKey,
    notify_url: upload.notifyUrl && redactNotifyUrl(upload.notifyUrl),
    arrival: upload.arrival && arrivalReply(upload.arrival),
    last_manifest: upload.manifest && manifestReply(upload.manifest),
    notification: upload.notification && notificationReply(upload.notification),
  };
}

export function arrivalReply(arrival: Arrival): ArrivalReply {
  return { at: iso(arrival.at), files: arrival.files, bytes: arrival.bytes, marker_key: arrival.markerKey };
}

export function manifestReply(manifest: ManifestRecord): ManifestReply {
  const { key, files, bytes, sha256 } = manifest;
  return { key, files, bytes, sha256, written_at: iso(manifest.writtenAt) };
}

export function notificationReply(notification: NotificationState): NotificationReply {
  return {
    status: notification.status,
    arrival_at: iso(notification.arrivalAt),
    attempts: notification.attempts,
    last_error: notification.lastError,
    last_attempt_at: isoOrNull(notification.lastAttemptAt),
    delivered_at: isoOrNull(notification.deliveredAt),
  };
}

export function objectPropertiesReply(properties: ObjectProperties): ObjectPropertiesReply {
  return {
    storage_class: properties.storageClass,
    sse: properties.sse,
    sse_kms_key_id: properties.sseKmsKeyId,
    metadata: { ...properties.metadata },
    tags: { ...properties.tags },
  };
}

export function uploadDetailsReply(
  upload: Upload,
  totals: UploadTotals,
  lastScan: ScanReport | null,
  progress: UploadProgress,
): UploadDetailsReply {
  return {
    ...uploadReply(upload),
    last_scan: lastScan && scanReply(lastScan),
    watched_by: upload.watchedBy,
    files: { ...totals.files },
    bytes: { ...totals.bytes },
    progress: progressReply(progress),
  };
}

export function uploadSummaryReply(
  upload: Upload,
  totals: UploadTotals,
  progress: UploadProgress,
): UploadSummaryReply {
  return {
    ...uploadReply(upload),
    files: { ...totals.files },
    bytes: { ...totals.bytes },
    progress: progressReply(progress),
  };
}

export function progressReply(progress: UploadProgress): UploadProgressReply {
  return {
    phase: progress.phase,
    bytes_per_second: progress.bytesPerSecond,
    eta_seconds: progress.etaSeconds,
    last_completed_at: isoOrNull(progress.lastCompletedAt),
  };
}

export function scanReply(scan: ScanReport): ScanReply {
  return {
    kind: scan.kind,
    started_at: iso(scan.startedAt),
    finished_at: isoOrNull(scan.finishedAt),
    duration_ms: scan.durationMs,
    files_seen: scan.filesSeen,
    files_changed: scan.filesChanged,
    files_not_utf8: scan.filesNotUtf8,
    error: scan.error,
  };
}

export function fileItem(task: FileTask): FileItem {
  return {
    task_id: task.taskId,
    relative_path: task.relativePath,
    object_key: task.objectKey,
    size: task.size,
    modified_at: iso(task.mtimeMs),
    status: task.status,
    bytes_uploaded: task.bytesUploaded,
    attempts: task.attempts,
    last_error: task.lastError,
    etag: task.etag,
    validation: task.validation,
    sha256: task.sha256,
    skipped: task.skipped,
    uploaded_size: task.uploadedSize,
    ready_at: isoOrNull(task.readyAt),
    created_at: iso(task.createdAt),
    updated_at: iso(task.updatedAt),
    completed_at: isoOrNull(task.completedAt),
    failed_at: isoOrNull(task.failedAt),
    marker: task.marker,
    instance: task.status === 'in_progress' ? task.claimedBy : null,
  };
}

export function instanceReply(instance: Instance): InstanceReply {
  const { work } = instance;
  return {
    instance_id: instance.instanceId,
    host: instance.host,
    pid: instance.pid,
    version: instance.version,
    started_at: iso(instance.startedAt),
    heartbeat_at: iso(instance.heartbeatAt),
    lease_seconds: instance.leaseMs / 1000,
    source_roots: instance.sourceRoots && [...instance.sourceRoots],
    work: {
      files: work.files,
      bytes: work.bytes,
      bytes_uploaded: work.bytesUploaded,
      upload_ids: [...work.uploadIds],
    },
  };
}

export function verifyReply(report: VerifyReport): VerifyReply {
  return {
    checked: report.checked,
    mismatched: report.mismatched,
    mismatches: report.mismatches.map((mismatch) => ({
      relative_path: mismatch.relativePath,
      object_key: mismatch.objectKey,
      reason: mismatch.reason,
    })),
    requeued: report.requeued,
  };
}
