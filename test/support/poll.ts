// Polling with a deadline: tests wait for a condition, never for a fixed time.
import { setTimeout as sleep } from 'node:timers/promises';
import { inspect } from 'node:util';

export interface WaitForOptions {
  /** default 10 s */
  timeoutMs?: number;
  /** pause between probes; default 25 ms */
  intervalMs?: number;
  /** what was awaited, for the error when the deadline passes */
  message: string;
}

type NotYet = undefined | null | false;

/**
 * Calls `probe` until it returns a truthy value, and returns that value. A probe that throws counts
 * as "not yet". When the deadline passes, throws an error with `message` and the last value or
 * error seen. A probe still running at the deadline is not awaited further.
 */
export async function waitFor<T>(
  probe: () => Promise<T | NotYet> | T | NotYet,
  options: WaitForOptions,
): Promise<T> {
  const { timeoutMs = 10_000, intervalMs = 25, message } = options;
  const deadline = Date.now() + timeoutMs;
  let lastSeen: { value: unknown } | { error: unknown } | undefined;
  for (;;) {
    const remainingMs = deadline - Date.now();
    if (remainingMs <= 0) break;
    try {
      const outcome = await withinMs(Promise.resolve().then(probe), remainingMs);
      if (outcome.timedOut) {
        lastSeen = { error: new Error(`the probe was still running at the deadline`) };
        break;
      }
      if (outcome.value) return outcome.value;
      lastSeen = { value: outcome.value };
    } catch (error) {
      lastSeen = { error };
    }
    await sleep(Math.max(0, Math.min(intervalMs, deadline - Date.now())));
  }
  const last =
    lastSeen === undefined
      ? 'the probe never ran'
      : 'error' in lastSeen
        ? `last error: ${lastSeen.error instanceof Error ? lastSeen.error.message : inspect(lastSeen.error)}`
        : `last value: ${inspect(lastSeen.value, { depth: 4, breakLength: Infinity })}`;
  throw new Error(`${message}: not reached within ${timeoutMs} ms (${last})`, {
    cause: lastSeen !== undefined && 'error' in lastSeen ? lastSeen.error : undefined,
  });
}

async function withinMs<T>(
  promise: Promise<T>,
  ms: number,
): Promise<{ timedOut: false; value: T } | { timedOut: true }> {
  const controller = new AbortController();
  try {
    return await Promise.race([
      promise.then((value) => ({ timedOut: false as const, value })),
      sleep(ms, { timedOut: true as const }, { signal: controller.signal }),
    ]);
  } finally {
    controller.abort(); // lets the process exit without waiting for the timer
  }
}
