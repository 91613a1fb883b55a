// Verify: is every completed file of an upload still what was sent? Each completed task's object
// is asked for (HEAD: size and ETag, against what the upload recorded) and its local file is
// lstat'ed (its version against the one uploaded: size, mtime, inode and ctime). A task found wrong is named with the reason and
// sent back to the queue, so that it is uploaded again; one whose file is gone is only named,
// since there is nothing left to upload.
import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { s3Unavailable } from '../domain/errors.js';
import type { EpochMs, FileTask, Upload } from '../domain/model.js';
import type { Store } from '../store/store.js';
import { runBounded } from '../transfer/bounded-pool.js';
import { normalizeEtag } from '../transfer/checksums.js';
import { S3RequestError } from '../transfer/errors.js';
import type { ObjectAuditor } from '../transfer/object-audit.js';
import { errorCode, isVanished } from '../fs-errors.js';

/** Tasks read from the store at a time: memory holds one page, whatever the upload's size. */
const PAGE_SIZE = 500;
/** HEAD requests in flight at once. */
const HEAD_CONCURRENCY = 8;
/** Mismatches listed in the report; all are counted and requeued, but the answer stays small. */
export const MAX_LISTED_MISMATCHES = 1000;

export interface VerifyMismatch {
  relativePath: string;
  objectKey: string;
  /** What was found, in words: one or more sentences joined by '; '. */
  reason: string;
}

export interface VerifyReport {
  /** Completed tasks checked. */
  checked: number;
  /** Tasks found wrong, all of them. */
  mismatched: number;
  /** The first MAX_LISTED_MISMATCHES of them, in task order. */
  mismatches: VerifyMismatch[];
  /** Tasks sent back to pending (none for a cancelled upload or a completed one-shot one). */
  requeued: number;
}

export interface VerifyDeps {
  store: Store;
  auditor: ObjectAuditor;
  now?: () => EpochMs;
}

/** A mismatch, with what the requeue needs. */
interface Finding {
  task: FileTask;
  reasons: string[];
  /** The object is not the last upload: forget it, so that nothing is copied from it. */
  objectWrong: boolean;
  /** The local file is gone, no longer a regular file, or cannot be examined: nothing to upload. */
  noFileToUpload: boolean;
  /** Only the local file's ctime differs from the upload's: hashed before it is sent again. */
  hashFirst: boolean;
}

/**
 * Checks every completed task of `upload`, a page at a time, and requeues each page's mismatches
 * (unless the upload is cancelled or completed) before the next page is read, so that memory holds one page
 * however many files the upload has. Throws the `s3_unavailable` DomainError when S3 cannot answer;
 * the pages checked before stay requeued.
 */
export async function verifyCompletedUploads(deps: VerifyDeps, upload: Upload): Promise<VerifyReport> {
  const report: VerifyReport = { checked: 0, mismatched: 0, mismatches: [], requeued: 0 };
  for await (const { findings, checked } of findMismatches(deps, upload)) {
    report.checked += checked;
    report.mismatched += findings.length;
    for (const finding of findings) {
      if (report.mismatches.length < MAX_LISTED_MISMATCHES) {
        const { relativePath, objectKey } = finding.task;
        report.mismatches.push({ relativePath, objectKey, reason: finding.reasons.join('; ') });
      }
      if (
        (upload.status === 'pending' || upload.status === 'active') &&
        !finding.noFileToUpload &&
        (await requeue(deps, finding))
      ) {
        report.requeued += 1;
      }
    }
  }
  return report;
}

async function requeue(deps: VerifyDeps, finding: Finding): Promise<boolean> {
  const { task, reasons, objectWrong, hashFirst } = finding;
  return deps.store.requeueCompletedTask(
    task.taskId,
    { checkedEtag: task.etag, reason: reasons.join('; '), forgetUpload: objectWrong, hashFirst },
    (deps.now ?? Date.now)(),
  );
}

/** The mismatches of each page of completed tasks, in task order. */
async function* findMismatches(
  deps: VerifyDeps,
  upload: Upload,
): AsyncGenerator<{ findings: Finding[]; checked: number }> {
  let cursor: string | undefined;
  do {
    const page = await deps.store.listTasks(upload.uploadId, {
      status: 'completed',
      limit: PAGE_SIZE,
      ...(cursor !== undefined && { cursor }),
    });
    // Results by position, so that the report keeps the task order whatever order HEADs finish in.
    const results: (Finding | undefined)[] = new Array<Finding | undefined>(page.items.length);
    try {
      await runBounded(page.items.entries(), HEAD_CONCURRENCY, async ([index, task]) => {
        results[index] = await checkTask(deps.auditor, upload, task);
      });
    } catch (error) {
      if (error instanceof S3RequestError) throw s3Unavailable(error.message);
      throw error;
    }
    yield { findings: results.filter((finding) => finding !== undefined), checked: page.items.length };
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
}

async function checkTask(
  auditor: ObjectAuditor,
  upload: Upload,
  task: FileTask,
): Promise<Finding | undefined> {
  // Tasks completed before the size uploaded was recorded hold it as their size.
  const uploadedSize = task.uploadedSize ?? task.size;
  const objectReasons = await objectProblems(auditor, upload.destinationBucket, task, uploadedSize);
  const filePath = path.join(upload.sourceFolder, ...task.relativePath.split('/'));
  const file = await localFileProblem(filePath, task, uploadedSize);
  const reasons = file ? [...objectReasons, file.reason] : objectReasons;
  if (reasons.length === 0) return undefined;
  return {
    task,
    reasons,
    objectWrong: objectReasons.length > 0,
    noFileToUpload: file?.noFileToUpload ?? false,
    hashFirst: file?.hashFirst ?? false,
  };
}

async function objectProblems(
  auditor: ObjectAuditor,
  bucket: string,
  task: FileTask,
  uploadedSize: number,
): Promise<string[]> {
  const stored = await auditor.headObject(bucket, task.objectKey);
  if (!stored) return ['the object is missing in S3'];
  const problems: string[] = [];
  if (stored.size !== uploadedSize) {
    problems.push(`S3 holds ${stored.size} bytes, ${uploadedSize} were uploaded`);
  }
  const recorded = task.etag === null ? null : normalizeEtag(task.etag);
  if (recorded !== null && stored.etag !== recorded) {
    problems.push(`S3's ETag is ${stored.etag}, the upload recorded ${recorded}`);
  }
  return problems;
}

interface LocalFileProblem {
  reason: string;
  noFileToUpload: boolean;
  hashFirst?: boolean;
}

/**
 * Links are never followed (lstat): a file replaced by a link counts as gone, as for an upload.
 * The task's version is the one uploaded (a completed task holds it); its ino and ctimeMs are
 * null when it was uploaded before they were recorded, and then not compared.
 */
async function localFileProblem(
  filePath: string,
  task: FileTask,
  uploadedSize: number,
): Promise<LocalFileProblem | undefined> {
  let stats;
  try {
    stats = await lstat(filePath);
  } catch (error) {
    if (isVanished(error)) return { reason: 'the local file is missing', noFileToUpload: true };
    return {
      reason: `the local file cannot be examined (${errorCode(error) ?? String(error)})`,
      noFileToUpload: true,
    };
  }
  if (!stats.isFile()) return { reason: 'the local file is no longer a regular file', noFileToUpload: true };
  if (stats.size !== uploadedSize) {
    return {
      reason: `the local file holds ${stats.size} bytes, ${uploadedSize} were uploaded`,
      noFileToUpload: false,
    };
  }
  if (task.ino !== null && stats.ino !== task.ino) {
    return {
      reason: 'the local file was replaced by another one (another inode) since its upload',
      noFileToUpload: false,
    };
  }
  // Any write since changed the ctime too (an mtime set back cannot hide it): the hash decides.
  if (task.ctimeMs !== null && stats.ctimeMs !== task.ctimeMs) {
    return {
      reason:
        'the local file changed since its upload (its ctime): its metadata, or its content with its size and mtime restored; it is sent again only if its content hashes differently',
      noFileToUpload: false,
      hashFirst: true,
    };
  }
  return undefined;
}
