import type { UploadRequest } from '../../src/domain/model.js';
import type { RequestLifecycle } from '../../src/engine/upload-service.js';

/** Stands in for the engine where a test exercises the API or the upload service alone. */
export class RecordingLifecycle implements RequestLifecycle {
  readonly created: string[] = [];
  readonly cancelled: string[] = [];
  requeueWakeUps = 0;

  requestCreated(request: UploadRequest): void {
    this.created.push(request.uploadId);
  }

  async requestCancelled(uploadId: string): Promise<void> {
    this.cancelled.push(uploadId);
  }

  tasksRequeued(): void {
    this.requeueWakeUps += 1;
  }
}
