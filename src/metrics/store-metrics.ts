// How long the database takes, by Store operation: what timedStore tells its StoreTimer.
import { Histogram, type Registry } from 'prom-client';
import type { StoreOperation, StoreTimer } from '../store/timed-store.js';

/** Seconds: SQLite answers most calls in well under a millisecond; a full disk's fsync takes far longer. */
export const STORE_LATENCY_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
] as const;

export class StoreMetrics implements StoreTimer {
  private readonly children = new Map<StoreOperation, Histogram.Internal<'operation'>>();
  private readonly latency: Histogram<'operation'>;

  constructor(registry: Registry) {
    this.latency = new Histogram({
      name: 's3uploader_store_operation_duration_seconds',
      help: 'Time each call to the database took, failed ones included, by operation (the Store method).',
      labelNames: ['operation'] as const,
      buckets: [...STORE_LATENCY_BUCKETS],
      registers: [registry],
    });
  }

  timed(operation: StoreOperation, seconds: number): void {
    let child = this.children.get(operation);
    if (child === undefined) {
      child = this.latency.labels(operation);
      this.children.set(operation, child);
    }
    child.observe(seconds);
  }
}
