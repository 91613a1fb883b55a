// Files and bytes by upload, counted from the events the engine publishes (domain/events.ts), so
// that the metrics, the logs and the API's event stream tell the same facts. Each upload's series
// are made once, at its first event, and kept in a map: an event costs a lookup and an increment.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ServiceEvent } from '../domain/events.js';

/**
 * A cancelled upload's series stay this long after the cancel, so that the scrapes in between see
 * their last values, then they are removed: a service that runs many uploads in turn does not keep
 * a series per upload for ever.
 */
export const CANCELLED_SERIES_KEPT_MS = 15 * 60_000;

/** Why a file was not sent, as the `reason` label says it. */
const UNCHANGED = 'unchanged';

interface UploadSeries {
  filesUploaded: Counter.Internal;
  bytesUploaded: Counter.Internal;
  filesFailed: Counter.Internal;
  bytesFailed: Counter.Internal;
  filesRetried: Counter.Internal;
  bytesRetried: Counter.Internal;
  filesSkipped: Counter.Internal;
  bytesSkipped: Counter.Internal;
  filesNotUtf8: Gauge.Internal<string>;
}

export interface UploadMetricsOptions {
  registry: Registry;
  /** How long a cancelled upload's series are kept (default CANCELLED_SERIES_KEPT_MS). */
  cancelledKeptMs?: number;
}

export class UploadMetrics {
  private readonly series = new Map<string, UploadSeries>();
  private readonly forgetTimers = new Map<string, NodeJS.Timeout>();
  private readonly cancelledKeptMs: number;
  private readonly filesUploaded: Counter<'upload_id'>;
  private readonly bytesUploaded: Counter<'upload_id'>;
  private readonly filesFailed: Counter<'upload_id'>;
  private readonly bytesFailed: Counter<'upload_id'>;
  private readonly filesRetried: Counter<'upload_id'>;
  private readonly bytesRetried: Counter<'upload_id'>;
  private readonly filesSkipped: Counter<'upload_id' | 'reason'>;
  private readonly bytesSkipped: Counter<'upload_id' | 'reason'>;
  private readonly filesNotUtf8: Gauge<'upload_id'>;

  constructor(options: UploadMetricsOptions) {
    const registers = [options.registry];
    this.cancelledKeptMs = options.cancelledKeptMs ?? CANCELLED_SERIES_KEPT_MS;
    const byUpload = ['upload_id'] as const;
    const byReason = ['upload_id', 'reason'] as const;
    this.filesUploaded = new Counter({
      name: 's3uploader_files_uploaded_total',
      help: 'Files uploaded: S3 stored them and their task completed (files whose content was unchanged are skipped, not uploaded).',
      labelNames: byUpload,
      registers,
    });
    this.bytesUploaded = new Counter({
      name: 's3uploader_uploaded_bytes_total',
      help: 'Sizes of the files uploaded, in bytes: what S3 now holds for them (resumed or copied parts included).',
      labelNames: byUpload,
      registers,
    });
    this.filesFailed = new Counter({
      name: 's3uploader_files_failed_total',
      help: 'Uploads of files that failed (the task is failed, to be requeued unless no retry can succeed).',
      labelNames: byUpload,
      registers,
    });
    this.bytesFailed = new Counter({
      name: 's3uploader_failed_bytes_total',
      help: 'Sizes of the files whose upload failed, in bytes.',
      labelNames: byUpload,
      registers,
    });
    this.filesRetried = new Counter({
      name: 's3uploader_files_retried_total',
      help: 'Files started again after an attempt at the same version did not complete (a failure, a crash or a stop).',
      labelNames: byUpload,
      registers,
    });
    this.bytesRetried = new Counter({
      name: 's3uploader_retried_bytes_total',
      help: 'Sizes of the files started again, in bytes.',
      labelNames: byUpload,
      registers,
    });
    this.filesSkipped = new Counter({
      name: 's3uploader_files_skipped_total',
      help: 'Files the service decided not to send; reason "unchanged": only their metadata changed since their upload and their content hashed the same.',
      labelNames: byReason,
      registers,
    });
    this.bytesSkipped = new Counter({
      name: 's3uploader_skipped_bytes_total',
      help: 'Sizes of the files not sent, in bytes, by reason.',
      labelNames: byReason,
      registers,
    });
    this.filesNotUtf8 = new Gauge({
      name: 's3uploader_files_not_utf8',
      help: 'Matching files the last complete scan skipped because their name, or a folder name above them, is not valid UTF-8.',
      labelNames: byUpload,
      registers,
    });
  }

  /** The bus listener: O(1) per event, and nothing at all for file.progress. */
  readonly listen = (event: ServiceEvent): void => {
    switch (event.type) {
      case 'file.completed': {
        const series = this.of(event.uploadId);
        if (event.method === 'unchanged') {
          series.filesSkipped.inc();
          series.bytesSkipped.inc(event.size);
        } else {
          series.filesUploaded.inc();
          series.bytesUploaded.inc(event.size);
        }
        return;
      }
      case 'file.failed': {
        const series = this.of(event.uploadId);
        series.filesFailed.inc();
        series.bytesFailed.inc(event.size);
        return;
      }
      case 'file.started':
        if (event.attempt > 1) {
          const series = this.of(event.uploadId);
          series.filesRetried.inc();
          series.bytesRetried.inc(event.size);
        }
        return;
      case 'upload.scanned':
        if (event.error === null) this.of(event.uploadId).filesNotUtf8.set(event.filesNotUtf8);
        return;
      case 'upload.created':
        this.of(event.uploadId);
        return;
      case 'upload.cancelled':
        this.forgetLater(event.uploadId);
        return;
      default:
        return;
    }
  };

  /** Stops the timers that would forget cancelled uploads. */
  stop(): void {
    for (const timer of this.forgetTimers.values()) clearTimeout(timer);
    this.forgetTimers.clear();
  }

  /** The upload's series, made (at zero, so that a rate over them is defined) at its first event. */
  private of(uploadId: string): UploadSeries {
    let series = this.series.get(uploadId);
    if (series === undefined) {
      series = {
        filesUploaded: this.filesUploaded.labels(uploadId),
        bytesUploaded: this.bytesUploaded.labels(uploadId),
        filesFailed: this.filesFailed.labels(uploadId),
        bytesFailed: this.bytesFailed.labels(uploadId),
        filesRetried: this.filesRetried.labels(uploadId),
        bytesRetried: this.bytesRetried.labels(uploadId),
        filesSkipped: this.filesSkipped.labels(uploadId, UNCHANGED),
        bytesSkipped: this.bytesSkipped.labels(uploadId, UNCHANGED),
        filesNotUtf8: this.filesNotUtf8.labels(uploadId),
      };
      // prom-client shows a child only once it has a value.
      for (const counter of [
        series.filesUploaded,
        series.bytesUploaded,
        series.filesFailed,
        series.bytesFailed,
        series.filesRetried,
        series.bytesRetried,
        series.filesSkipped,
        series.bytesSkipped,
      ]) {
        counter.inc(0);
      }
      series.filesNotUtf8.set(0);
      this.series.set(uploadId, series);
    }
    return series;
  }

  private forgetLater(uploadId: string): void {
    if (this.forgetTimers.has(uploadId)) return;
    const timer = setTimeout(() => {
      this.forgetTimers.delete(uploadId);
      this.forget(uploadId);
    }, this.cancelledKeptMs);
    timer.unref();
    this.forgetTimers.set(uploadId, timer);
  }

  private forget(uploadId: string): void {
    if (!this.series.delete(uploadId)) return;
    for (const counter of [
      this.filesUploaded,
      this.bytesUploaded,
      this.filesFailed,
      this.bytesFailed,
      this.filesRetried,
      this.bytesRetried,
    ]) {
      counter.remove(uploadId);
    }
    this.filesSkipped.remove(uploadId, UNCHANGED);
    this.bytesSkipped.remove(uploadId, UNCHANGED);
    this.filesNotUtf8.remove(uploadId);
  }
}
