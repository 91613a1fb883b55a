// Capped exponential backoff with full jitter ("delay = random(0, min(cap, base × 2^n))"), so that
// many uploads failing together do not come back together.
import { setTimeout as sleep } from 'node:timers/promises';
import { abortErrorFrom, classifyS3Error } from './errors.js';

/** No wait between two attempts exceeds this, however many attempts came before. */
export const MAX_RETRY_DELAY_MS = 30_000;

export interface RetryPolicy {
  /** Attempts in all, the first one included; 1 means no retry. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs?: number;
}

export interface RetryNotice {
  /** The attempt that just failed, from 1. */
  attempt: number;
  delayMs: number;
  error: unknown;
}

/** The wait after failed attempt number `attempt` (from 1); `random` returns [0, 1). */
export function backoffDelayMs(
  attempt: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): number {
  const cap = policy.maxDelayMs ?? MAX_RETRY_DELAY_MS;
  const ceiling = Math.min(cap, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.floor(random() * ceiling);
}

/**
 * Runs `operation` until it succeeds, fails with an error that is not transient, or uses
 * `policy.maxAttempts`. Stops at once when `signal` aborts, rejecting with an AbortError.
 */
export async function withRetry<T>(
  operation: (attempt: number) => Promise<T>,
  policy: RetryPolicy,
  signal: AbortSignal,
  onRetry?: (notice: RetryNotice) => void,
  isTransient: (error: unknown) => boolean = (error) => classifyS3Error(error) === 'transient',
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    if (signal.aborted) throw abortErrorFrom(signal);
    try {
      return await operation(attempt);
    } catch (error) {
      // An aborted request may surface as a reset socket; the abort is what happened.
      if (signal.aborted) throw abortErrorFrom(signal);
      if (attempt >= policy.maxAttempts || !isTransient(error)) throw error;
      const delayMs = backoffDelayMs(attempt, policy);
      onRetry?.({ attempt, delayMs, error });
      try {
        await sleep(delayMs, undefined, { signal });
      } catch {
        throw abortErrorFrom(signal);
      }
    }
  }
}
