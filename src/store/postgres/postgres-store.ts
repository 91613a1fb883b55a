// The Store on PostgreSQL: the same behaviour as the SQLite store (the contract suite in
// test/support/store-contract.ts is the spec), on a pool of connections, so that several
// instances share one queue: each registers (instances.ts), and holds the tasks it claims under
// leases that its heartbeat renews and any instance's reaper takes back (leases.ts). Each method is one statement, or one transaction where
// SQLite uses one. Two of the SQLite store's safeguards have no counterpart: a commit is durable
// once PostgreSQL confirms it (synchronous_commit is on by default), so no write needs a synced
// commit (withSyncedCommit); and there is no file whose removal a LocationCheck would notice.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
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
import type { FailureKind, UploadStatus, TaskStatus } from '../../domain/status.js';
import type { Beat, Instance, InstanceInfo, Reaped } from '../../domain/instance.js';
import type { Logger } from '../../logger.js';
import { redactPassword } from '../database-url.js';
import { DEFAULT_LEASE_MS } from '../store.js';
import type {
  ClaimOptions,
  CompletedTaskRequeue,
  DatabaseHealth,
  QueueCounts,
  Store,
  StoreChange,
  TaskFailure,
  TaskRelease,
  TakenWatch,
  WatchLeaseRequest,
} from '../store.js';
import * as arrivals from './arrivals.js';
import * as audit from './audit.js';
import { ChangeListener } from './change-listener.js';
import { claimReady } from './claim.js';
import { completeAll, type Completion } from './completions.js';
import {
  Sessions,
  connectionOf,
  type Connection,
  type ConnectionOptions,
  type Queryable,
} from './connection.js';
import * as existing from './existing-objects.js';
import { GroupCommit } from './group-commit.js';
import * as instances from './instances.js';
import * as leases from './leases.js';
import { migrate } from './migrations.js';
import * as multipart from './multipart.js';
import { channelOf, notify, type Notifier } from './notify.js';
import { recordObservedFiles } from './observed-files.js';
import * as queue from './queue.js';
import * as tasks from './tasks.js';
import { asDatabaseUnavailable, databaseUnavailableCause } from './unavailable.js';
import * as uploads from './uploads.js';
import * as watchLeases from './watch-leases.js';

export interface PostgresStoreOptions extends ConnectionOptions {
  /** Written as claimed_by on the tasks this store claims; default a random id. */
  instanceId?: string;
  /** How long the leases of the tasks it claims last, from the claim or the last heartbeat (LEASE_SECONDS). */
  leaseMs?: number;
  /** Where the connection that listens for other instances' changes says it was lost. */
  logger?: Logger;
}

/**
 * Opens a pool on the database at `databaseUrl` (postgres:// or postgresql://) and brings the
 * schema up to date, creating it when missing. Several stores may open the same empty schema at
 * once: the migrations run once (see migrate). Throws an Error that names the database without
 * its password, with the driver's error as its cause.
 */
export async function openPostgresStore(
  databaseUrl: string,
  options: PostgresStoreOptions = {},
): Promise<PostgresStore> {
  const instanceId = options.instanceId ?? randomUUID();
  let connection: Connection;
  try {
    connection = connectionOf(databaseUrl, {
      ...options,
      applicationName: options.applicationName ?? `s3-folder-uploader ${instanceId}`,
    });
  } catch (error) {
    throw cannotOpen(redactPassword(databaseUrl), error);
  }
  const { config, schema } = connection;
  const location = `${redactPassword(databaseUrl)} (schema ${schema})`;
  const pool = new pg.Pool(config);
  // An idle connection that breaks is dropped by the pool, and the next statement opens another:
  // one that cannot reports it then, as DatabaseUnavailableError.
  pool.on('error', () => undefined);
  const sessions = new Sessions(pool);
  try {
    await sessions.transaction((tx) => migrate(tx, schema, Date.now()));
  } catch (error) {
    await pool.end();
    throw cannotOpen(location, error);
  }
  const channel = channelOf(schema);
  const { max: _poolSize, ...clientConfig } = config;
  const changes = new ChangeListener({
    config: clientConfig,
    channel,
    instanceId,
    logger: options.logger,
    location,
  });
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  return new PostgresStore(pool, sessions, { instanceId, leaseMs, channel, changes });
}

/** `location`: the URL without its password, and the schema once known. */
function cannotOpen(location: string, error: unknown): Error {
  const reason = databaseUnavailableCause(error) ?? (error instanceof Error ? error.message : String(error));
  return new Error(`cannot open the PostgreSQL database ${location}: ${reason}`, { cause: error });
}

export class PostgresStore implements Store {
  /** Completions of files, one transaction for those that come together (see group-commit.ts). */
  private readonly completions: GroupCommit<Completion, boolean>;
  readonly instanceId: string;
  private readonly leaseMs: number;
  /** What registerInstance said, and when the instance first registered: to register again. */
  private registered: { info: InstanceInfo; startedAt: EpochMs } | undefined;
  private closed = false;
  /** Where this store's changes are told to the other instances (notify.ts). */
  private readonly notifier: Notifier;
  /** Where the other instances' changes are heard, once something listens. */
  private readonly changes: ChangeListener;

  constructor(
    private readonly pool: pg.Pool,
    private readonly sessions: Sessions,
    options: { instanceId: string; leaseMs: number; channel: string; changes: ChangeListener },
  ) {
    this.instanceId = options.instanceId;
    this.leaseMs = options.leaseMs;
    this.notifier = { channel: options.channel, instanceId: options.instanceId };
    this.changes = options.changes;
    const { instanceId } = this;
    this.completions = new GroupCommit(
      (batch) => this.run(() => this.sessions.transaction((tx) => completeAll(tx, instanceId, batch))),
      async (one) => {
        const [completed] = await this.run(() =>
          this.sessions.transaction((tx) => completeAll(tx, instanceId, [one])),
        );
        return completed === true;
      },
    );
  }

  // --- uploads
  async createUpload(upload: NewUpload, now: EpochMs): Promise<Upload> {
    return this.transaction(async (tx) => {
      const created = await uploads.create(tx, upload, now);
      await notify(tx, this.notifier, { kind: 'upload_created', uploadId: upload.uploadId });
      return created;
    });
  }

  async getUpload(uploadId: string): Promise<Upload | undefined> {
    return this.session((db) => uploads.get(db, uploadId));
  }

  async listUploads(statuses: readonly UploadStatus[]): Promise<Upload[]> {
    return this.session((db) => uploads.list(db, statuses));
  }

  async activateUpload(uploadId: string, now: EpochMs): Promise<boolean> {
    return this.session((db) => uploads.activate(db, uploadId, now));
  }

  /** With no marker gone up, the completion is the upload's arrival, recorded in the same transaction. */
  async completeUpload(uploadId: string, now: EpochMs): Promise<boolean> {
    return this.ending(uploadId, async (tx) => {
      const completed = await uploads.complete(tx, uploadId, now);
      if (completed) await arrivals.recordCompletion(tx, uploadId, now, this.instanceId);
      return completed;
    });
  }

  /** The other instances are told, to stop the files of the upload they have in flight. */
  async cancelUpload(uploadId: string, now: EpochMs): Promise<boolean> {
    return this.ending(uploadId, async (tx) => {
      const cancelled = await uploads.cancel(tx, uploadId, now);
      if (cancelled) await notify(tx, this.notifier, { kind: 'upload_cancelled', uploadId });
      return cancelled;
    });
  }

  /** An upload that uploads nothing more needs its listing no more: forgotten in the same transaction. */
  private ending(uploadId: string, end: (tx: Queryable) => Promise<boolean>): Promise<boolean> {
    return this.transaction(async (tx) => {
      const ended = await end(tx);
      if (ended) await existing.forget(tx, uploadId);
      return ended;
    });
  }

  async setUploadError(uploadId: string, message: string | null, now: EpochMs): Promise<void> {
    return this.session((db) => uploads.setError(db, uploadId, message, now));
  }

  async uploadTotals(uploadId: string): Promise<UploadTotals> {
    return this.session((db) => uploads.totals(db, uploadId));
  }

  async uploadCounts(uploadIds: readonly string[]): Promise<Map<string, UploadCounts>> {
    return this.session((db) => uploads.countsOf(db, uploadIds));
  }

  async queueCounts(): Promise<QueueCounts> {
    return this.session((db) => uploads.queueCounts(db));
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
    return this.transaction(async (tx) => {
      const changed = await recordObservedFiles(
        tx,
        uploadId,
        files,
        objectKeyFor,
        readinessOf,
        now,
        isMarker,
      );
      if (changed > 0) await notify(tx, this.notifier, { kind: 'tasks_ready' });
      return changed;
    });
  }

  async getTask(taskId: number): Promise<FileTask | undefined> {
    return this.session((db) => tasks.get(db, taskId));
  }

  async latestObservedAt(): Promise<EpochMs> {
    return this.session((db) => tasks.latestObservedAt(db));
  }

  async listTasks(
    uploadId: string,
    options: { status?: TaskStatus; limit: number; cursor?: string },
  ): Promise<{ items: FileTask[]; nextCursor: string | null }> {
    return this.session((db) => tasks.list(db, uploadId, options));
  }

  // --- the dispatcher's queue
  async claimReadyTasks(now: EpochMs, limit: number, options?: ClaimOptions): Promise<FileTask[]> {
    const claimant = { instanceId: this.instanceId, leaseMs: this.leaseMs };
    return this.run(() => claimReady(this.sessions, claimant, now, limit, options));
  }

  async nextReadyAt(sourceRoots?: readonly string[] | null): Promise<EpochMs | null> {
    return this.session((db) => queue.nextReadyAt(db, sourceRoots ?? null));
  }

  async requeueDueFailedTasks(now: EpochMs): Promise<number> {
    return this.session((db) => queue.requeueDueFailed(db, now, this.notifier));
  }

  async retryFailedTasks(uploadId: string, now: EpochMs): Promise<number> {
    return this.session((db) => queue.retryFailed(db, uploadId, now, this.notifier));
  }

  async retryFailedTasksOfKinds(kinds: readonly FailureKind[], now: EpochMs): Promise<number> {
    return this.session((db) => queue.retryFailedOfKinds(db, kinds, now, this.notifier));
  }

  async recoverInterruptedTasks(now: EpochMs): Promise<number> {
    return this.session((db) => leases.recoverUnheld(db, now, this.notifier));
  }

  // --- instances
  async registerInstance(info: InstanceInfo): Promise<void> {
    const registration = { instanceId: this.instanceId, info, leaseMs: this.leaseMs };
    const startedAt = await this.session((db) => instances.register(db, registration, null));
    this.registered = { info, startedAt };
  }

  async beat(): Promise<Beat> {
    const registered = this.registered;
    if (registered === undefined) throw new Error('beat: the instance is not registered (registerInstance)');
    const { beating, held, watching } = await this.session((db) =>
      instances.beat(db, this.instanceId, this.leaseMs),
    );
    if (beating) return { held, watching, registeredAgain: false };
    const registration = { instanceId: this.instanceId, info: registered.info, leaseMs: this.leaseMs };
    await this.session((db) => instances.register(db, registration, registered.startedAt));
    return { held, watching, registeredAgain: true };
  }

  async takeWatchLeases(request: WatchLeaseRequest): Promise<TakenWatch[]> {
    const { sourceRoots, uploadId } = request;
    return this.session((db) =>
      watchLeases.take(db, this.instanceId, this.leaseMs, sourceRoots, uploadId ?? null),
    );
  }

  async releaseWatchLeases(): Promise<void> {
    return this.session((db) => watchLeases.release(db, this.instanceId));
  }

  async reapExpiredLeases(now: EpochMs): Promise<Reaped> {
    return this.session(async (db) => ({
      tasks: await leases.reapExpired(db, now, this.notifier),
      instances: await instances.reapDead(db),
    }));
  }

  async listInstances(): Promise<Instance[]> {
    return this.session((db) => instances.listLive(db));
  }

  async removeInstance(): Promise<void> {
    await this.session((db) => instances.remove(db, this.instanceId));
    this.registered = undefined;
  }

  // --- one task's run
  async recordProgress(taskId: number, bytesUploaded: number, now: EpochMs, size?: number): Promise<void> {
    return this.session((db) => tasks.recordProgress(db, this.instanceId, taskId, bytesUploaded, now, size));
  }

  async completeTask(taskId: number, upload: CompletedUpload, now: EpochMs): Promise<boolean> {
    return this.completions.write({ taskId, upload, now });
  }

  /** The upload's last error becomes this failure, in the same transaction. */
  async failTask(taskId: number, failure: TaskFailure, now: EpochMs): Promise<boolean> {
    return this.transaction(async (tx) => {
      const failed = await tasks.fail(tx, this.instanceId, taskId, failure, now);
      if (failed) await uploads.takeErrorOfTask(tx, taskId, now);
      return failed;
    });
  }

  async releaseTask(
    taskId: number,
    version: TaskRelease,
    note: string | null,
    now: EpochMs,
  ): Promise<boolean> {
    return this.session((db) =>
      tasks.release(db, this.instanceId, taskId, version, note, now, this.notifier),
    );
  }

  async dropTask(taskId: number): Promise<void> {
    return this.session((db) => tasks.drop(db, this.instanceId, taskId));
  }

  // --- checks of what S3 holds
  async findTaskByPath(uploadId: string, relativePath: string): Promise<FileTask | undefined> {
    return this.session((db) => audit.findTaskByPath(db, uploadId, relativePath));
  }

  async requeueCompletedTask(taskId: number, requeue: CompletedTaskRequeue, now: EpochMs): Promise<boolean> {
    return this.session((db) => audit.requeueCompleted(db, taskId, requeue, now, this.notifier));
  }

  // --- existing objects
  async beginListing(uploadId: string): Promise<void> {
    return this.transaction((tx) => existing.begin(tx, uploadId));
  }

  async recordExistingObjects(uploadId: string, objects: readonly ListedObject[]): Promise<void> {
    return this.session((db) => existing.record(db, uploadId, objects));
  }

  async finishListing(uploadId: string, now: EpochMs): Promise<void> {
    return this.session((db) => existing.finish(db, uploadId, now));
  }

  async getExistingObject(uploadId: string, key: string): Promise<ExistingObject | undefined> {
    return this.session((db) => existing.get(db, uploadId, key));
  }

  // --- arrivals: markers, manifests, notifications
  /** The other instances are told, the first time, since the upload's markers may go now. */
  async markScanned(uploadId: string, now: EpochMs): Promise<void> {
    return this.session((db) => arrivals.markScanned(db, uploadId, now, this.notifier));
  }

  async manifestEntries(uploadId: string, afterTaskId: number, limit: number): Promise<ManifestEntry[]> {
    return this.session((db) => arrivals.manifestEntries(db, uploadId, afterTaskId, limit));
  }

  async recordManifest(uploadId: string, manifest: ManifestRecord): Promise<void> {
    return this.session((db) => arrivals.recordManifest(db, uploadId, manifest));
  }

  async takeNotifications(): Promise<Upload[]> {
    return this.session((db) => arrivals.takeNotifications(db, this.instanceId));
  }

  async recordNotification(
    uploadId: string,
    arrivalAt: EpochMs,
    outcome: NotificationOutcome,
  ): Promise<boolean> {
    return this.session((db) => arrivals.recordNotification(db, uploadId, arrivalAt, outcome));
  }

  // --- multipart progress of a task
  async getMultipart(taskId: number): Promise<MultipartState | undefined> {
    return this.session((db) => multipart.get(db, taskId));
  }

  async saveMultipart(state: Omit<MultipartState, 'parts' | 'createdAt'>, now: EpochMs): Promise<void> {
    return this.transaction((tx) => multipart.save(tx, this.instanceId, state, now));
  }

  async recordPart(taskId: number, part: UploadedPart): Promise<void> {
    return this.session((db) => multipart.recordPart(db, this.instanceId, taskId, part));
  }

  async deleteMultipart(taskId: number): Promise<void> {
    return this.session((db) => multipart.remove(db, taskId));
  }

  async listMultipartsOfUpload(uploadId: string): Promise<MultipartState[]> {
    return this.session((db) => multipart.listOfUpload(db, uploadId));
  }

  private session<T>(work: (db: Queryable) => Promise<T>): Promise<T> {
    return this.run(() => this.sessions.session(work));
  }

  private transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.run(() => this.sessions.transaction(work));
  }

  /** Runs `work`, turning a database that cannot be used right now into DatabaseUnavailableError. */
  private async run<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw asDatabaseUnavailable(error);
    }
  }

  /** 'missing' and 'replaced' are never said: they are about a file, and this database has none. */
  async health(): Promise<DatabaseHealth> {
    if (this.closed) return 'unreachable';
    try {
      await this.sessions.session((db) => db.query('SELECT 1'));
      return 'reachable';
    } catch {
      return 'unreachable';
    }
  }

  onChange(listener: (change: StoreChange) => void): () => void {
    return this.changes.add(listener);
  }

  /** Whether the other instances' changes are heard now: false before a listener, and while reconnecting. */
  get hearsChanges(): boolean {
    return this.changes.listening;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.changes.close();
    await this.completions.flush();
    await this.pool.end();
  }
}
