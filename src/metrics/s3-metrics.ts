// Requests to S3 by operation and outcome, their latency, the requests in flight (the parts in
// flight are those of UploadPart), the bytes S3 took and the retries: what transfer/ tells its
// S3RequestObserver. The series of an operation are made at its first request and kept.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { S3RequestObserver } from '../transfer/s3-observer.js';

/**
 * Seconds, for bodies from 16 KiB on a LAN (a few ms) to 100 MiB over a WAN (tens of seconds) or
 * under a bandwidth limit (minutes); the small operations fall in the first buckets.
 */
export const S3_LATENCY_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
] as const;

interface OperationSeries {
  inFlight: Gauge.Internal<string>;
  latency: Histogram.Internal<string>;
  sentBytes: Counter.Internal;
  retries: Counter.Internal;
  /** By outcome. */
  requests: Map<string, Counter.Internal>;
}

export class S3Metrics implements S3RequestObserver {
  private readonly operations = new Map<string, OperationSeries>();
  private readonly requests: Counter<'operation' | 'outcome'>;
  private readonly inFlight: Gauge<'operation'>;
  private readonly latency: Histogram<'operation'>;
  private readonly sentBytes: Counter<'operation'>;
  private readonly retries: Counter<'operation'>;

  constructor(registry: Registry) {
    const registers = [registry];
    const byOperation = ['operation'] as const;
    this.requests = new Counter({
      name: 's3uploader_s3_requests_total',
      help: 'Requests sent to S3, by operation and outcome: success, S3 error code (http_<status> when S3 named none), timeout, network_error or aborted.',
      labelNames: ['operation', 'outcome'] as const,
      registers,
    });
    this.inFlight = new Gauge({
      name: 's3uploader_s3_requests_in_flight',
      help: 'Requests sent to S3 and not yet answered, by operation (the parts in flight: operation="UploadPart").',
      labelNames: byOperation,
      registers,
    });
    this.latency = new Histogram({
      name: 's3uploader_s3_request_duration_seconds',
      help: 'Time from sending a request to S3 to having its whole answer, by operation, whatever the outcome.',
      labelNames: byOperation,
      buckets: [...S3_LATENCY_BUCKETS],
      registers,
    });
    this.sentBytes = new Counter({
      name: 's3uploader_s3_sent_bytes_total',
      help: 'Bytes of request bodies S3 accepted (successful requests), by operation: the wire throughput.',
      labelNames: byOperation,
      registers,
    });
    this.retries = new Counter({
      name: 's3uploader_s3_retries_total',
      help: 'Failed S3 requests tried again by the retry policy (RETRY_MAX_ATTEMPTS), by operation.',
      labelNames: byOperation,
      registers,
    });
  }

  requestStarted(operation: string): void {
    this.of(operation).inFlight.inc();
  }

  requestEnded(operation: string, outcome: string, seconds: number, bodyBytes: number): void {
    const series = this.of(operation);
    series.inFlight.dec();
    series.latency.observe(seconds);
    let requests = series.requests.get(outcome);
    if (requests === undefined) {
      requests = this.requests.labels(operation, outcome);
      series.requests.set(outcome, requests);
    }
    requests.inc();
    if (outcome === 'success' && bodyBytes > 0) series.sentBytes.inc(bodyBytes);
  }

  requestRetried(operation: string): void {
    this.of(operation).retries.inc();
  }

  private of(operation: string): OperationSeries {
    let series = this.operations.get(operation);
    if (series === undefined) {
      series = {
        inFlight: this.inFlight.labels(operation),
        latency: this.latency.labels(operation),
        sentBytes: this.sentBytes.labels(operation),
        retries: this.retries.labels(operation),
        requests: new Map(),
      };
      series.inFlight.set(0);
      series.sentBytes.inc(0);
      series.retries.inc(0);
      this.operations.set(operation, series);
    }
    return series;
  }
}
