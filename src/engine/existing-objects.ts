// What is already at a file's key the first time an upload sends it (if_exists other than
// 'overwrite'). When such an upload is watched, the objects under its prefix are listed, a page at
// a time, into the store (memory holds one page however many objects there are). A file last
// modified before the listing began is looked up there, once the listing has passed its key (a
// file claimed before waits for it: a listing costs a request per 1,000 keys, a HEAD one per file).
// A file modified since may have been uploaded by another client since: it is asked with a HEAD
// when that can pay for itself (see headFromBytes). A wrong guess either way costs a request or a
// file sent again, never a file left out: only a file whose object was listed or HEAD'ed is ever
// skipped.
import type { FileTask, Upload } from '../domain/model.js';
import type { Logger } from '../logger.js';
import type { Store } from '../store/store.js';
import { describeS3Error, isAbortError, S3RequestError } from '../transfer/errors.js';
import type { ExistingAtKey } from '../transfer/existing-object.js';
import type { ObjectAuditor } from '../transfer/object-audit.js';
import { normalizePrefix } from '../domain/object-key.js';

export interface ExistingObjectsOptions {
  store: Store;
  auditor: Pick<ObjectAuditor, 'listObjects' | 'headObject'>;
  logger: Logger;
  /**
   * With if_exists 'skip_identical', a file the listing does not tell about is asked with a HEAD
   * only from this size on (the multipart threshold): a HEAD costs about what sending a small
   * file costs, so a small one is sent (with 'skip', every file is asked). Default 0: every file.
   */
  headFromBytes?: number | undefined;
  now?: () => number;
}

/** Where one upload's listing stands while it runs. */
interface Listing {
  /** When it began: objects put since may be missing from it. */
  startedAt: number;
  /** The last key recorded (UTF-8, the order S3 lists in); undefined before the first page. */
  passed: Buffer | undefined;
  state: 'listing' | 'done' | 'failed';
  abort: AbortController;
  /** Woken after each page and at the end. */
  waiters: Set<() => void>;
}

/** The listing could not be finished: the files it has not reached are asked with a HEAD. */
const LISTING_FAILED_NOTE =
  'could not list the objects already under the prefix; each file is checked with a HEAD instead';

/** S3 refused to tell what is at a key: with if_exists skip the file may not be sent over it. */
export class ExistingObjectUnknownError extends Error {
  override readonly name = 'ExistingObjectUnknownError';
}

export class ExistingObjects {
  private readonly listings = new Map<string, Listing>();
  /** Uploads already told (in the log) that a HEAD was refused: once each. */
  private readonly headRefusalLogged = new Set<string>();
  private readonly now: () => number;

  constructor(private readonly options: ExistingObjectsOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Lists the prefix of an upload that compares and has no complete listing yet. */
  watch(upload: Upload): void {
    if (upload.ifExists === 'overwrite' || upload.listedAt !== null) return;
    if (this.listings.has(upload.uploadId)) return;
    const listing: Listing = {
      startedAt: this.now(),
      passed: undefined,
      state: 'listing',
      abort: new AbortController(),
      waiters: new Set(),
    };
    this.listings.set(upload.uploadId, listing);
    void this.list(upload, listing);
  }

  /** The upload is watched no more (cancelled, completed, the engine stopping). */
  forget(uploadId: string): void {
    const listing = this.listings.get(uploadId);
    if (!listing) return;
    this.listings.delete(uploadId);
    listing.abort.abort(new Error('the upload is watched no more'));
    this.wake(listing);
  }

  stop(): void {
    for (const uploadId of [...this.listings.keys()]) this.forget(uploadId);
  }

  /**
   * What is at the task's key, for the uploader to decide on; undefined when nothing is to be
   * compared (if_exists overwrite, a file this upload sent before, or no object there). Waits
   * for the listing to reach the key. Throws what S3 answered when it could not tell.
   *
   * A task interrupted by a crash is asked with a HEAD whatever the upload's if_exists: the
   * service may have put this very version just before it was killed, and an object of the same
   * content completes it without sending it again.
   */
  async lookup(upload: Upload, task: FileTask, signal: AbortSignal): Promise<ExistingAtKey | undefined> {
    if (task.interrupted) {
      const ifExists = upload.ifExists === 'skip' && task.etag === null ? 'skip' : 'skip_identical';
      return this.head(upload, task, ifExists, signal);
    }
    if (upload.ifExists === 'overwrite' || task.etag !== null) return undefined;
    const ifExists = upload.ifExists;
    if (await this.listed(upload, task, signal)) {
      const object = await this.options.store.getExistingObject(upload.uploadId, task.objectKey);
      return object && { object, listed: true, ifExists };
    }
    if (ifExists === 'skip_identical' && task.size < (this.options.headFromBytes ?? 0)) return undefined;
    return this.head(upload, task, ifExists, signal);
  }

  private async head(
    upload: Upload,
    task: FileTask,
    ifExists: ExistingAtKey['ifExists'],
    signal: AbortSignal,
  ): Promise<ExistingAtKey | undefined> {
    try {
      const object = await this.options.auditor.headObject(upload.destinationBucket, task.objectKey, signal);
      return object && { object, listed: false, ifExists };
    } catch (error) {
      if (isAbortError(error) || !isRefused(error)) throw error;
      const reason = describeS3Error(error);
      if (ifExists === 'skip') {
        throw new ExistingObjectUnknownError(
          `cannot tell whether an object is already at the key (${reason}); with if_exists skip the file is not sent over one: allow s3:GetObject, or use if_exists overwrite`,
        );
      }
      if (!this.headRefusalLogged.has(upload.uploadId)) {
        this.headRefusalLogged.add(upload.uploadId);
        this.options.logger.warn(
          { uploadId: upload.uploadId, key: task.objectKey, reason },
          'cannot tell what is already at the keys (HEAD refused); the files are sent without comparing',
        );
      }
      return undefined;
    }
  }

  /** Whether the listing tells about the task's key: the file is older than it, and it passed the key. */
  private async listed(upload: Upload, task: FileTask, signal: AbortSignal): Promise<boolean> {
    const listing = this.listings.get(upload.uploadId);
    if (!listing) return upload.listedAt !== null && task.mtimeMs < upload.listedAt;
    if (task.mtimeMs >= listing.startedAt) return false;
    const key = Buffer.from(task.objectKey);
    for (;;) {
      if (listing.state === 'failed') return listing.passed !== undefined && key.compare(listing.passed) <= 0;
      if (listing.state === 'done') return true;
      if (listing.passed !== undefined && key.compare(listing.passed) <= 0) return true;
      if (signal.aborted) throw signal.reason;
      await new Promise<void>((resolve) => {
        const wake = () => {
          listing.waiters.delete(wake);
          signal.removeEventListener('abort', wake);
          resolve();
        };
        listing.waiters.add(wake);
        signal.addEventListener('abort', wake, { once: true });
      });
    }
  }

  private async list(upload: Upload, listing: Listing): Promise<void> {
    const { store, auditor, logger } = this.options;
    const { uploadId, destinationBucket: bucket } = upload;
    const prefix = normalizePrefix(upload.destinationPrefix);
    const log = logger.child({ uploadId, bucket, prefix });
    const { startedAt } = listing;
    let objects = 0;
    let pages = 0;
    try {
      await store.beginListing(uploadId);
      const keyPrefix = prefix === '' ? '' : `${prefix}/`;
      for await (const page of auditor.listObjects(bucket, keyPrefix, listing.abort.signal)) {
        await store.recordExistingObjects(uploadId, page);
        objects += page.length;
        pages++;
        const last = page.at(-1);
        if (last) listing.passed = Buffer.from(last.key);
        this.wake(listing);
      }
      await store.finishListing(uploadId, startedAt);
      listing.state = 'done';
      log.info(
        { objects, pages, durationMs: this.now() - startedAt },
        'listed the objects already under the prefix',
      );
    } catch (error) {
      if (listing.abort.signal.aborted) return;
      listing.state = 'failed';
      log.warn({ err: error, objects, pages }, `${LISTING_FAILED_NOTE}: ${describeS3Error(error)}`);
    } finally {
      // Later lookups go by the upload's listedAt.
      if (this.listings.get(uploadId) === listing) this.listings.delete(uploadId);
      this.wake(listing);
    }
  }

  private wake(listing: Listing): void {
    for (const wake of [...listing.waiters]) wake();
  }
}

/** S3 answered, and would not tell (403 on a write-only policy). */
function isRefused(error: unknown): boolean {
  return error instanceof S3RequestError && (error.httpStatus === 403 || error.code === 'AccessDenied');
}
