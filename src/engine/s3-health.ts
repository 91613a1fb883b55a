// Whether S3 answers at all. A file whose upload failed the way an outage fails (network errors,
// 5xx, throttling, timeouts) asks here, and one probe tells "S3 is down" from "this file failed".
// While S3 is down no upload starts, the probe goes on with backoff, and when S3 answers again the
// dispatcher is woken: the files the outage interrupted resume by themselves.
import type { EpochMs } from '../domain/model.js';
import type { Logger } from '../logger.js';
import type { S3Probe } from '../transfer/s3-probe.js';

/** The first probe after an outage is found, then twice as long each time, up to the maximum. */
export const FIRST_PROBE_DELAY_MS = 2_000;
export const MAX_PROBE_DELAY_MS = 60_000;

export type S3HealthStatus = 'reachable' | 'unreachable';

export interface S3HealthReport {
  status: S3HealthStatus;
  /** When the status last changed (the service's start, at first). */
  since: EpochMs;
  /** What the last failed probe found, while unreachable. */
  lastError: string | null;
}

export interface S3HealthOptions {
  probe: S3Probe;
  logger: Logger;
  /** S3 answers again: work may start. */
  onReachable: () => void;
  now?: () => number;
  firstProbeDelayMs?: number;
  maxProbeDelayMs?: number;
}

export class S3Health {
  private status: S3HealthStatus = 'reachable';
  private since: EpochMs;
  private lastError: string | null = null;
  /** The bucket the outage was seen on, probed until it answers. */
  private bucket = '';
  private delayMs: number;
  /** The probe that decides whether a failure is an outage, shared by the failures that wait on it. */
  private confirming: Promise<boolean> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly now: () => number;

  constructor(private readonly options: S3HealthOptions) {
    this.now = options.now ?? Date.now;
    this.since = this.now();
    this.delayMs = this.firstDelayMs;
  }

  get reachable(): boolean {
    return this.status === 'reachable';
  }

  report(): S3HealthReport {
    return { status: this.status, since: this.since, lastError: this.lastError };
  }

  /**
   * A file failed as if S3 were down. Resolves true when S3 is known to be down, or a probe of
   * `bucket` finds it so (the file then waits for S3, not counted as failed); false when S3
   * answers (the failure is the file's).
   */
  confirmOutage(bucket: string): Promise<boolean> {
    if (this.status === 'unreachable') return Promise.resolve(true);
    this.confirming ??= this.probeOnce(bucket).finally(() => (this.confirming = undefined));
    return this.confirming;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private get firstDelayMs(): number {
    return this.options.firstProbeDelayMs ?? FIRST_PROBE_DELAY_MS;
  }

  private async probeOnce(bucket: string): Promise<boolean> {
    const result = await this.options.probe(bucket);
    if (result.reachable) return false;
    this.goDown(bucket, result.error);
    return true;
  }

  private goDown(bucket: string, error: string): void {
    if (this.status === 'unreachable' || this.stopped) return;
    this.status = 'unreachable';
    this.since = this.now();
    this.lastError = error;
    this.bucket = bucket;
    this.delayMs = this.firstDelayMs;
    this.options.logger.error(
      { bucket, error },
      'S3 cannot be reached: no upload starts until it answers; the files it interrupted wait and resume by themselves',
    );
    this.probeLater();
  }

  private probeLater(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.probeAgain(), this.delayMs);
    this.delayMs = Math.min(this.delayMs * 2, this.options.maxProbeDelayMs ?? MAX_PROBE_DELAY_MS);
  }

  private async probeAgain(): Promise<void> {
    const result = await this.options.probe(this.bucket);
    if (this.stopped) return;
    if (!result.reachable) {
      this.lastError = result.error;
      this.options.logger.debug({ bucket: this.bucket, error: result.error }, 'S3 still cannot be reached');
      this.probeLater();
      return;
    }
    const downSeconds = Math.round((this.now() - this.since) / 1000);
    this.status = 'reachable';
    this.since = this.now();
    this.lastError = null;
    this.options.logger.info({ bucket: this.bucket, downSeconds }, 'S3 answers again: uploads resume');
    this.options.onReachable();
  }
}
