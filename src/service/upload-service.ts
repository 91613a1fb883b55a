// The operations the API offers, in domain words. Every input is checked here, before it reaches
// the store or S3, and every refusal is a DomainError.
import { randomUUID } from 'node:crypto';
import { completeMarkersProblem, defaultManifestKey } from '../domain/arrival.js';
import { bucketNameProblem } from '../domain/bucket-name.js';
import {
  bucketRefused,
  invalidBucketName,
  invalidCompleteMarker,
  invalidManifestKey,
  invalidNotifyUrl,
  invalidCursor,
  invalidObjectProperties,
  invalidDestinationPrefix,
  invalidPattern,
  invalidUploadId,
  uploadCancelled,
  uploadIdTaken,
  uploadNotFound,
  uploadNotWatched,
  uploadOverlaps,
} from '../domain/errors.js';
import type {
  FileTask,
  IfExists,
  NewUpload,
  UploadCounts,
  UploadProgress,
  UploadTotals,
  RescanOutcome,
  ScanReport,
  Upload,
} from '../domain/model.js';
import {
  checkObjectProperties,
  NO_OBJECT_PROPERTIES,
  ObjectPropertiesError,
  withDefaults,
  type ObjectProperties,
  type ObjectPropertiesInput,
} from '../domain/object-properties.js';
import { keyProblem, keySpacesOverlap, normalizePrefix, prefixProblem } from '../domain/object-key.js';
import { notifyUrlProblem, redactNotifyUrl } from '../arrival/notify-url.js';
import { DEFAULT_PATTERN, patternProblem } from '../domain/pattern.js';
import {
  LIVE_UPLOAD_STATUSES,
  UPLOAD_STATUSES,
  type UploadStatus,
  type TaskStatus,
} from '../domain/status.js';
import { DuplicateUploadIdError, type DatabaseHealth, type Store } from '../store/store.js';
import type { Instance } from '../domain/instance.js';
import type { ObjectAuditor } from '../transfer/object-audit.js';
import type { UploadLifecycle } from '../engine/lifecycle.js';
import type { S3HealthReport } from '../engine/s3-health.js';
import { readableFolder } from './folder-policy.js';
import { verifyCompletedUploads, type VerifyReport } from './verify.js';

/**
 * Client-chosen upload ids are safe in URLs and logs without escaping. "." and ".." are not ids:
 * HTTP clients resolve them as path segments (`/uploads/..` is sent as `/`), so no URL could name them.
 */
export const UPLOAD_ID_PATTERN = '^(?!\\.\\.?$)[A-Za-z0-9._~-]{1,128}$';
export const UPLOAD_ID_RULE =
  '1 to 128 characters of A-Z, a-z, 0-9, ".", "_", "~" and "-", other than "." and ".."';
const UPLOAD_ID_REGEX = new RegExp(UPLOAD_ID_PATTERN);

/** The store's cursor is the last task id of the page: a positive decimal integer. */
const CURSOR_REGEX = /^[1-9]\d{0,14}$/;

/** What GET /uploads lists unless told otherwise: every upload but the cancelled ones. */
const LISTED_BY_DEFAULT: readonly UploadStatus[] = ['pending', 'active', 'completed'];

/** The counts of an upload with no files (the store answers for every id it is asked; this is for types). */
const NO_COUNTS: UploadCounts = {
  files: { pending: 0, in_progress: 0, completed: 0, failed: 0, total: 0 },
  bytes: { total: 0, uploaded: 0 },
  backlogBytes: 0,
};

export interface CreateUploadInput {
  sourceFolder: string;
  destinationBucket: string;
  pattern?: string;
  destinationPrefix?: string;
  uploadId?: string;
  /** Accept the upload even when a live one writes to the same keys (see keySpacesOverlap). */
  allowOverlap?: boolean;
  /** false: a one-shot upload (see Upload.watch); default true. */
  watch?: boolean;
  /** What is done with an object already at a file's key (see IfExists); default 'skip_identical'. */
  ifExists?: IfExists;
  /** Check the bucket with the service's credentials first (default true; see transfer/bucket-check.ts). */
  checkBucket?: boolean;
  /** What its objects carry; a field left out takes the service's default (see withDefaults). */
  objectProperties?: ObjectPropertiesInput;
  /** Globs of the files uploaded last (see Upload.completeMarkers); default none. */
  completeMarkers?: string[];
  /** Write a manifest (default false; true when manifestKey is given). */
  manifest?: boolean;
  /** The manifest's key; default `<prefix>/_manifest.json`. */
  manifestKey?: string;
  /** Where the arrival is POSTed; default nowhere. */
  notifyUrl?: string;
}

/** An upload just created, and what could not be checked before (in words for people). */
export interface CreatedUpload {
  upload: Upload;
  warnings: string[];
}

export interface ListFilesOptions {
  status?: TaskStatus;
  limit: number;
  cursor?: string;
}

export interface UploadServiceDeps {
  store: Store;
  lifecycle: UploadLifecycle;
  /** Asks S3 what it holds, for verify. */
  auditor: ObjectAuditor;
  now?: () => number;
  newUploadId?: () => string;
  /** Real paths (links resolved) of the only folders sources may be in; undefined: anywhere. */
  allowedSourceRoots?: readonly string[];
  /** The object properties of an upload whose order leaves them out (DEFAULT_STORAGE_CLASS...); default none. */
  objectDefaults?: ObjectProperties;
  /** The only hosts a notify_url may name (NOTIFY_ALLOWED_HOSTS); null or undefined: any. */
  notifyAllowedHosts?: readonly string[] | null;
}

export class UploadService {
  private readonly store: Store;
  private readonly lifecycle: UploadLifecycle;
  private readonly auditor: ObjectAuditor;
  private readonly now: () => number;
  private readonly newUploadId: () => string;
  private readonly allowedSourceRoots: readonly string[] | undefined;
  private readonly objectDefaults: ObjectProperties;
  private readonly notifyAllowedHosts: readonly string[] | null;
  /** The last creation queued: creations check for overlaps and store one after another. */
  private creating: Promise<unknown> = Promise.resolve();

  constructor(deps: UploadServiceDeps) {
    this.store = deps.store;
    this.lifecycle = deps.lifecycle;
    this.auditor = deps.auditor;
    this.now = deps.now ?? Date.now;
    this.newUploadId = deps.newUploadId ?? randomUUID;
    this.allowedSourceRoots = deps.allowedSourceRoots;
    this.objectDefaults = deps.objectDefaults ?? NO_OBJECT_PROPERTIES;
    this.notifyAllowedHosts = deps.notifyAllowedHosts ?? null;
  }

  async createUpload(input: CreateUploadInput): Promise<CreatedUpload> {
    const uploadId = input.uploadId ?? this.newUploadId();
    if (!UPLOAD_ID_REGEX.test(uploadId)) throw invalidUploadId(uploadId, UPLOAD_ID_RULE);

    const bucketProblem = bucketNameProblem(input.destinationBucket);
    if (bucketProblem !== null) throw invalidBucketName(input.destinationBucket, bucketProblem);

    const pattern = input.pattern ?? DEFAULT_PATTERN;
    const globProblem = patternProblem(pattern);
    if (globProblem !== null) throw invalidPattern(pattern, globProblem);

    const prefix = input.destinationPrefix ?? '';
    const keyPrefixProblem = prefixProblem(prefix);
    if (keyPrefixProblem !== null) throw invalidDestinationPrefix(prefix, keyPrefixProblem);

    const objectProperties = this.objectPropertiesOf(input.objectProperties ?? {});
    const completeMarkers = input.completeMarkers ?? [];
    const markersProblem = completeMarkersProblem(completeMarkers);
    if (markersProblem !== null) throw invalidCompleteMarker(markersProblem.marker, markersProblem.problem);
    const manifestKey = this.manifestKeyOf(input, prefix);
    const notifyUrl = input.notifyUrl ?? null;
    const urlProblem = notifyUrl === null ? null : notifyUrlProblem(notifyUrl, this.notifyAllowedHosts);
    if (notifyUrl !== null && urlProblem !== null)
      throw invalidNotifyUrl(redactNotifyUrl(notifyUrl), urlProblem);
    const sourceFolder = await readableFolder(input.sourceFolder, this.allowedSourceRoots);

    const warnings: string[] = [];
    if (input.checkBucket !== false) {
      const check = await this.auditor.checkBucket(input.destinationBucket, normalizePrefix(prefix));
      if (check.result === 'refused')
        throw bucketRefused(check.problem, input.destinationBucket, check.message);
      if (check.result === 'unchecked') {
        warnings.push(`destination_bucket '${input.destinationBucket}' was not checked: ${check.message}`);
      }
    }

    const newUpload: NewUpload = {
      uploadId,
      sourceFolder,
      destinationBucket: input.destinationBucket,
      destinationPrefix: normalizePrefix(prefix),
      pattern,
      watch: input.watch ?? true,
      ifExists: input.ifExists ?? 'skip_identical',
      objectProperties,
      completeMarkers,
      manifestKey,
      notifyUrl,
    };
    const upload = await this.oneAtATime(() => this.storeUpload(newUpload, input.allowOverlap === true));
    this.lifecycle.uploadCreated(upload);
    return { upload, warnings };
  }

  /** The key of the manifest the order asks for, or null for none. */
  private manifestKeyOf(input: CreateUploadInput, prefix: string): string | null {
    if (input.manifestKey === undefined) return input.manifest === true ? defaultManifestKey(prefix) : null;
    if (input.manifest === false)
      throw invalidManifestKey(input.manifestKey, 'a manifest key is given, but manifest is false');
    const problem = keyProblem(input.manifestKey);
    if (problem !== null) throw invalidManifestKey(input.manifestKey, problem);
    return input.manifestKey;
  }

  /** Oldest first; by default every upload but the cancelled ones (finished one-shot runs are shown). */
  async listUploads(status?: UploadStatus | 'all'): Promise<Upload[]> {
    const statuses = status === undefined ? LISTED_BY_DEFAULT : status === 'all' ? UPLOAD_STATUSES : [status];
    return this.store.listUploads(statuses);
  }

  /** listUploads, each with its counts and where it stands: one read of the kept counts for all of them. */
  async listUploadsWithProgress(
    status?: UploadStatus | 'all',
  ): Promise<Array<{ upload: Upload; totals: UploadTotals; progress: UploadProgress }>> {
    const uploads = await this.listUploads(status);
    const counts = await this.store.uploadCounts(uploads.map((upload) => upload.uploadId));
    return uploads.map((upload) => {
      const { files, bytes, backlogBytes } = counts.get(upload.uploadId) ?? NO_COUNTS;
      return {
        upload,
        totals: { files, bytes },
        progress: this.lifecycle.progress(upload, { files, bytes, backlogBytes }),
      };
    });
  }

  async getUpload(uploadId: string): Promise<{
    upload: Upload;
    totals: UploadTotals;
    lastScan: ScanReport | null;
    progress: UploadProgress;
  }> {
    const upload = await this.requireUpload(uploadId);
    const counts = (await this.store.uploadCounts([uploadId])).get(uploadId) ?? NO_COUNTS;
    const { files, bytes } = counts;
    return {
      upload,
      totals: { files, bytes },
      lastScan: this.lifecycle.lastScan(uploadId),
      progress: this.lifecycle.progress(upload, counts),
    };
  }

  async listFiles(
    uploadId: string,
    options: ListFilesOptions,
  ): Promise<{ items: FileTask[]; nextCursor: string | null }> {
    if (options.cursor !== undefined && !CURSOR_REGEX.test(options.cursor)) {
      throw invalidCursor(options.cursor);
    }
    await this.requireUpload(uploadId);
    return this.store.listTasks(uploadId, options);
  }

  /**
   * Idempotent. The engine is told every time, not only the first: if its clean-up fails (an
   * abort S3 refused), the error goes to the caller while the upload stays cancelled, and
   * asking again retries the clean-up. A completed one-shot upload has nothing left to stop: it
   * stays completed, and the answer is the upload as it is.
   */
  async cancelUpload(uploadId: string): Promise<Upload> {
    const upload = await this.requireUpload(uploadId);
    if (upload.status === 'completed') return upload;
    if (upload.status !== 'cancelled') await this.store.cancelUpload(uploadId, this.now());
    await this.lifecycle.uploadCancelled(uploadId);
    return this.requireUpload(uploadId);
  }

  /**
   * Scans the upload's folder now, unless a scan of it runs already (the initial one, say): then
   * that one is its answer. Refused for a folder not being watched: a cancelled upload, or one
   * the engine is not watching right now (it is starting, stopping, or retrying after a database
   * error), or that another instance sharing the database watches.
   */
  async rescan(uploadId: string): Promise<Exclude<RescanOutcome, 'not_watched'>> {
    const upload = await this.requireUpload(uploadId);
    if (upload.status === 'cancelled') throw uploadNotWatched(uploadId, 'the upload is cancelled');
    if (upload.status === 'completed') {
      throw uploadNotWatched(uploadId, 'the upload is completed: a one-shot upload is scanned once');
    }
    const outcome = this.lifecycle.rescan(uploadId);
    if (outcome === 'not_watched') throw uploadNotWatched(uploadId, await this.whyNotWatchedHere(upload));
    return outcome;
  }

  /** Why this instance cannot rescan a live upload: which instance watches it, if another does. */
  private async whyNotWatchedHere(upload: Upload): Promise<string> {
    const watcher = upload.watchedBy;
    if (watcher === null) {
      return 'no instance watches it right now: one that can read its folder takes it at its next heartbeat (try again in a few seconds)';
    }
    if (watcher !== this.store.instanceId) {
      const instance = (await this.store.listInstances()).find((live) => live.instanceId === watcher);
      const where = instance ? ` on host ${instance.host} (pid ${instance.pid})` : '';
      return `instance ${watcher}${where} watches it: ask that one`;
    }
    return 'this instance is starting or stopping, or will watch it again after a database error (try again in a few seconds)';
  }

  /** Every failed file of the upload is pending again, now. A cancelled upload is refused. */
  async retryFailed(uploadId: string): Promise<{ requeued: number }> {
    const upload = await this.requireUpload(uploadId);
    if (upload.status === 'cancelled') throw uploadCancelled(uploadId);
    const requeued = await this.store.retryFailedTasks(uploadId, this.now());
    if (requeued > 0) this.lifecycle.tasksRequeued();
    return { requeued };
  }

  /**
   * Checks every completed file of the upload against S3 (size and ETag) and its local file
   * (size), and requeues each one found wrong, unless the upload is cancelled or the file is gone.
   * Throws `s3_unavailable` when S3 cannot answer.
   */
  async verify(uploadId: string): Promise<VerifyReport> {
    const upload = await this.requireUpload(uploadId);
    const report = await verifyCompletedUploads(
      { store: this.store, auditor: this.auditor, now: this.now },
      upload,
    );
    if (report.requeued > 0) this.lifecycle.tasksRequeued();
    return report;
  }

  /** The live instances that share the database, and what each uploads now. */
  async listInstances(): Promise<Instance[]> {
    return this.store.listInstances();
  }

  async health(): Promise<{ database: DatabaseHealth; s3: S3HealthReport }> {
    const s3 = this.lifecycle.s3Health();
    try {
      return { database: await this.store.health(), s3 };
    } catch {
      return { database: 'unreachable', s3 };
    }
  }

  /**
   * Stores the upload unless a live one could write the same objects (and that is not allowed).
   * Called one at a time: two such uploads sent together would each find the other not yet stored.
   */
  private async storeUpload(upload: NewUpload, allowOverlap: boolean): Promise<Upload> {
    if (!allowOverlap) {
      const keySpace = { bucket: upload.destinationBucket, prefix: upload.destinationPrefix };
      const other = (await this.store.listUploads(LIVE_UPLOAD_STATUSES)).find(
        (live) =>
          // The same id is upload_id_taken, which the store reports.
          live.uploadId !== upload.uploadId &&
          keySpacesOverlap({ bucket: live.destinationBucket, prefix: live.destinationPrefix }, keySpace),
      );
      if (other) throw uploadOverlaps(other);
    }
    try {
      return await this.store.createUpload(upload, this.now());
    } catch (error) {
      if (error instanceof DuplicateUploadIdError) throw uploadIdTaken(upload.uploadId);
      throw error;
    }
  }

  private objectPropertiesOf(given: ObjectPropertiesInput): ObjectProperties {
    try {
      return checkObjectProperties(withDefaults(given, this.objectDefaults));
    } catch (error) {
      if (error instanceof ObjectPropertiesError) throw invalidObjectProperties(error.problem);
      throw error;
    }
  }

  private oneAtATime<T>(work: () => Promise<T>): Promise<T> {
    const run = this.creating.then(work);
    this.creating = run.catch(() => undefined);
    return run;
  }

  private async requireUpload(uploadId: string): Promise<Upload> {
    const upload = await this.store.getUpload(uploadId);
    if (!upload) throw uploadNotFound(uploadId);
    return upload;
  }
}
