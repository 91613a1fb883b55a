// Watching: the file-system events the watches receive (what watch/ tells its WatchObserver), and
// the scans, from the upload.scanned events the engine publishes.
import { Counter, Histogram, type Registry } from 'prom-client';
import type { ServiceEvent } from '../domain/events.js';
import type { WatchEventKind, WatchObserver } from '../watch/types.js';

/**
 * Seconds: a small folder is scanned in milliseconds; a periodic rescan of a huge tree is paced to
 * 0.5% of a core and may take many minutes.
 */
export const SCAN_DURATION_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600] as const;

export class WatchMetrics implements WatchObserver {
  private readonly events: Counter<'kind'>;
  private readonly eventsByKind: Record<WatchEventKind, Counter.Internal>;
  private readonly scanDuration: Histogram<'kind'>;
  private readonly scanFailures: Counter<'kind'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.events = new Counter({
      name: 's3uploader_watch_events_total',
      help: 'File-system events received from the operating system by the watches of every upload, by kind: rename (a name appeared or went: created, deleted, moved) or change (content or attributes).',
      labelNames: ['kind'] as const,
      registers,
    });
    this.eventsByKind = {
      rename: this.events.labels('rename'),
      change: this.events.labels('change'),
    };
    for (const child of Object.values(this.eventsByKind)) child.inc(0);
    this.scanDuration = new Histogram({
      name: 's3uploader_scan_duration_seconds',
      help: 'Time a scan of an upload folder took, from its start to its end (the rests of a paced rescan included), by kind: initial or rescan. Failed scans are not in it.',
      labelNames: ['kind'] as const,
      buckets: [...SCAN_DURATION_BUCKETS],
      registers,
    });
    this.scanFailures = new Counter({
      name: 's3uploader_scan_failures_total',
      help: 'Scans that failed (the folder is gone or unreadable), by kind.',
      labelNames: ['kind'] as const,
      registers,
    });
  }

  eventsReceived(kind: WatchEventKind, count: number): void {
    this.eventsByKind[kind].inc(count);
  }

  /** The bus listener: scans only. */
  readonly listen = (event: ServiceEvent): void => {
    if (event.type !== 'upload.scanned') return;
    if (event.error === null) this.scanDuration.labels(event.kind).observe(event.durationMs / 1000);
    else this.scanFailures.labels(event.kind).inc();
  };
}
