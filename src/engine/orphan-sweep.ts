// The orphan sweep, run at start-up before any upload starts: a multipart upload S3 still holds
// at the key of one of our tasks, which no task records, was left behind by an earlier run (a
// crash between CreateMultipartUpload and the store's record of it, or an abort that never got
// through) and costs storage for ever. It is aborted. Uploads under keys that are not ours,
// uploads created since this process started, and uploads at the key of a task in progress
// (another instance sharing the database may be between creating one and recording it) are left
// alone.
import type { EpochMs, FileTask, Upload } from '../domain/model.js';
import { normalizePrefix } from '../domain/object-key.js';
import { UPLOAD_STATUSES } from '../domain/status.js';
import type { Logger } from '../logger.js';
import type { Store } from '../store/store.js';
import { describeS3Error } from '../transfer/errors.js';
import type { ObjectAuditor, OpenMultipartUpload } from '../transfer/object-audit.js';

export interface OrphanSweepDeps {
  store: Store;
  auditor: ObjectAuditor;
  logger: Logger;
  /** When this process started: an upload S3 initiated since then may be this run's own. */
  startedAt: EpochMs;
  /** Stops the sweep between two S3 calls (a stop during start-up). */
  signal?: AbortSignal;
}

export interface OrphanSweepSummary {
  /** Buckets listed (each once, whatever the number of uploads in it). */
  buckets: number;
  /** Buckets whose listing failed (missing, access denied, S3 unreachable). */
  bucketsFailed: number;
  /** Open multipart uploads found at the keys of our tasks (orphans or not). */
  uploadsAtOurKeys: number;
  aborted: number;
  /** Orphans whose abort failed: tried again at the next start. */
  abortsFailed: number;
}

/** The uploads of one bucket, each with the key prefix its tasks' keys start with. */
interface BucketUploads {
  bucket: string;
  uploads: { uploadId: string; keyPrefix: string }[];
}

/**
 * Aborts the multipart uploads left behind by earlier runs, in every bucket of every upload (any
 * status). Never throws: a failure is logged and the sweep goes on with the next bucket.
 */
export async function sweepOrphanUploads(deps: OrphanSweepDeps): Promise<OrphanSweepSummary> {
  const { logger } = deps;
  const summary: OrphanSweepSummary = {
    buckets: 0,
    bucketsFailed: 0,
    uploadsAtOurKeys: 0,
    aborted: 0,
    abortsFailed: 0,
  };
  let groups: BucketUploads[];
  try {
    groups = groupByBucket(await deps.store.listUploads(UPLOAD_STATUSES));
  } catch (error) {
    logger.error({ err: error }, 'orphan sweep: cannot read the uploads; skipped');
    return summary;
  }
  for (const group of groups) {
    if (deps.signal?.aborted) break;
    summary.buckets += 1;
    try {
      await sweepBucket(deps, group, summary);
    } catch (error) {
      if (deps.signal?.aborted) break;
      summary.bucketsFailed += 1;
      logger.warn(
        { bucket: group.bucket, error: describeS3Error(error, { bucket: group.bucket }) },
        'orphan sweep: cannot list the multipart uploads of a bucket; going on with the next',
      );
    }
  }
  logger.info({ ...summary }, 'orphan sweep done');
  return summary;
}

async function sweepBucket(
  deps: OrphanSweepDeps,
  group: BucketUploads,
  summary: OrphanSweepSummary,
): Promise<void> {
  const { auditor, logger, signal } = deps;
  const prefix = commonPrefix(group.uploads.map((upload) => upload.keyPrefix));
  for await (const multipart of auditor.listMultipartUploads(group.bucket, prefix, signal)) {
    const owners = await tasksAtKey(deps.store, group, multipart.key);
    if (owners.length === 0) continue; // not one of our keys
    summary.uploadsAtOurKeys += 1;
    if (!(await isOrphan(deps, owners, multipart))) continue;
    const where = { bucket: group.bucket, key: multipart.key, s3UploadId: multipart.s3UploadId };
    try {
      await auditor.abortMultipartUpload(group.bucket, multipart.key, multipart.s3UploadId, signal);
      summary.aborted += 1;
      logger.info(where, 'orphan sweep: aborted a multipart upload left behind by an earlier run');
    } catch (error) {
      if (signal?.aborted) throw error;
      summary.abortsFailed += 1;
      logger.warn(
        { ...where, error: describeS3Error(error, where) },
        'orphan sweep: could not abort a multipart upload left behind; it is tried again at the next start',
      );
    }
  }
}

/** No task at the key records this multipart upload, and it is older than this process. */
async function isOrphan(
  deps: OrphanSweepDeps,
  owners: readonly FileTask[],
  multipart: OpenMultipartUpload,
): Promise<boolean> {
  // S3 did not say when it was created: it may be this run's, so it stays.
  if (multipart.initiated === undefined || multipart.initiated.getTime() >= deps.startedAt) return false;
  // Crash recovery ran before the sweep: a task still in progress is held by a running instance,
  // whose runner may not have recorded its new upload yet. A later sweep finds it if it is an orphan.
  if (owners.some((task) => task.status === 'in_progress')) return false;
  for (const task of owners) {
    const recorded = await deps.store.getMultipart(task.taskId);
    if (recorded?.s3UploadId === multipart.s3UploadId) return false;
  }
  return true;
}

/** The tasks (of any upload in the bucket) whose object key is `key`. */
async function tasksAtKey(store: Store, group: BucketUploads, key: string): Promise<FileTask[]> {
  const tasks: FileTask[] = [];
  for (const { uploadId, keyPrefix } of group.uploads) {
    if (!key.startsWith(keyPrefix) || key.length === keyPrefix.length) continue;
    const task = await store.findTaskByPath(uploadId, key.slice(keyPrefix.length));
    if (task?.objectKey === key) tasks.push(task);
  }
  return tasks;
}

function groupByBucket(uploads: readonly Upload[]): BucketUploads[] {
  const groups = new Map<string, BucketUploads>();
  for (const upload of uploads) {
    const prefix = normalizePrefix(upload.destinationPrefix);
    const entry = { uploadId: upload.uploadId, keyPrefix: prefix === '' ? '' : `${prefix}/` };
    const group = groups.get(upload.destinationBucket);
    if (group) group.uploads.push(entry);
    else groups.set(upload.destinationBucket, { bucket: upload.destinationBucket, uploads: [entry] });
  }
  return [...groups.values()];
}

/** The longest prefix of every string: one listing of the bucket covers every upload in it. */
export function commonPrefix(prefixes: readonly string[]): string {
  let common = prefixes[0] ?? '';
  for (const prefix of prefixes.slice(1)) {
    let length = 0;
    while (length < common.length && length < prefix.length && common[length] === prefix[length]) length++;
    common = common.slice(0, length);
  }
  // Never end in half of a surrogate pair: the prefix goes to S3 as UTF-8.
  return /[\uD800-\uDBFF]$/.test(common) ? common.slice(0, -1) : common;
}
