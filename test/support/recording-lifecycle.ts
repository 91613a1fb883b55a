import type { RescanOutcome, ScanReport, Upload } from '../../src/domain/model.js';
import type { S3HealthReport } from '../../src/engine/s3-health.js';
import type { UploadLifecycle } from '../../src/engine/lifecycle.js';

/** Stands in for the engine where a test exercises the API or the upload service alone. */
export class RecordingLifecycle implements UploadLifecycle {
  readonly created: string[] = [];
  readonly cancelled: string[] = [];
  readonly rescans: string[] = [];
  requeueWakeUps = 0;
  /** What rescan() answers. */
  rescanOutcome: RescanOutcome = 'started';
  /** What lastScan() answers, by upload id (null for the others). */
  readonly scans = new Map<string, ScanReport>();
  /** What s3Health() answers. */
  s3: S3HealthReport = { status: 'reachable', since: 0, lastError: null };

  uploadCreated(request: Upload): void {
    this.created.push(request.uploadId);
  }

  async uploadCancelled(uploadId: string): Promise<void> {
    this.cancelled.push(uploadId);
  }

  tasksRequeued(): void {
    this.requeueWakeUps += 1;
  }

  rescan(uploadId: string): RescanOutcome {
    this.rescans.push(uploadId);
    return this.rescanOutcome;
  }

  s3Health(): S3HealthReport {
    return this.s3;
  }

  lastScan(uploadId: string): ScanReport | null {
    return this.scans.get(uploadId) ?? null;
  }
}
