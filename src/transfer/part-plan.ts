// S3's limits on multipart uploads, and how a file is cut into parts: every part `partSize` long
// except the last, which holds the rest.

import type { TransferSettings } from '../config.js';
const MiB = 1024 * 1024;
/** S3 stores objects of at most 5 TiB, however they are uploaded. */
export const MAX_OBJECT_SIZE = 5 * 1024 ** 4;
/** Every part but the last is at least 5 MiB, and none is over 5 GiB. */
export const MIN_PART_SIZE = 5 * MiB;
export const MAX_PART_SIZE = 5 * 1024 * MiB;
export const MAX_PARTS = 10_000;

/** The part size for a file: the configured one, raised so that the file needs at most 10,000 parts. */
export function partSizeFor(fileSize: number, configured: number): number {
  const needed = Math.ceil(fileSize / MAX_PARTS);
  if (needed <= configured) return configured;
  return Math.ceil(needed / MiB) * MiB;
}

export interface PartPlan {
  partSize: number;
  partCount: number;
  fileSize: number;
}

export function planParts(fileSize: number, partSize: number): PartPlan {
  if (partSize <= 0) throw new RangeError(`part size must be positive, got ${partSize}`);
  return { partSize, fileSize, partCount: Math.max(1, Math.ceil(fileSize / partSize)) };
}

/** Byte offset of part `partNumber` (from 1). */
export function partOffset(plan: PartPlan, partNumber: number): number {
  return (partNumber - 1) * plan.partSize;
}

export function partLength(plan: PartPlan, partNumber: number): number {
  return Math.min(plan.partSize, plan.fileSize - partOffset(plan, partNumber));
}

export function* partNumbers(plan: PartPlan): Generator<number> {
  for (let partNumber = 1; partNumber <= plan.partCount; partNumber++) yield partNumber;
}

/**
 * The most memory for file data that the upload of a file of `size` bytes leases at once: the
 * file itself below the multipart threshold, else a part per part in flight (the parts of a
 * settled file: a file streamed as it grows may hold more). What the dispatcher weighs claims by,
 * so that many small files run at once and few large ones.
 */
export function bufferBytesOf(
  size: number,
  settings: Pick<TransferSettings, 'multipartThresholdBytes' | 'partSizeBytes' | 'maxConcurrentParts'>,
): number {
  if (size < settings.multipartThresholdBytes) return Math.max(size, 1);
  return Math.min(size, partSizeFor(size, settings.partSizeBytes) * settings.maxConcurrentParts);
}
