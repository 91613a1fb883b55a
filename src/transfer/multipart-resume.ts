// Resume: what S3 holds of a saved multipart upload (its list of parts), told apart by what the saved
// state confirms. S3's list is the truth; a part only S3 knows (stored just before a crash, before
// its record) is kept only once the local bytes hash to its ETag, which the part source checks.
import type { UploadedPart } from '../domain/model.js';
import { normalizeEtag } from './checksums.js';
import type { ListedPart } from './multipart-api.js';
import type { StoredPart } from './multipart-upload.js';
import { partLength, type PartPlan } from './part-plan.js';

/** A part S3 holds; `saved`: the saved state names it with the same size and ETag. */
export interface HeldPart {
  part: StoredPart;
  saved: boolean;
}

export class HeldParts {
  private readonly listed: Map<number, ListedPart>;
  private readonly saved: Map<number, UploadedPart>;

  constructor(saved: readonly UploadedPart[], listed: readonly ListedPart[]) {
    this.saved = new Map(saved.map((part) => [part.partNumber, part]));
    this.listed = new Map(listed.map((part) => [part.partNumber, part]));
  }

  /** S3's part `partNumber` when it holds exactly `size` bytes. */
  find(partNumber: number, size: number): HeldPart | undefined {
    const listed = this.listed.get(partNumber);
    if (listed?.size !== size) return undefined;
    const part: StoredPart = { partNumber, etag: listed.etag, size };
    if (listed.checksum !== undefined) part.checksum = listed.checksum;
    const known = this.saved.get(partNumber);
    return { part, saved: known?.size === size && normalizeEtag(known.etag) === listed.etag };
  }
}

/**
 * Sorts the parts S3 lists for a file cut by `plan` into those both sides agree on (trusted) and
 * those only S3 knows, or knows differently (unconfirmed, by part number: their ETags).
 */
export function matchListedParts(
  saved: readonly UploadedPart[],
  listed: readonly ListedPart[],
  plan: PartPlan,
): { trusted: StoredPart[]; unconfirmed: Map<number, string> } {
  const held = new HeldParts(saved, listed);
  const trusted: StoredPart[] = [];
  const unconfirmed = new Map<number, string>();
  for (const { partNumber } of listed) {
    if (partNumber < 1 || partNumber > plan.partCount) continue;
    const found = held.find(partNumber, partLength(plan, partNumber));
    if (found?.saved) trusted.push(found.part);
    else if (found) unconfirmed.set(partNumber, found.part.etag);
  }
  return { trusted, unconfirmed };
}
