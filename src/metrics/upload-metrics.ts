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

/**
 * Why a file was not sent, as the `reason` label says it: 'unchanged', only its metadata changed
 * since its upload; 'already_in_s3', an object was already at its key (if_exists).
 */
const SKIP_REASONS = ['unchanged', 'already_in_s3'] as const;
type SkipReason = (typeof SKIP_REASONS)[number];

/** The counters kept per upload: name and help; the skipped ones also carry a `reason`. */
const COUNTERS = {
  filesUploaded: [
    's3uploader_files_uploaded_total',
    'Files uploaded: S3 stored them and their task completed (files whose content was unchanged are skipped, not uploaded).',
  ],
  bytesUploaded: [
    's3uploader_uploaded_bytes_total',
    'Sizes of the files uploaded, in bytes: what S3 now holds for them (resumed or copied parts included).',
  ],
  filesFailed: [
    's3uploader_files_failed_total',
    'Uploads of files that failed (the task is failed, to be requeued unless no retry can succeed).',
  ],
  bytesFailed: ['s3uploader_failed_bytes_total', 'Sizes of the files whose upload failed, in bytes.'],
  filesRetried: [
    's3uploader_files_retried_total',
    'Files started again after an attempt at the same version did not complete (a failure, a crash or a stop).',
  ],
  bytesRetried: ['s3uploader_retried_bytes_total', 'Sizes of the files started again, in bytes.'],
  filesSkipped: [
    's3uploader_files_skipped_total',
    'Files the service decided not to send; reason "unchanged": only their metadata changed since their upload and their content hashed the same; "already_in_s3": an object was already at their key (if_exists).',
  ],
  bytesSkipped: ['s3uploader_skipped_bytes_total', 'Sizes of the files not sent, in bytes, by reason.'],
} as const;

type CounterName = keyof typeof COUNTERS;
const COUNTER_NAMES = Object.keys(COUNTERS) as CounterName[];
const WITH_REASON: ReadonlySet<CounterName> = new Set(['filesSkipped', 'bytesSkipped']);

type UploadSeries = Record<Exclude<CounterName, 'filesSkipped' | 'bytesSkipped'>, Counter.Internal> & {
  filesSkipped: Record<SkipReason, Counter.Internal>;
  bytesSkipped: Record<SkipReason, Counter.Internal>;
  filesNotUtf8: Gauge.Internal<string>;
};

export interface UploadMetricsOptions {
  registry: Registry;
  /** How long a cancelled upload's series are kept (default CANCELLED_SERIES_KEPT_MS). */
  cancelledKeptMs?: number;
}

export class UploadMetrics {
  private readonly series = new Map<string, UploadSeries>();
  private readonly forgetTimers = new Map<string, NodeJS.Timeout>();
  private readonly cancelledKeptMs: number;
  private readonly counters: Record<CounterName, Counter<'upload_id' | 'reason'>>;
  private readonly filesNotUtf8: Gauge<'upload_id'>;

  constructor(options: UploadMetricsOptions) {
    const registers = [options.registry];
    this.cancelledKeptMs = options.cancelledKeptMs ?? CANCELLED_SERIES_KEPT_MS;
    const counter = (name: CounterName) =>
      new Counter({
        name: COUNTERS[name][0],
        help: COUNTERS[name][1],
        labelNames: WITH_REASON.has(name) ? ['upload_id', 'reason'] : ['upload_id'],
        registers,
      });
    this.counters = Object.fromEntries(COUNTER_NAMES.map((name) => [name, counter(name)])) as Record<
      CounterName,
      Counter<'upload_id' | 'reason'>
    >;
    this.filesNotUtf8 = new Gauge({
      name: 's3uploader_files_not_utf8',
      help: 'Matching files the last complete scan skipped because their name, or a folder name above them, is not valid UTF-8.',
      labelNames: ['upload_id'] as const,
      registers,
    });
  }

  /** The bus listener: O(1) per event, and nothing at all for file.progress. */
  readonly listen = (event: ServiceEvent): void => {
    switch (event.type) {
      case 'file.completed': {
        const series = this.of(event.uploadId);
        if (event.method === 'unchanged' || event.method === 'skipped') {
          const reason = event.method === 'unchanged' ? 'unchanged' : 'already_in_s3';
          series.filesSkipped[reason].inc();
          series.bytesSkipped[reason].inc(event.size);
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
      case 'upload.completed':
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
      const child = (name: CounterName, ...reason: SkipReason[]) => {
        const made = this.counters[name].labels(uploadId, ...reason);
        made.inc(0); // prom-client shows a child only once it has a value
        return made;
      };
      const byReason = (name: CounterName) =>
        Object.fromEntries(SKIP_REASONS.map((reason) => [reason, child(name, reason)])) as Record<
          SkipReason,
          Counter.Internal
        >;
      const filesNotUtf8 = this.filesNotUtf8.labels(uploadId);
      filesNotUtf8.set(0);
      series = {
        filesUploaded: child('filesUploaded'),
        bytesUploaded: child('bytesUploaded'),
        filesFailed: child('filesFailed'),
        bytesFailed: child('bytesFailed'),
        filesRetried: child('filesRetried'),
        bytesRetried: child('bytesRetried'),
        filesSkipped: byReason('filesSkipped'),
        bytesSkipped: byReason('bytesSkipped'),
        filesNotUtf8,
      };
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
    for (const name of COUNTER_NAMES) {
      if (!WITH_REASON.has(name)) this.counters[name].remove(uploadId);
      else for (const reason of SKIP_REASONS) this.counters[name].remove(uploadId, reason);
    }
    this.filesNotUtf8.remove(uploadId);
  }
}
