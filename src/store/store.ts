import type {
  CompletedUpload,
  EpochMs,
  ExistingObject,
  ListedObject,
  FileReadiness,
  FileTask,
  ManifestEntry,
  ManifestRecord,
  MultipartState,
  NewUpload,
  NotificationOutcome,
  ObservedFile,
  UploadCounts,
  UploadTotals,
  Upload,
  UploadedPart,
} from '../domain/model.js';
import type { FailureKind, UploadStatus, TaskStatus } from '../domain/status.js';
import type { Beat, Instance, InstanceInfo, Reaped } from '../domain/instance.js';

/**
 * The database, in domain words. The database is the source of truth: the engine keeps nothing
 * in memory that it cannot rebuild from here. Every transition is one guarded statement, so a
 * call that finds the row in another status changes nothing and says so (returns false / 0).
 * Async so that a PostgreSQL implementation fits the same interface.
 */
/** How long a lease lasts from a claim or a heartbeat, unless the store is told otherwise (LEASE_SECONDS). */
export const DEFAULT_LEASE_MS = 30_000;

/** The memory a claim may take for file data: each task weighs `bytesOf(its size)`. */
export interface ClaimBudget {
  bytes: number;
  bytesOf(size: number): number;
}

/** What a claim may take besides the queue's order (see Store.claimReadyTasks). */
export interface ClaimOptions {
  budget?: ClaimBudget;
  /**
   * Only tasks of uploads whose source folder is one of these folders or below one (real paths,
   * see isUnderRoots): the folders this instance can read. Undefined or null: any upload.
   */
  sourceRoots?: readonly string[] | null;
}

export interface Store {
  // --- uploads
  /** Throws DuplicateUploadIdError when the id exists. New uploads are 'pending'. */
  createUpload(upload: NewUpload, now: EpochMs): Promise<Upload>;
  getUpload(uploadId: string): Promise<Upload | undefined>;
  /** Oldest first. */
  listUploads(statuses: readonly UploadStatus[]): Promise<Upload[]>;
  /** pending → active; false if it was not pending. */
  activateUpload(uploadId: string, now: EpochMs): Promise<boolean>;
  /**
   * active → completed, with completedAt = now, for a one-shot upload (watch false) none of whose
   * files is pending, in progress or failed; false otherwise (watched, not active, or a file left).
   * When no arrival is recorded (no marker went up), it records one with no marker key, and its
   * notification as completeTask does for a marker.
   */
  completeUpload(uploadId: string, now: EpochMs): Promise<boolean>;
  /**
   * pending|active → cancelled. Its pending and failed tasks keep their status but leave the queue
   * (readyAt null), so that they cost nothing to the dispatcher; in_progress ones are stopped by the
   * engine. False if already cancelled.
   */
  cancelUpload(uploadId: string, now: EpochMs): Promise<boolean>;
  /**
   * Sets (or clears, with null) the upload's last error, a note about no task in particular (a
   * task's failure is recorded by failTask, and cleared when that task completes).
   */
  setUploadError(uploadId: string, message: string | null, now: EpochMs): Promise<void>;
  /** Counts by status and byte totals; cheap however many tasks the upload has. */
  uploadTotals(uploadId: string): Promise<UploadTotals>;
  /**
   * The totals of each upload named, with its backlog (bytes of pending and in-progress files not
   * yet confirmed), in one read of the kept counts: an upload with no files has zeros.
   */
  uploadCounts(uploadIds: readonly string[]): Promise<Map<string, UploadCounts>>;
  /**
   * Files and their bytes by task status, over the uploads still watched (pending and active): the
   * queue as a whole, in one read of the kept counts (its cost grows with the uploads, not the tasks).
   */
  queueCounts(): Promise<QueueCounts>;

  // --- file tasks, as the monitor sees files
  /**
   * Records what the watcher saw, in one transaction. Per file: no task → new 'pending' task;
   * a task of the same version (sameVersion) → untouched (whatever its status, so an unchanged
   * file is never uploaded twice), except that an ino or ctimeMs it holds as null takes the
   * observed one; another version, observed no earlier than the task's observedAt → back to
   * 'pending' with the new version, observedAt, readyAt, attempts 0, bytesUploaded 0, and last
   * error cleared, and hashFirst set when only the ctime differs from the last upload's version
   * (an 'in_progress' task is left for its runner, which
   * notices the change itself; a task of a cancelled upload is left as it is). An observation
   * older than the task's observedAt is ignored: it was overtaken by a newer one.
   * readyAt comes from readinessOf(file): its settledAt for a task whose streaming was refused.
   * A task created is a marker (FileTask.marker) when isMarker says so of its path.
   * Returns how many tasks were created or changed.
   */
  recordObservedFiles(
    uploadId: string,
    files: readonly ObservedFile[],
    objectKeyFor: (relativePath: string) => string,
    readinessOf: (file: ObservedFile) => FileReadiness,
    now: EpochMs,
    isMarker?: (relativePath: string) => boolean,
  ): Promise<number>;
  getTask(taskId: number): Promise<FileTask | undefined>;
  /** The newest observedAt of any task (0 when there is none): the floor of new observation stamps. */
  latestObservedAt(): Promise<EpochMs>;
  /** Paged by taskId ascending; cursor is opaque to callers (the last taskId as a string). */
  listTasks(
    uploadId: string,
    options: { status?: TaskStatus; limit: number; cursor?: string },
  ): Promise<{ items: FileTask[]; nextCursor: string | null }>;

  // --- the dispatcher's queue
  /**
   * Atomically claims up to `limit` pending tasks with readyAt <= now whose upload is active:
   * status → in_progress, attempts + 1. Returns the claimed tasks, in the order they were picked.
   * The queue is shared among uploads, so that one upload's backlog never holds up another's
   * first file: each task is taken from the upload with the fewest tasks in progress (counting
   * those claimed before it in this call), and among those from the one claimed from longest ago
   * (never, first; then the oldest ready task). Within an upload, oldest readyAt first, then by
   * taskId. Its cost grows with the number of active uploads, not with the number of tasks.
   * With a `budget`, the claim also stops once the memory of the tasks claimed reaches it: the
   * last task may take it past, by less than one task's weight. With `sourceRoots`, only uploads
   * under them are claimed from. The tasks claimed are held by this store's instance (claimedBy),
   * under a lease of its length where the store has leases (PostgreSQL). A marker task is ready
   * only once its upload was scanned whole (scannedAt) and no other task of the upload, not a
   * marker, is pending, in progress or failed: then it is in the queue's order as any task.
   */
  claimReadyTasks(now: EpochMs, limit: number, options?: ClaimOptions): Promise<FileTask[]>;
  /**
   * The earliest readyAt of a pending task of an active upload (under `sourceRoots` when given),
   * or null when there is none. A marker that waits for other files is not counted (see claimReadyTasks).
   */
  nextReadyAt(sourceRoots?: readonly string[] | null): Promise<EpochMs | null>;
  /** failed tasks of active uploads whose readyAt (the requeue time) has come → pending. Returns how many. */
  requeueDueFailedTasks(now: EpochMs): Promise<number>;
  /** All failed tasks of one upload → pending now. Returns how many. */
  retryFailedTasks(uploadId: string, now: EpochMs): Promise<number>;
  /**
   * Failed tasks of active uploads whose failure is of one of these kinds → pending now, whatever
   * their requeue time (not those failed for good). Returns how many.
   */
  retryFailedTasksOfKinds(kinds: readonly FailureKind[], now: EpochMs): Promise<number>;
  /**
   * Crash recovery at start-up: in_progress tasks that no running instance holds → pending, marked
   * interrupted (multipart state is kept), as the reaper does. On SQLite, one process: every
   * in_progress task. On PostgreSQL: those whose lease expired, or whose claimedBy names an
   * instance that has no row (never a live instance's). Returns how many.
   */
  recoverInterruptedTasks(now: EpochMs): Promise<number>;

  // --- instances: the running processes that share the database (see domain/instance.ts)
  /** This store's instance: random at each open, written as claimedBy on the tasks it claims. */
  readonly instanceId: string;
  /** Registers this instance: its row, started and beating now by the database's clock. */
  registerInstance(info: InstanceInfo): Promise<void>;
  /**
   * The heartbeat: this instance's row beats now, and the lease of every task it holds is renewed
   * (one statement). Registers it again when its row is gone. Throws before registerInstance.
   */
  beat(): Promise<Beat>;
  /**
   * The reaper: in_progress tasks whose lease expired → pending, marked interrupted, as
   * recoverInterruptedTasks does; the rows of instances whose heartbeat is older than their lease
   * are removed. Cheap when there is nothing to do. Nothing to do on SQLite: one process holds
   * every task, and no other can take them.
   */
  reapExpiredLeases(now: EpochMs): Promise<Reaped>;
  /** Every registered instance, in order of start, with what it works on now. */
  listInstances(): Promise<Instance[]>;
  /** Removes this instance's row (a clean stop). */
  removeInstance(): Promise<void>;

  // --- watch leases: one instance watches each live upload's folder (see docs/architecture.md)
  /**
   * Takes, atomically, the watch lease of live uploads under `sourceRoots` that no instance holds
   * or whose holder's lease expired: held by this instance for a lease's length, renewed by
   * beat(). Takes up to this instance's fair share (the live uploads over the live instances) less
   * those it watches, at least one; with `uploadId`, that upload alone. Returns those taken.
   * SQLite: every live upload under the roots not yet watched by this process.
   */
  takeWatchLeases(request: WatchLeaseRequest): Promise<TakenWatch[]>;
  /** Lets go of every watch lease of this instance (a clean stop): others take them at their next beat. */
  releaseWatchLeases(): Promise<void>;

  // --- one task's run (each guarded by status = 'in_progress' and, where the store has
  // instances that share it, by claimed_by = this instance: a task taken back from this instance
  // is not in progress for it any more, and its run's transitions change nothing)
  /** `size`: the size so far of a file uploaded while it grows (the task's size stays otherwise). */
  recordProgress(taskId: number, bytesUploaded: number, now: EpochMs, size?: number): Promise<void>;
  /**
   * in_progress → completed with what S3 stored and the version uploaded (which replaces the
   * task's: a streamed file settles at a later one); its multipart state is deleted with it, and a
   * upload error about it gives way to the newest failure of another of the upload's files, or
   * to none. A marker's completion records, in the same transaction, the upload's arrival (at
   * `now`, its completed tasks that are not markers, the marker's key) and, when the upload has a
   * notifyUrl, the notification of that arrival as pending (attempts 0), held by this instance.
   */
  completeTask(taskId: number, upload: CompletedUpload, now: EpochMs): Promise<boolean>;
  /**
   * in_progress → failed with the failure's message and kind; readyAt = retryAt (the automatic
   * requeue time), or null for an error no retry can cure (it waits for POST retry or a new version
   * of the file). In the same transaction the upload's last error becomes this failure.
   */
  failTask(taskId: number, failure: TaskFailure, now: EpochMs): Promise<boolean>;
  /**
   * in_progress → pending, e.g. the file changed during the upload: the new version (when it
   * differs: attempts and bytes reset), when it was observed, and its readyAt (null when its upload
   * was cancelled meanwhile, so that it leaves the queue); refuseStreaming marks it streamRefused.
   */
  releaseTask(taskId: number, version: TaskRelease, note: string | null, now: EpochMs): Promise<boolean>;
  /**
   * Removes a task whose file vanished before it was uploaded (and its multipart state); not one
   * that another instance holds.
   */
  dropTask(taskId: number): Promise<void>;

  // --- checks of what S3 holds
  /** The task of one path of an upload (the orphan sweep maps an object key back to it). */
  findTaskByPath(uploadId: string, relativePath: string): Promise<FileTask | undefined>;
  /**
   * completed → pending, ready now, with `reason` as its last error and bytesUploaded 0: a check
   * found that the object at its key, or its file, is not what was uploaded. Guarded by status =
   * 'completed' and etag = checkedEtag (a task completed again since the check is left alone); a
   * task of an upload no longer live (cancelled, or a completed one-shot upload) is never requeued. Returns whether it moved.
   */
  requeueCompletedTask(taskId: number, requeue: CompletedTaskRequeue, now: EpochMs): Promise<boolean>;

  // --- existing objects: the listing of an upload's prefix (see IfExists)
  /** A listing starts (over): listedAt → null, and what an earlier one recorded is forgotten. */
  beginListing(uploadId: string): Promise<void>;
  /** One page of the listing, in one transaction. */
  recordExistingObjects(uploadId: string, objects: readonly ListedObject[]): Promise<void>;
  /** The listing that began at `startedAt` is complete: listedAt = startedAt. */
  finishListing(uploadId: string, startedAt: EpochMs): Promise<void>;
  /**
   * The object the listing found at the key, until the key's task completes (the task's record
   * then says what is there); also forgotten when the upload is cancelled or completed.
   */
  getExistingObject(uploadId: string, key: string): Promise<ExistingObject | undefined>;

  // --- arrivals: markers, manifests, notifications (see docs/run-folders.md)
  /** The upload's folder was scanned whole: scannedAt = now. Its markers may go once the other files are done. */
  markScanned(uploadId: string, now: EpochMs): Promise<void>;
  /**
   * One page of the upload's completed tasks that are not markers, by taskId ascending after
   * `afterTaskId` (0 for the first page): what a manifest lists, streamed page by page.
   */
  manifestEntries(uploadId: string, afterTaskId: number, limit: number): Promise<ManifestEntry[]>;
  /** The manifest just written becomes the upload's (Upload.manifest). */
  recordManifest(uploadId: string, manifest: ManifestRecord): Promise<void>;
  /**
   * The uploads whose notification is pending and is this instance's to deliver: those it holds,
   * and those held by an instance that has no row any more (taken over, held by this one from
   * now on). SQLite: every pending one.
   */
  takeNotifications(): Promise<Upload[]>;
  /**
   * Records how a delivery went, for the arrival at `arrivalAt` only: when a newer arrival was
   * recorded meanwhile, its notification is left as it is and false is returned.
   */
  recordNotification(uploadId: string, arrivalAt: EpochMs, outcome: NotificationOutcome): Promise<boolean>;

  // --- multipart progress of a task
  getMultipart(taskId: number): Promise<MultipartState | undefined>;
  /**
   * Replaces the task's multipart state with a new upload that has no parts yet. Throws
   * TaskNotHeldError when another instance holds the task.
   */
  saveMultipart(state: Omit<MultipartState, 'parts' | 'createdAt'>, now: EpochMs): Promise<void>;
  /**
   * Written as each part finishes; a part number seen again replaces the old row. Throws
   * TaskNotHeldError when another instance holds the task.
   */
  recordPart(taskId: number, part: UploadedPart): Promise<void>;
  deleteMultipart(taskId: number): Promise<void>;
  /** The multipart uploads still recorded for an upload's tasks (to abort them on cancel). */
  listMultipartsOfUpload(uploadId: string): Promise<MultipartState[]>;

  /**
   * For the health check: 'reachable' when a trivial query answers, 'unreachable' when it fails (or
   * the store is closed), 'missing' or 'replaced' when the database's file was removed or replaced
   * while the service ran (then every other call throws DatabaseUnavailableError).
   */
  health(): Promise<DatabaseHealth>;
  /**
   * Tells `listener` of the changes other instances make (see StoreChange), until the function
   * returned is called. PostgreSQL: LISTEN on the schema's channel, on a connection of its own
   * opened at the first listener. SQLite: never calls, since its one process wakes itself. A
   * listener that throws is logged and the others are still told.
   */
  onChange(listener: (change: StoreChange) => void): () => void;
  /**
   * Whether the other instances' changes are heard now (a listener was added and its connection
   * listens), so that the dispatcher may poll the queue slowly. Always false on SQLite.
   */
  readonly hearsChanges: boolean;
  close(): Promise<void>;
}

/**
 * A **store change**, told by another instance sharing the database: `tasks_ready` (tasks were
 * created, changed or requeued: claim now), `upload_created`, `upload_cancelled`; and
 * `look_again`, told after the connection that listens was lost and opened again, since changes
 * may have been missed meanwhile.
 */
export type StoreChange =
  | { kind: 'tasks_ready' }
  | { kind: 'upload_created'; uploadId: string }
  | { kind: 'upload_cancelled'; uploadId: string }
  | { kind: 'look_again' };

export type DatabaseHealth = 'reachable' | 'unreachable' | 'missing' | 'replaced';

/** Which watch leases an instance asks for (see Store.takeWatchLeases). */
export interface WatchLeaseRequest {
  /** The folders this instance can read (ALLOWED_SOURCE_ROOTS); null: any. */
  sourceRoots: readonly string[] | null;
  /** Only this upload (one just created); default: any live upload. */
  uploadId?: string;
}

/** An upload whose watch lease was taken, and the instance whose lease had expired before, if any. */
export interface TakenWatch {
  upload: Upload;
  previous: string | null;
}

/** How a completed task goes back to the queue when a check finds its upload wrong. */
export interface CompletedTaskRequeue {
  /** The etag the check compared against (the task's, when it was read). */
  checkedEtag: string | null;
  /** What was found, in words; becomes the task's last error. */
  reason: string;
  /**
   * The object at the key is no longer what was uploaded: etag, validation, sha256 and
   * uploadedSize are cleared, so that nothing is ever copied from it. False when only the local
   * file differs (the object is still the last upload).
   */
  forgetUpload: boolean;
  /**
   * Only the local file's ctime differs from the upload's version: it is hashed before it is sent
   * again (see FileTask.hashFirst). Ignored with forgetUpload. Default false.
   */
  hashFirst?: boolean;
}

/** The version a task returns to the queue with (see releaseTask). */
export interface TaskRelease {
  size: number;
  mtimeMs: number;
  ino: number | null;
  ctimeMs: number | null;
  observedAt: EpochMs;
  readyAt: EpochMs | null;
  /** The file was rewritten while it was streamed: upload it once settled from now on. */
  refuseStreaming?: boolean;
  /** The attempt did not count (S3 could not be reached): attempts goes back by one. */
  refundAttempt?: boolean;
}

/** Files and the sum of their sizes, by task status (see Store.queueCounts). */
export type QueueCounts = Record<TaskStatus, { files: number; bytes: number }>;

/** Why a task failed and when it is tried again (see failTask). */
export interface TaskFailure {
  message: string;
  kind: FailureKind;
  retryAt: EpochMs | null;
}

/** Another running process holds the database: one SQLite file serves one instance. */
export class DatabaseInUseError extends Error {
  constructor(readonly location: string) {
    super(
      `the database ${location} is in use by another running instance of the service: stop it, or give this one another DATABASE_URL`,
    );
    this.name = 'DatabaseInUseError';
  }
}

export class DuplicateUploadIdError extends Error {
  constructor(readonly uploadId: string) {
    super(`an upload with upload_id '${uploadId}' already exists`);
    this.name = 'DuplicateUploadIdError';
  }
}
