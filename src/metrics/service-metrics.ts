// The service's Prometheus metrics: one registry holding the process metrics and every collector,
// fed by the events the engine publishes and by the observers transfer/, store/ and watch/ define.
// main.ts makes one when METRICS_ENABLED is true (the default) and wires it; otherwise none of this
// runs and nothing is measured.
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { EventSource } from '../domain/events.js';
import type { Logger } from '../logger.js';
import { S3Metrics } from './s3-metrics.js';
import { registerStateGauges, type StateGaugesOptions } from './state-gauges.js';
import { StoreMetrics } from './store-metrics.js';
import { UploadMetrics } from './upload-metrics.js';
import { WatchMetrics } from './watch-metrics.js';

export interface ServiceMetricsOptions {
  version: string;
  logger: Logger;
  /** prom-client's process and Node.js metrics (default true; tests of the collectors leave them out). */
  processMetrics?: boolean;
  /** How long a cancelled upload's series are kept (see CANCELLED_SERIES_KEPT_MS). */
  cancelledKeptMs?: number;
}

/** How often the event loop's delay is sampled (nodejs_eventloop_lag_p50_seconds and the others). */
const EVENT_LOOP_SAMPLE_MS = 100;

export class ServiceMetrics {
  readonly registry = new Registry();
  /** Give it to the S3 client (createS3Client's observer). */
  readonly s3: S3Metrics;
  /** Give it to timedStore. */
  readonly store: StoreMetrics;
  /** Give it to the engine (watchObserver). */
  readonly watch: WatchMetrics;
  private readonly uploads: UploadMetrics;
  private readonly logger: Logger;
  private unsubscribe: (() => void) | undefined;

  constructor(options: ServiceMetricsOptions) {
    const { registry } = this;
    this.logger = options.logger;
    // Unprefixed (process_cpu_seconds_total, nodejs_heap_size_used_bytes...), as dashboards expect.
    // The event loop's delay is sampled every 100 ms, not prom-client's 10: a timer a hundred times
    // a second cost an idle service about 0.5% of a core, more than everything else it does then.
    if (options.processMetrics ?? true)
      collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
    new Gauge({
      name: 's3uploader_build_info',
      help: 'Always 1; the version of the service that runs, as a label.',
      labelNames: ['version'] as const,
      registers: [registry],
    })
      .labels(options.version)
      .set(1);
    this.s3 = new S3Metrics(registry);
    this.store = new StoreMetrics(registry);
    this.watch = new WatchMetrics(registry);
    this.uploads = new UploadMetrics({ registry, cancelledKeptMs: options.cancelledKeptMs });
  }

  /** Counts what `events` tell from now on (the engine's bus). */
  listen(events: EventSource): void {
    this.unsubscribe?.();
    const { uploads, watch } = this;
    this.unsubscribe = events.subscribe((event) => {
      uploads.listen(event);
      watch.listen(event);
    });
  }

  /** The gauges read at each scrape: the store's queue and the buffer pool. */
  readState(state: Omit<StateGaugesOptions, 'registry' | 'logger'>): void {
    registerStateGauges({ ...state, registry: this.registry, logger: this.logger });
  }

  /** The content type of what scrape() returns (Prometheus's text format, version 0.0.4). */
  get contentType(): string {
    return this.registry.contentType;
  }

  scrape(): Promise<string> {
    return this.registry.metrics();
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.uploads.stop();
  }
}
