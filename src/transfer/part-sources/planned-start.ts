// Where the multipart upload of a settled file starts: a new upload, the saved one when it belongs
// to this file version and part size (its parts sorted by what S3 lists), or nothing at all when
// the saved upload was completed before a crash and only its record is missing.
import { sameVersion } from '../../domain/file-version.js';
import { multipartEtag, normalizeEtag } from '../checksums.js';
import { findCompletedObject, type CompletedObject } from '../multipart-api.js';
import { matchListedParts } from '../multipart-resume.js';
import { MultipartUpload } from '../multipart-upload.js';
import { partLength, planParts, type PartPlan } from '../part-plan.js';
import type { TransferContext } from '../s3-request.js';
import type { FileTransfer, ResumeState, UploadProgressListener } from '../types.js';

export type PlannedStart =
  | {
      kind: 'upload';
      upload: MultipartUpload;
      /**
       * ETags of parts S3 holds that the saved state does not confirm, by part number: reused when
       * the local bytes hash to them, sent again otherwise.
       */
      unconfirmed: Map<number, string>;
    }
  /** The saved upload was already completed into the object at the key: nothing is left to send. */
  | { kind: 'completed'; completed: CompletedObject; partsReused: number };

/** A saved upload can go on only for the same file version cut into the same part size. */
function resumeFits(resume: ResumeState, transfer: FileTransfer, plan: PartPlan): boolean {
  return sameVersion(resume, transfer) && resume.partSize === plan.partSize;
}

export async function startPlanned(
  context: TransferContext,
  transfer: FileTransfer,
  resume: ResumeState | undefined,
  plan: PartPlan,
  progress: UploadProgressListener,
): Promise<PlannedStart> {
  const create = async (): Promise<PlannedStart> => {
    const shape = { partSize: plan.partSize, streamed: false, copiedBytes: 0, copySourceEtag: null };
    const upload = await MultipartUpload.create(context, transfer, progress, shape);
    return { kind: 'upload', upload, unconfirmed: new Map() };
  };
  if (!resume) return create();
  const saved = MultipartUpload.saved(context, transfer, progress, resume.s3UploadId);
  const completedAs = (completed: CompletedObject): PlannedStart => ({
    kind: 'completed',
    completed,
    partsReused: resume.parts.length,
  });
  if (!resumeFits(resume, transfer, plan)) {
    // Same file version, another part size (PART_SIZE_BYTES changed since): the saved upload may
    // have completed before the crash all the same.
    if (sameVersion(resume, transfer)) {
      const savedPlan = planParts(transfer.size, resume.partSize);
      const completed = await completedBefore(context, transfer, resume, savedPlan);
      if (completed) return completedAs(completed);
    }
    context.logger.info(
      saved.target,
      'the saved multipart upload does not fit this version of the file or part size; aborting it',
    );
    await saved.abort();
    return create();
  }
  const listed = await saved.listParts();
  if (!listed) {
    const completed = await completedBefore(context, transfer, resume, plan);
    if (completed) {
      context.logger.info(saved.target, 'the saved multipart upload was already completed; nothing to send');
      return completedAs(completed);
    }
    context.logger.info(saved.target, 'S3 no longer knows the saved multipart upload; starting a new one');
    return create();
  }
  const { trusted, unconfirmed } = matchListedParts(resume.parts, listed, plan);
  for (const part of trusted) await saved.keep(part, 'saved');
  return { kind: 'upload', upload: saved, unconfirmed };
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
  const at = { bucket: transfer.bucket, key: transfer.key };
  return findCompletedObject(context, at, expectedEtag, transfer.signal);
}
