import type {
  RescanOutcome,
  ScanReport,
  Upload,
  UploadCounts,
  UploadProgress,
} from '../../src/domain/model.js';
import { progressOf, type UploadActivity } from '../../src/engine/progress.js';
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
  /** What the engine knows of each upload's activity, by upload id (no scan, no bytes for the others). */
  readonly activity = new Map<string, UploadActivity>();

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

  progress(upload: Upload, counts: UploadCounts): UploadProgress {
    const activity = this.activity.get(upload.uploadId) ?? { initialScanRunning: false, bytesPerSecond: 0 };
    return progressOf(upload, counts, activity);
  }
}
