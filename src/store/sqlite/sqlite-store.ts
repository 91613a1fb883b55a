// The Store on an embedded SQLite file. better-sqlite3 is synchronous: each method runs its
// statements to the end before returning, and the async signatures only let a PostgreSQL
// implementation share the interface (and turn throws into rejections).
import { randomUUID } from 'node:crypto';
import type { Database, Statement } from 'better-sqlite3';
import type {
  CompletedUpload,
  EpochMs,
  ExistingObject,
  FileReadiness,
  FileTask,
  ListedObject,
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
} from '../../domain/model.js';
import { DatabaseLostError } from '../../domain/errors.js';
import type { FailureKind, UploadStatus, TaskStatus } from '../../domain/status.js';
import type { Beat, Instance, InstanceInfo, Reaped } from '../../domain/instance.js';
import { DEFAULT_LEASE_MS } from '../store.js';
import type {
  ClaimOptions,
  CompletedTaskRequeue,
  DatabaseHealth,
  QueueCounts,
  Store,
  TaskFailure,
  TaskRelease,
  TakenWatch,
  WatchLeaseRequest,
} from '../store.js';
import { arrivalQueries, type ArrivalQueries } from './arrivals.js';
import { auditQueries } from './audit.js';
import type { AuditQueries } from './audit.js';
import { openDatabase, withSyncedCommit } from './connection.js';
import { OwnInstance } from './instance.js';
import { LocationCheck, type DatabaseLoss } from './location-check.js';
import { multipartQueries } from './multipart.js';
import type { MultipartQueries } from './multipart.js';
import type { PathLock } from './path-lock.js';
import { queueQueries } from './queue.js';
import type { QueueQueries } from './queue.js';
import { existingObjectQueries, type ExistingObjectQueries } from './existing-objects.js';
import { uploadQueries } from './uploads.js';
import type { UploadQueries } from './uploads.js';
import { taskQueries } from './tasks.js';
import type { TaskQueries } from './tasks.js';
import { asDatabaseUnavailable } from './unavailable.js';
import { GroupCommit } from './group-commit.js';
import { watchLeaseQueries, type WatchLeaseQueries } from './watch-leases.js';

export interface SqliteStoreOptions {
  /** Called once when the database's file or its log is found removed or replaced (see LocationCheck). */
  lost?: (loss: DatabaseLoss) => void;
  /** Released when the store closes: the lock on the database's path (see lockDatabasePath). */
  pathLock?: PathLock;
  /** This store's instance; default a random id. */
  instanceId?: string;
  /** LEASE_SECONDS, as GET /instances shows it (SQLite itself has no leases: see instance.ts). */
  leaseMs?: number;
}

/**
 * Opens (creating it and its folder when missing), locks for this process alone and migrates the
 * SQLite file at filePath. Throws DatabaseInUseError when another running instance holds it. From
 * then on its path is looked at every second: once the file is removed or replaced, the store
 * refuses every call (see LocationCheck).
 */
export function openSqliteStore(filePath: string, options: SqliteStoreOptions = {}): SqliteStore {
  const db = openDatabase(filePath);
  try {
    return new SqliteStore(db, { ...options, location: new LocationCheck(filePath) });
  } catch (error) {
    db.close();
    throw error;
  }
}

/** One file's completion, as completeTask is given it. */
interface Completion {
  taskId: number;
  result: CompletedUpload;
  now: EpochMs;
}

export class SqliteStore implements Store {
  private readonly uploads: UploadQueries;
  private readonly tasks: TaskQueries;
  private readonly queue: QueueQueries;
  private readonly multiparts: MultipartQueries;
  private readonly audit: AuditQueries;
  private readonly existing: ExistingObjectQueries;
  private readonly arrivals: ArrivalQueries;
  private readonly selectOne: Statement<[], number>;
  /** Completions of files, one transaction for those that come together (see group-commit.ts). */
  private readonly completions: GroupCommit<Completion, boolean>;
  private readonly failAndReport: (taskId: number, failure: TaskFailure, now: EpochMs) => boolean;

  private readonly location: LocationCheck | undefined;
  private readonly pathLock: PathLock | undefined;
  private readonly instance: OwnInstance;
  private readonly watchLeases: WatchLeaseQueries;
  readonly instanceId: string;

  /** `location`: the check of the file's path, started here (none for a database given as it is). */
  constructor(
    private readonly db: Database,
    options: SqliteStoreOptions & { location?: LocationCheck } = {},
  ) {
    this.location = options.location;
    this.pathLock = options.pathLock;
    this.instanceId = options.instanceId ?? randomUUID();
    this.instance = new OwnInstance(this.instanceId, options.leaseMs ?? DEFAULT_LEASE_MS, db);
    this.uploads = uploadQueries(db);
    this.tasks = taskQueries(db);
    this.queue = queueQueries(db);
    this.multiparts = multipartQueries(db);
    this.audit = auditQueries(db);
    this.existing = existingObjectQueries(db);
    this.arrivals = arrivalQueries(db);
    this.watchLeases = watchLeaseQueries(db);
    this.selectOne = db.prepare<[], number>('SELECT 1').pluck();
    // One transaction: a completed task never keeps a multipart upload that would look resumable,
    // nor its upload an error about it, and a marker's arrival is recorded with it.
    const completeAndForgetMultipart = (completion: Completion): boolean => {
      const { taskId, result, now } = completion;
      const completed = this.tasks.complete(taskId, result, now);
      if (completed === undefined) return false;
      this.multiparts.delete(taskId);
      this.uploads.forgetErrorOfTask(taskId, now);
      this.uploads.markCompletion(taskId, now);
      this.existing.forgetKeyOf(taskId);
      if (completed.marker)
        this.arrivals.recordMarker(completed.uploadId, completed.objectKey, now, this.instanceId);
      return true;
    };
    const completeOne = db.transaction(completeAndForgetMultipart);
    const completeAll = db.transaction((completions: readonly Completion[]) =>
      completions.map(completeAndForgetMultipart),
    );
    this.completions = new GroupCommit(
      (completions) => this.run(() => completeAll(completions)),
      (completion) => this.run(() => completeOne(completion)),
    );
    this.failAndReport = db.transaction((taskId, failure, now) => {
      const failed = this.tasks.fail(taskId, failure, now);
      if (failed) this.uploads.takeErrorOfTask(taskId, now);
      return failed;
    });
    this.location?.start((loss) => options.lost?.(loss));
  }

  // --- uploads
  async createUpload(upload: NewUpload, now: EpochMs): Promise<Upload> {
    return this.runKept(() => withSyncedCommit(this.db, () => this.uploads.create(upload, now)));
  }

  async getUpload(uploadId: string): Promise<Upload | undefined> {
    return this.run(() => this.uploads.get(uploadId));
  }

  async listUploads(statuses: readonly UploadStatus[]): Promise<Upload[]> {
    return this.run(() => this.uploads.list(statuses));
  }

  async activateUpload(uploadId: string, now: EpochMs): Promise<boolean> {
    return this.run(() => this.uploads.activate(uploadId, now));
  }

  /** With no marker gone up, the completion is the upload's arrival, recorded in the same transaction. */
  async completeUpload(uploadId: string, now: EpochMs): Promise<boolean> {
    const complete = (): boolean => {
      const completed = this.uploads.complete(uploadId, now);
      if (completed) this.arrivals.recordCompletion(uploadId, now, this.instanceId);
      return completed;
    };
    return this.runKept(() => withSyncedCommit(this.db, () => this.ending(uploadId, complete)));
  }

  async cancelUpload(uploadId: string, now: EpochMs): Promise<boolean> {
    return this.runKept(() =>
      withSyncedCommit(this.db, () => this.ending(uploadId, () => this.uploads.cancel(uploadId, now))),
    );
  }

  /** An upload that uploads nothing more needs its listing no more: forgotten in the same transaction. */
  private ending(uploadId: string, end: () => boolean): boolean {
    return this.db.transaction(() => {
      const ended = end();
      if (ended) this.existing.forget(uploadId);
      return ended;
    })();
  }

  async setUploadError(uploadId: string, message: string | null, now: EpochMs): Promise<void> {
    this.run(() => this.uploads.setError(uploadId, message, now));
  }

  async uploadTotals(uploadId: string): Promise<UploadTotals> {
    return this.run(() => this.uploads.totals(uploadId));
  }

  async uploadCounts(uploadIds: readonly string[]): Promise<Map<string, UploadCounts>> {
    return this.run(() => this.uploads.countsOf(uploadIds));
  }

  async queueCounts(): Promise<QueueCounts> {
    return this.run(() => this.uploads.queueCounts());
  }

  // --- file tasks, as the monitor sees files
  async recordObservedFiles(
    uploadId: string,
    files: readonly ObservedFile[],
    objectKeyFor: (relativePath: string) => string,
    readinessOf: (file: ObservedFile) => FileReadiness,
    now: EpochMs,
    isMarker?: (relativePath: string) => boolean,
  ): Promise<number> {
    return this.run(() =>
      this.tasks.recordObservedFiles(uploadId, files, objectKeyFor, readinessOf, now, isMarker),
    );
  }

  async getTask(taskId: number): Promise<FileTask | undefined> {
    return this.run(() => this.held(this.tasks.get(taskId)));
  }

  async latestObservedAt(): Promise<EpochMs> {
    return this.run(() => this.tasks.latestObservedAt());
  }

  async listTasks(
    uploadId: string,
    options: { status?: TaskStatus; limit: number; cursor?: string },
  ): Promise<{ items: FileTask[]; nextCursor: string | null }> {
    return this.run(() => {
      const page = this.tasks.list(uploadId, options);
      return { ...page, items: page.items.map((task) => this.held(task)) };
    });
  }

  /** The task as this store's instance holds it: every task in progress (see instance.ts). */
  private held<T extends FileTask | undefined>(task: T): T {
    if (task === undefined || task.status !== 'in_progress') return task;
    return { ...task, claimedBy: this.instanceId };
  }

  // --- the dispatcher's queue
  async claimReadyTasks(now: EpochMs, limit: number, options?: ClaimOptions): Promise<FileTask[]> {
    return this.run(() => this.queue.claimReady(now, limit, options).map((task) => this.held(task)));
  }

  async nextReadyAt(sourceRoots?: readonly string[] | null): Promise<EpochMs | null> {
    return this.run(() => this.queue.nextReadyAt(sourceRoots));
  }

  async requeueDueFailedTasks(now: EpochMs): Promise<number> {
    return this.run(() => this.queue.requeueDueFailed(now));
  }

  async retryFailedTasks(uploadId: string, now: EpochMs): Promise<number> {
    return this.run(() => this.queue.retryFailed(uploadId, now));
  }

  async retryFailedTasksOfKinds(kinds: readonly FailureKind[], now: EpochMs): Promise<number> {
    return this.run(() => this.queue.retryFailedOfKinds(kinds, now));
  }

  async recoverInterruptedTasks(now: EpochMs): Promise<number> {
    return this.run(() => this.queue.recoverInterrupted(now));
  }

  // --- instances: this process alone (see instance.ts)
  async registerInstance(info: InstanceInfo): Promise<void> {
    this.instance.register(info);
  }

  async beat(): Promise<Beat> {
    return this.run(() => ({
      ...this.instance.beat(),
      watching: this.watchLeases.watching(this.instanceId),
    }));
  }

  /** Nothing to reap: no other process can hold this file's tasks, nor take them. */
  async reapExpiredLeases(): Promise<Reaped> {
    return { tasks: [], instances: [] };
  }

  async listInstances(): Promise<Instance[]> {
    return this.run(() => this.instance.list());
  }

  async removeInstance(): Promise<void> {
    this.instance.remove();
  }

  // --- watch leases: this process watches every live upload under its roots (see watch-leases.ts)
  async takeWatchLeases(request: WatchLeaseRequest): Promise<TakenWatch[]> {
    return this.run(() => this.watchLeases.take(this.instanceId, request));
  }

  async releaseWatchLeases(): Promise<void> {
    this.run(() => this.watchLeases.release(this.instanceId));
  }

  // --- one task's run
  async recordProgress(taskId: number, bytesUploaded: number, now: EpochMs, size?: number): Promise<void> {
    this.run(() => this.tasks.recordProgress(taskId, bytesUploaded, now, size));
  }

  async completeTask(taskId: number, upload: CompletedUpload, now: EpochMs): Promise<boolean> {
    return this.completions.write({ taskId, result: upload, now });
  }

  async failTask(taskId: number, failure: TaskFailure, now: EpochMs): Promise<boolean> {
    return this.run(() => this.failAndReport(taskId, failure, now));
  }

  async releaseTask(
    taskId: number,
    version: TaskRelease,
    note: string | null,
    now: EpochMs,
  ): Promise<boolean> {
    return this.run(() => this.tasks.release(taskId, version, note, now));
  }

  async dropTask(taskId: number): Promise<void> {
    this.run(() => this.tasks.drop(taskId));
  }

  // --- checks of what S3 holds
  async findTaskByPath(uploadId: string, relativePath: string): Promise<FileTask | undefined> {
    return this.run(() => this.held(this.audit.findTaskByPath(uploadId, relativePath)));
  }

  async requeueCompletedTask(taskId: number, requeue: CompletedTaskRequeue, now: EpochMs): Promise<boolean> {
    return this.run(() => this.audit.requeueCompleted(taskId, requeue, now));
  }

  // --- existing objects
  async beginListing(uploadId: string): Promise<void> {
    this.run(() => this.existing.begin(uploadId));
  }

  async recordExistingObjects(uploadId: string, objects: readonly ListedObject[]): Promise<void> {
    this.run(() => this.existing.record(uploadId, objects));
  }

  async finishListing(uploadId: string, now: EpochMs): Promise<void> {
    this.run(() => this.existing.finish(uploadId, now));
  }

  async getExistingObject(uploadId: string, key: string): Promise<ExistingObject | undefined> {
    return this.run(() => this.existing.get(uploadId, key));
  }

  // --- arrivals: markers, manifests, notifications
  async markScanned(uploadId: string, now: EpochMs): Promise<void> {
    this.run(() => this.arrivals.markScanned(uploadId, now));
  }

  async manifestEntries(uploadId: string, afterTaskId: number, limit: number): Promise<ManifestEntry[]> {
    return this.run(() => this.arrivals.manifestEntries(uploadId, afterTaskId, limit));
  }

  async recordManifest(uploadId: string, manifest: ManifestRecord): Promise<void> {
    this.run(() => this.arrivals.recordManifest(uploadId, manifest));
  }

  /** Every pending notification: one process serves the file. */
  async takeNotifications(): Promise<Upload[]> {
    return this.run(() => this.arrivals.takeNotifications());
  }

  async recordNotification(
    uploadId: string,
    arrivalAt: EpochMs,
    outcome: NotificationOutcome,
  ): Promise<boolean> {
    return this.run(() => this.arrivals.recordNotification(uploadId, arrivalAt, outcome));
  }

  // --- multipart progress of a task
  async getMultipart(taskId: number): Promise<MultipartState | undefined> {
    return this.run(() => this.multiparts.get(taskId));
  }

  async saveMultipart(state: Omit<MultipartState, 'parts' | 'createdAt'>, now: EpochMs): Promise<void> {
    this.run(() => this.multiparts.save(state, now));
  }

  async recordPart(taskId: number, part: UploadedPart): Promise<void> {
    this.run(() => this.multiparts.recordPart(taskId, part));
  }

  async deleteMultipart(taskId: number): Promise<void> {
    this.run(() => this.multiparts.delete(taskId));
  }

  async listMultipartsOfUpload(uploadId: string): Promise<MultipartState[]> {
    return this.run(() => this.multiparts.listOfUpload(uploadId));
  }

  /**
   * Runs a query, turning a database that cannot be used right now into DatabaseUnavailableError.
   * Once the file was found removed or replaced, nothing runs: writes would be lost, and reads
   * would show a state that no longer exists anywhere but in this process.
   */
  private run<T>(query: () => T): T {
    const loss = this.location?.lost;
    if (loss) throw new DatabaseLostError(loss.reason);
    try {
      return query();
    } catch (error) {
      throw asDatabaseUnavailable(error);
    }
  }

  /**
   * For the writes a client is told are kept and nothing would redo: the path is looked at again
   * after the commit, so that a file removed before it ended (and not yet seen by the check that
   * runs every second) is a 503 rather than a 201 for an upload kept nowhere.
   */
  private runKept<T>(write: () => T): T {
    const result = this.run(write);
    const loss = this.location?.checkNow();
    if (loss) throw new DatabaseLostError(loss.reason);
    return result;
  }

  async health(): Promise<DatabaseHealth> {
    const loss = this.location?.lost;
    if (loss) return loss.kind;
    try {
      return this.selectOne.get() === 1 ? 'reachable' : 'unreachable';
    } catch {
      return 'unreachable';
    }
  }

  /** One process: the engine wakes itself for what it records, and no other instance changes anything. */
  onChange(): () => void {
    return () => undefined;
  }

  readonly hearsChanges = false;

  async close(): Promise<void> {
    if (this.db.open) this.completions.flush();
    this.location?.stop();
    // No PRAGMA optimize here: the statistics it gathers could move the planner off the indexes
    // the queue's statements were written for, and these plans are right without them.
    if (this.db.open) this.db.close();
    await this.pathLock?.release();
  }
}
