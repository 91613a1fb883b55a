// The two status models. Each list is mirrored by a CHECK constraint in the database schema.

export const UPLOAD_STATUSES = ['pending', 'active', 'completed', 'cancelled'] as const;
/**
 * pending when created, active once the monitor scans it, cancelled by DELETE; a one-shot upload
 * (watch false) is completed once its scan has finished and every file it found is completed.
 */
export type UploadStatus = (typeof UPLOAD_STATUSES)[number];

export const TASK_STATUSES = ['pending', 'in_progress', 'completed', 'failed'] as const;
/** The life of one file version: pending → in_progress → completed | failed (→ pending again on requeue or change). */
export type TaskStatus = (typeof TASK_STATUSES)[number];

export const FAILURE_KINDS = ['transient', 'configuration', 'permanent'] as const;
/**
 * Why a task failed, which decides when it is tried again: 'transient' may heal by itself (the
 * network, S3's 5xx, throttling, timeouts; requeued on a growing schedule); 'configuration' needs
 * a person to fix the setup (credentials, permissions, a missing bucket; requeued after the
 * interval, and at once at the next start); 'permanent' needs the file itself to change or a
 * person to look (an unreadable file, a key too long).
 */
export type FailureKind = (typeof FAILURE_KINDS)[number];

export function isUploadStatus(value: string): value is UploadStatus {
  return (UPLOAD_STATUSES as readonly string[]).includes(value);
}

/** Uploads the engine still works on: watched (or, one-shot, scanned once) and their files uploaded. */
export const LIVE_UPLOAD_STATUSES: readonly UploadStatus[] = ['pending', 'active'];

export function isTaskStatus(value: string): value is TaskStatus {
  return (TASK_STATUSES as readonly string[]).includes(value);
}

export const UPLOAD_PHASES = ['scanning', 'uploading', 'failed', 'idle', 'completed', 'cancelled'] as const;
/**
 * What an upload is doing now, computed from its status, its first scan and its files' counts
 * (see phaseOf in engine/progress.ts); unlike the upload status, it is never stored.
 */
export type UploadPhase = (typeof UPLOAD_PHASES)[number];
