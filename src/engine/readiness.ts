import type { EpochMs, FileReadiness, ObservedFile } from '../domain/model.js';

/** When files may be uploaded. */
export interface Readiness {
  /** A file is finished once nothing has written to it for this long (SETTLE_SECONDS). */
  settleMs: number;
  /**
   * Files of at least `fromBytes` and below `belowBytes` are uploaded while they are still being
   * written (STREAM_GROWING_FILES); undefined when that is off.
   */
  stream: { fromBytes: number; belowBytes: number } | undefined;
}

type Version = Pick<ObservedFile, 'size' | 'mtimeMs'>;

/** Still being written: its modification time is less than the settle time old. */
export function isGrowing(file: Version, now: EpochMs, readiness: Readiness): boolean {
  return now < file.mtimeMs + readiness.settleMs;
}

/** Large enough, and still being written: uploaded as it grows rather than once it settles. */
export function streamsNow(file: Version, now: EpochMs, readiness: Readiness): boolean {
  const { stream } = readiness;
  return (
    stream !== undefined &&
    file.size >= stream.fromBytes &&
    file.size < stream.belowBytes &&
    isGrowing(file, now, readiness)
  );
}

/**
 * When a file version may be uploaded: at once when it is streamed as it grows; otherwise once its
 * modification time is SETTLE_SECONDS in the past, i.e. nothing has written to it for that long. A
 * file that has long been quiet is ready at once; a modification time in the future (clock skew, a
 * network share) is capped at now + settle so that the file is not held back for ever. The runner
 * stats the file again before and after reading it, so a write that lands after this decision is
 * still caught.
 */
export function readyAtFor(file: Version, now: EpochMs, readiness: Readiness): EpochMs {
  if (streamsNow(file, now, readiness)) return Math.ceil(now);
  return settledAtFor(file, now, readiness);
}

/** When the file will have settled, in whole milliseconds rounded up: never earlier than the settle time. */
export function settledAtFor(file: Version, now: EpochMs, readiness: Readiness): EpochMs {
  return Math.ceil(Math.min(file.mtimeMs + readiness.settleMs, now + readiness.settleMs));
}

/** Both times the store needs: readyAt, and settledAt for a task that may not be streamed. */
export function readinessOf(file: Version, now: EpochMs, readiness: Readiness): FileReadiness {
  return { readyAt: readyAtFor(file, now, readiness), settledAt: settledAtFor(file, now, readiness) };
}
