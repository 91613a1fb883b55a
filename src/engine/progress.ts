// Where an upload stands, as the API shows it: its phase, its throughput and the time left. Pure
// functions of the stored counts and what the engine knows in memory (its first scan, the bytes
// that moved), so that the rules can be tested without a clock or a store.
import type { TaskCounts, Upload, UploadCounts, UploadProgress } from '../domain/model.js';
import type { UploadPhase } from '../domain/status.js';

/** What only the engine knows about an upload, in memory. */
export interface UploadActivity {
  /** Its first scan since the service started watching it has not finished yet. */
  initialScanRunning: boolean;
  /** Bytes S3 confirmed per second, over the throughput window; 0 when nothing moved. */
  bytesPerSecond: number;
}

/**
 * The first rule that holds: cancelled or completed (the upload is); scanning (its first scan runs: the backlog
 * is not known yet); uploading (files pending or in progress); failed (files failed, waiting for
 * their requeue, and nothing else to do); idle (every known file completed, or none matched).
 */
export function phaseOf(
  upload: Pick<Upload, 'status'>,
  initialScanRunning: boolean,
  files: TaskCounts,
): UploadPhase {
  if (upload.status === 'cancelled') return 'cancelled';
  if (upload.status === 'completed') return 'completed';
  if (initialScanRunning) return 'scanning';
  if (files.pending > 0 || files.in_progress > 0) return 'uploading';
  if (files.failed > 0) return 'failed';
  return 'idle';
}

/**
 * Bytes still to send of the pending and in-progress files (failed ones wait for a requeue whose
 * time is not theirs to tell), over the current rate, rounded up to a whole second: null when the
 * rate is 0 (no estimate) or nothing is left.
 */
export function etaSecondsOf(remainingBytes: number, bytesPerSecond: number): number | null {
  if (remainingBytes <= 0 || bytesPerSecond <= 0) return null;
  return Math.ceil(remainingBytes / bytesPerSecond);
}

export function progressOf(upload: Upload, counts: UploadCounts, activity: UploadActivity): UploadProgress {
  const ended = upload.status === 'cancelled' || upload.status === 'completed';
  const bytesPerSecond = ended ? 0 : activity.bytesPerSecond;
  return {
    phase: phaseOf(upload, activity.initialScanRunning, counts.files),
    bytesPerSecond,
    etaSeconds: ended ? null : etaSecondsOf(counts.backlogBytes, bytesPerSecond),
    lastCompletedAt: upload.lastCompletedAt,
  };
}
