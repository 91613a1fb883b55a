// What the service holds right now, read when Prometheus scrapes rather than kept up to date: the
// queue by task status (one read of the store's kept counts for every upload at once), the live
// instances and what each uploads (one read of the instances), and the buffer pool's memory.
import { Gauge, type Registry } from 'prom-client';
import type { Logger } from '../logger.js';
import type { QueueCounts, Store } from '../store/store.js';
import type { BufferPool } from '../transfer/buffer-pool.js';
import { TASK_STATUSES } from '../domain/status.js';

export interface StateGaugesOptions {
  registry: Registry;
  store: Pick<Store, 'queueCounts' | 'listInstances'>;
  buffers: Pick<BufferPool, 'leasedBytes' | 'capacityBytes'>;
  logger: Logger;
}

export function registerStateGauges({ registry, store, buffers, logger }: StateGaugesOptions): void {
  const registers = [registry];
  // Both queue gauges are collected in the same scrape: they share one read of the store.
  let reading: Promise<QueueCounts | undefined> | undefined;
  const queueCounts = (): Promise<QueueCounts | undefined> => {
    reading ??= store
      .queueCounts()
      .catch((error: unknown) => {
        logger.warn({ err: error }, 'cannot read the queue for the metrics; the scrape goes on without it');
        return undefined;
      })
      .finally(() => {
        reading = undefined;
      });
    return reading;
  };
  const byStatus = ['status'] as const;
  new Gauge({
    name: 's3uploader_queue_files',
    help: 'Files of the uploads being watched (pending and active), by task status: pending, in_progress, completed, failed.',
    labelNames: byStatus,
    registers,
    async collect() {
      const counts = await queueCounts();
      this.reset();
      if (counts) for (const status of TASK_STATUSES) this.labels(status).set(counts[status].files);
    },
  });
  new Gauge({
    name: 's3uploader_queue_bytes',
    help: 'Sizes of the files of the uploads being watched, in bytes, by task status.',
    labelNames: byStatus,
    registers,
    async collect() {
      const counts = await queueCounts();
      this.reset();
      if (counts) for (const status of TASK_STATUSES) this.labels(status).set(counts[status].bytes);
    },
  });
  // The files in progress by instance: every instance's /metrics shows the whole set (read from the
  // database), so that one scrape says which instance does what.
  const byInstance = ['instance', 'host'] as const;
  new Gauge({
    name: 's3uploader_instance_files_in_progress',
    help: 'Files in progress by live instance of the service sharing this database (one on SQLite), with its host.',
    labelNames: byInstance,
    registers,
    async collect() {
      const instances = await store.listInstances().catch((error: unknown) => {
        logger.warn(
          { err: error },
          'cannot read the instances for the metrics; the scrape goes on without them',
        );
        return undefined;
      });
      this.reset();
      for (const instance of instances ?? []) {
        this.labels(instance.instanceId, instance.host).set(instance.work.files);
      }
    },
  });
  new Gauge({
    name: 's3uploader_buffer_pool_leased_bytes',
    help: 'Memory for file data in flight leased from the buffer pool now (parts and small files being read or sent).',
    registers,
    collect() {
      this.set(buffers.leasedBytes);
    },
  });
  new Gauge({
    name: 's3uploader_buffer_pool_capacity_bytes',
    help: 'The buffer pool size (MAX_BUFFER_BYTES): leases wait while it is full.',
    registers,
    collect() {
      this.set(buffers.capacityBytes);
    },
  });
}
