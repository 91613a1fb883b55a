// Where a multipart upload starts: a new upload, or the saved one when it belongs to this file
// version. S3's list of parts is the truth; the saved list says which of them were checked.
import { sameVersion } from '../domain/file-version.js';
import type { UploadedPart } from '../domain/model.js';
import { multipartEtag, normalizeEtag } from './checksums.js';
import {
  abortMultipartUpload,
  createMultipartUpload,
  findCompletedObject,
  listUploadedParts,
  type CompletedObject,
  type ListedPart,
  type PartReceipt,
} from './multipart-api.js';
import { partLength, planParts, type PartPlan } from './part-plan.js';
import type { TransferContext } from './s3-request.js';
import type { ResumeState, FileTransfer, UploadProgressListener } from './types.js';

/** A part S3 holds, with what Complete must name it by. */
export type StoredPart = UploadedPart & PartReceipt;

export interface MultipartStart {
  s3UploadId: string;
  /** Parts S3 holds exactly as they were saved: read again only to hash the content, never sent. */
  trusted: StoredPart[];
  /**
   * ETags of parts S3 holds that the saved state does not confirm (e.g. the process stopped after
   * S3 stored a part, before it was saved), by part number: reused if the local bytes hash to them.
   */
  unconfirmed: Map<number, string>;
  /** The saved upload was already completed into the object at the key: nothing is left to send. */
  completed?: CompletedObject;
}

/** A saved upload can go on only for the same file version cut into the same part size. */
export function resumeFits(resume: ResumeState, transfer: FileTransfer, plan: PartPlan): boolean {
  return sameVersion(resume, transfer) && resume.partSize === plan.partSize;
}

/** Sorts the parts S3 lists into those both sides agree on, and those only S3 knows. */
export function matchListedParts(
  saved: readonly UploadedPart[],
  listed: readonly ListedPart[],
  plan: PartPlan,
): Pick<MultipartStart, 'trusted' | 'unconfirmed'> {
  const savedByNumber = new Map(saved.map((part) => [part.partNumber, part]));
  const trusted: StoredPart[] = [];
  const unconfirmed = new Map<number, string>();
  for (const part of listed) {
    if (part.partNumber < 1 || part.partNumber > plan.partCount) continue;
    const size = partLength(plan, part.partNumber);
    if (part.size !== size) continue;
    const known = savedByNumber.get(part.partNumber);
    if (known && known.size === size && normalizeEtag(known.etag) === part.etag) {
      const stored: StoredPart = { partNumber: part.partNumber, etag: part.etag, size };
      if (part.checksum !== undefined) stored.checksum = part.checksum;
      trusted.push(stored);
    } else {
      unconfirmed.set(part.partNumber, part.etag);
    }
  }
  return { trusted, unconfirmed };
}

async function createUpload(
  context: TransferContext,
  transfer: FileTransfer,
  plan: PartPlan,
  progress: UploadProgressListener,
): Promise<MultipartStart> {
  const target = { bucket: transfer.bucket, key: transfer.key };
  const s3UploadId = await createMultipartUpload(context, target, transfer.signal);
  try {
    const saved = { s3UploadId, partSize: plan.partSize, streamed: false };
    await progress.multipartCreated({ ...saved, copiedBytes: 0, copySourceEtag: null });
  } catch (error) {
    // Not saved means nobody could resume or abort it later: abort it now.
    await abortMultipartUpload(context, { ...target, s3UploadId }, new AbortController().signal).catch(
      (abortError: unknown) =>
        context.logger.warn(
          { ...target, s3UploadId, err: abortError },
          'could not abort an unsaved multipart upload',
        ),
    );
    throw error;
  }
  return { s3UploadId, trusted: [], unconfirmed: new Map() };
}

export async function startMultipart(
  context: TransferContext,
  transfer: FileTransfer,
  resume: ResumeState | undefined,
  plan: PartPlan,
  progress: UploadProgressListener,
): Promise<MultipartStart> {
  if (!resume) return createUpload(context, transfer, plan, progress);
  const target = { bucket: transfer.bucket, key: transfer.key, s3UploadId: resume.s3UploadId };
  if (!resumeFits(resume, transfer, plan)) {
    // Same file version, another part size (PART_SIZE_BYTES changed since): the saved upload may
    // have completed before the crash all the same.
    if (sameVersion(resume, transfer)) {
      const completed = await completedBefore(
        context,
        transfer,
        resume,
        planParts(transfer.size, resume.partSize),
      );
      if (completed)
        return { s3UploadId: resume.s3UploadId, trusted: resume.parts, unconfirmed: new Map(), completed };
    }
    context.logger.info(
      target,
      'the saved multipart upload does not fit this version of the file or part size; aborting it',
    );
    await abortMultipartUpload(context, target, transfer.signal);
    return createUpload(context, transfer, plan, progress);
  }
  const listed = await listUploadedParts(context, target, transfer.signal);
  if (!listed) {
    const completed = await completedBefore(context, transfer, resume, plan);
    if (completed) {
      context.logger.info(target, 'the saved multipart upload was already completed; nothing to send');
      return { s3UploadId: resume.s3UploadId, trusted: resume.parts, unconfirmed: new Map(), completed };
    }
    context.logger.info(target, 'S3 no longer knows the saved multipart upload; starting a new one');
    return createUpload(context, transfer, plan, progress);
  }
  return { s3UploadId: resume.s3UploadId, ...matchListedParts(resume.parts, listed, plan) };
}

/**
 * When every part was saved, an upload S3 no longer knows may be one whose Complete succeeded just
 * before a crash: the object then carries the ETag those parts make, and nothing needs sending.
 */
async function completedBefore(
  context: TransferContext,
  transfer: FileTransfer,
  resume: ResumeState,
  plan: PartPlan,
): Promise<CompletedObject | undefined> {
  const parts = [...resume.parts].sort((a, b) => a.partNumber - b.partNumber);
  const complete =
    parts.length === plan.partCount &&
    parts.every((part, index) => part.partNumber === index + 1 && part.size === partLength(plan, index + 1));
  if (!complete) return undefined;
  const expectedEtag = multipartEtag(parts.map((part) => normalizeEtag(part.etag)));
  return findCompletedObject(
    context,
    { bucket: transfer.bucket, key: transfer.key },
    expectedEtag,
    transfer.signal,
  );
}
