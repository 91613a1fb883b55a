import type { EpochMs, ObservedFile } from '../domain/model.js';

/**
 * When a file version may be uploaded: once its modification time is SETTLE_SECONDS in the past,
 * i.e. nothing has written to it for that long. A file that has long been quiet is ready at once;
 * a modification time in the future (clock skew, a network share) is capped at now + settle so that
 * the file is not held back for ever. The runner stats the file again before and after reading it,
 * so a write that lands after this decision is still caught.
 */
export function readyAtFor(file: Pick<ObservedFile, 'mtimeMs'>, now: EpochMs, settleMs: number): EpochMs {
  // Whole milliseconds, rounded up: never earlier than the settle time.
  return Math.ceil(Math.min(file.mtimeMs + settleMs, now + settleMs));
}
