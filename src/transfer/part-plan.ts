// How a file is cut into parts: every part `partSize` long except the last, which holds the rest.

/** S3 stores objects of at most 5 TiB, however they are uploaded. */
export const MAX_OBJECT_SIZE = 5 * 1024 ** 4;

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
