// What the engine offers the application service: the service changes uploads in the store, then
// tells the engine, which starts or stops the work.
import type { RescanOutcome, ScanReport, Upload, UploadCounts, UploadProgress } from '../domain/model.js';
import type { S3HealthReport } from './s3-health.js';

/** What the engine does when the API changes an upload. */
export interface UploadLifecycle {
  /** Start scanning and watching the new upload. */
  uploadCreated(upload: Upload): void;
  /** Stop watching it, stop its in-flight uploads and abort its multipart uploads. */
  uploadCancelled(uploadId: string): Promise<void>;
  /** Failed (or verified and found wrong) tasks are pending again: wake the dispatcher. */
  tasksRequeued(): void;
  /** Scan the upload's folder now, unless a scan of it runs already. */
  rescan(uploadId: string): RescanOutcome;
  /** Whether S3 answers (an outage holds every upload back until it does). */
  s3Health(): S3HealthReport;
  /** The upload's last scan since the service started watching it; null when none has started. */
  lastScan(uploadId: string): ScanReport | null;
  /** Where the upload stands (see progressOf), from its counts in the store and what the engine knows. */
  progress(upload: Upload, counts: UploadCounts): UploadProgress;
}
