import type { ObjectProperties } from './object-properties.js';
import type { UploadPhase, UploadStatus, TaskStatus } from './status.js';

/** Times are milliseconds since the epoch everywhere inside the service; the API renders them as ISO 8601. */
export type EpochMs = number;

export interface Upload {
  uploadId: string;
  /** Absolute, normalised path of the watched folder. */
  sourceFolder: string;
  destinationBucket: string;
  /** '' or a prefix ending in '/' is not required: keys are built by objectKeyFor(). */
  destinationPrefix: string;
  /** Glob; '**' (every file) when the client gave none. */
  pattern: string;
  status: UploadStatus;
  createdAt: EpochMs;
  updatedAt: EpochMs;
  lastError: string | null;
  /** When its last file completed; null until one has. */
  lastCompletedAt: EpochMs | null;
  /**
   * true: the folder is watched and rescanned until the upload is cancelled; false: a one-shot
   * upload, scanned once, completed once every file it found is.
   */
  watch: boolean;
  /** When a one-shot upload became completed; null otherwise. */
  completedAt: EpochMs | null;
  /** What is done with an object already at a file's key when the file is first sent (see IfExists). */
  ifExists: IfExists;
  /**
   * When the listing of the existing objects under the prefix began, once it is complete (objects
   * put since may be missing from it); null while it is not, or never needed (ifExists 'overwrite').
   */
  listedAt: EpochMs | null;
  /** What every object of the upload carries: storage class, encryption, metadata, tags. */
  objectProperties: ObjectProperties;
  /**
   * The instance that holds the upload's watch lease (it alone scans and watches the folder), or
   * null: none does now (not yet taken, released by a clean stop, or the upload is no longer live).
   */
  watchedBy: string | null;
  /**
   * Globs (the pattern's syntax, over paths relative to the folder) of the upload's completion
   * markers: files uploaded only once every other known file of the upload is (see docs/run-folders.md).
   * Empty: none.
   */
  completeMarkers: string[];
  /** The key of the upload's manifest, or null when it writes none. */
  manifestKey: string | null;
  /** Where the upload's arrival is POSTed, or null. */
  notifyUrl: string | null;
  /** The folder was scanned whole once: until then its markers wait, since files may still be found. */
  scannedAt: EpochMs | null;
  /** The latest arrival: a marker uploaded, or a one-shot upload completed; null before the first. */
  arrival: Arrival | null;
  /** The manifest last written; null before the first. */
  manifest: ManifestRecord | null;
  /** The notification of the latest arrival; null without notifyUrl or before the first arrival. */
  notification: NotificationState | null;
}

/**
 * An **arrival**: the moment the upload's files are all in S3, told downstream. It is a marker
 * uploaded (last, after every other known file), or a one-shot upload completed with no marker.
 */
export interface Arrival {
  at: EpochMs;
  /** The files that are not markers completed by then (the files the marker waited for), and their bytes. */
  files: number;
  bytes: number;
  /** The marker's key; null for a one-shot upload completed with no marker. */
  markerKey: string | null;
}

/** A manifest written: the object listing every file of the upload uploaded (not the markers). */
export interface ManifestRecord {
  key: string;
  files: number;
  /** The sum of the files' sizes. */
  bytes: number;
  /** Hex SHA-256 of the manifest object's bytes. */
  sha256: string;
  /** When its listing began: a file completed later is not in it. */
  writtenAt: EpochMs;
}

/** One file of a manifest: a completed task that is not a marker. */
export interface ManifestEntry {
  taskId: number;
  key: string;
  size: number;
  /** null for a file skipped because an object was there whose SHA-256 is not known. */
  sha256: string | null;
  etag: string | null;
  mtimeMs: number;
}

export const NOTIFICATION_STATUSES = ['pending', 'delivered', 'failed'] as const;
/** pending: to be POSTed (again); delivered: the receiver answered 2xx; failed: every attempt failed. */
export type NotificationStatus = (typeof NOTIFICATION_STATUSES)[number];

/** Where the notification of an arrival stands. */
export interface NotificationState {
  status: NotificationStatus;
  /** The arrival it tells of (Arrival.at). */
  arrivalAt: EpochMs;
  attempts: number;
  lastError: string | null;
  lastAttemptAt: EpochMs | null;
  deliveredAt: EpochMs | null;
}

/** What a delivery attempt of a notification came to (see Store.recordNotification). */
export interface NotificationOutcome {
  status: NotificationStatus;
  attempts: number;
  lastError: string | null;
  at: EpochMs;
}

export const IF_EXISTS_CHOICES = ['skip_identical', 'skip', 'overwrite'] as const;
/**
 * The first time an upload sends a file, what happens to an object already at its key (put there
 * by another client, an earlier upload or another service): 'skip_identical': the file is not
 * sent when the object has the same size and checksum; 'skip': any object there is left alone;
 * 'overwrite': the file is sent whatever is there. Later versions of a file this upload sent are
 * always sent.
 */
export type IfExists = (typeof IF_EXISTS_CHOICES)[number];

/** An object already at a key, as a listing or a HEAD tells it. */
export interface ExistingObject {
  size: number;
  /** Bare and lower case (normalizeEtag). */
  etag: string;
  /** The SHA-256 this service stored in the object's metadata; undefined when not known. */
  sha256?: string | undefined;
}

/** One object of a listing of a prefix. */
export interface ListedObject extends ExistingObject {
  key: string;
}

export interface NewUpload {
  uploadId: string;
  sourceFolder: string;
  destinationBucket: string;
  destinationPrefix: string;
  pattern: string;
  /** See Upload.watch; default true. */
  watch?: boolean;
  /** See Upload.ifExists; default 'overwrite'. */
  ifExists?: IfExists;
  /** Checked (see checkObjectProperties); default none. */
  objectProperties?: ObjectProperties;
  /** See Upload.completeMarkers; default none. */
  completeMarkers?: string[];
  /** See Upload.manifestKey; default null. */
  manifestKey?: string | null;
  /** See Upload.notifyUrl; default null. */
  notifyUrl?: string | null;
}

/** How the uploaded bytes were checked against what S3 stored. */
export type ValidationMethod =
  /** S3's ETag equals the MD5 (or multipart MD5-of-MD5s) computed locally, and Content-MD5 was sent. */
  | 'etag'
  /** The object is encrypted with SSE-KMS or SSE-C, so its ETag is not an MD5: S3 verified every Content-MD5. */
  | 'content-md5';

/**
 * How a file's upload went: 'single': one PutObject; 'multipart': parts of a settled file;
 * 'streamed': parts sent as the file grew; 'append': the object's old bytes copied on the server,
 * the new ones sent; 'unchanged': nothing sent, the file hashed to the content last uploaded;
 * 'skipped': nothing sent, an object was already at the key (see IfExists).
 */
export type UploadMethod = 'single' | 'multipart' | 'streamed' | 'append' | 'unchanged' | 'skipped';

/**
 * What tells one version of a file from the next. Size and mtime change with an ordinary write;
 * the inode number changes when another file takes the path (mv, a save by rename, tar x), and the
 * ctime changes with every write, rename and metadata change and cannot be set back by a user, so a
 * file whose size and mtime were restored (cp -p, rsync -t, touch -d) is still told apart.
 * ino and ctimeMs are null in versions recorded before they were: those adopt the first ones seen.
 * The device is left out: NFS, FUSE and device-mapper mounts may get another number at each mount,
 * which would make every file look replaced after a reboot, and a file moved in from another file
 * system gets a new inode and ctime all the same. Times stay in milliseconds: Node.js gives them
 * with their sub-millisecond part (a double holds about a microsecond at today's dates), and the
 * nanoseconds of bigint stats would cost a BigInt per stat on the scan's hot path for no change it
 * could not already see.
 */
export interface FileVersion {
  size: number;
  mtimeMs: number;
  ino: number | null;
  ctimeMs: number | null;
}

export interface FileTask {
  taskId: number;
  uploadId: string;
  /** Path relative to the source folder, '/' separated. */
  relativePath: string;
  objectKey: string;
  /** The file version this task uploads (see FileVersion). */
  size: number;
  mtimeMs: number;
  ino: number | null;
  ctimeMs: number | null;
  status: TaskStatus;
  bytesUploaded: number;
  /** How many times the task was claimed for an upload. */
  attempts: number;
  lastError: string | null;
  /**
   * Earliest time the dispatcher may claim it (pending: the file has settled; failed: the requeue
   * time); null when it is never to be claimed (its upload is cancelled, or it failed for good:
   * its object key would be longer than S3 allows).
   */
  readyAt: EpochMs | null;
  /** When the file was stat'ed for the version this task holds: an older observation never replaces it. */
  observedAt: EpochMs;
  /**
   * The last upload completed for this path: the object's ETag, how it was checked, the SHA-256 of
   * the content sent and the object's size. Kept while a newer version of the file waits, as the
   * base an append copies from; null before the first upload completes. A skipped file holds
   * the ETag of the object found at the key, and its SHA-256 only when it was compared; its
   * validation is null.
   */
  etag: string | null;
  validation: ValidationMethod | null;
  sha256: string | null;
  uploadedSize: number | null;
  /** Why the file was not sent, when an object was already at its key (see IfExists); else null. */
  skipped: string | null;
  /**
   * The file was rewritten in place while it was uploaded as it grew: it is uploaded once settled,
   * not streamed, until an upload of it completes.
   */
  streamRefused: boolean;
  /**
   * Since the last upload, only the file's ctime changed (chmod, chown, a new hard link, or a
   * rewrite that restored size and mtime): the file is hashed first, and sent only if its content
   * is no longer the last upload's.
   */
  hashFirst: boolean;
  /**
   * It was in progress when the service last stopped without finishing it (killed), or when the
   * reaper took it back from an instance whose lease expired: its object may be in S3, not yet
   * recorded. Its next run asks S3 before sending it again.
   */
  interrupted: boolean;
  /** The instance that holds it while it is in_progress (see Store.instanceId); null otherwise. */
  claimedBy: string | null;
  /**
   * Its path matches one of the upload's completeMarkers: it is claimed only once the folder was
   * scanned whole and no other task of the upload is pending, in progress or failed.
   */
  marker: boolean;
  createdAt: EpochMs;
  updatedAt: EpochMs;
  completedAt: EpochMs | null;
  failedAt: EpochMs | null;
}

/** When a file version may be claimed: `readyAt`, or `settledAt` for a task that may not be streamed. */
export interface FileReadiness {
  readyAt: EpochMs;
  /** Once it has settled (nothing wrote to it for SETTLE_SECONDS); never earlier than readyAt. */
  settledAt: EpochMs;
}

/** A file as the watcher sees it. */
export interface ObservedFile extends FileVersion {
  relativePath: string;
  ino: number;
  ctimeMs: number;
  /**
   * When it was stat'ed (taken just before the stat call). A scan's batch may be recorded after a
   * newer event for the same file; the store keeps whichever observation is newer.
   */
  observedAt: EpochMs;
}

export interface TaskCounts {
  pending: number;
  in_progress: number;
  completed: number;
  failed: number;
  total: number;
}

export interface UploadTotals {
  files: TaskCounts;
  bytes: { total: number; uploaded: number };
}

/** An upload's totals, and the bytes of its pending and in-progress files not yet confirmed by S3. */
export interface UploadCounts extends UploadTotals {
  backlogBytes: number;
}

/** Where an upload stands, computed when asked (see progressOf in engine/progress.ts). */
export interface UploadProgress {
  phase: UploadPhase;
  /** Bytes S3 confirmed per second over the throughput window; 0 when nothing moved. */
  bytesPerSecond: number;
  /** Seconds until the backlog is sent at that rate; null when the rate is 0 or nothing is left. */
  etaSeconds: number | null;
  lastCompletedAt: EpochMs | null;
}

/**
 * What a finished upload put at the key, and the file version it was read from: for a file
 * streamed while it grew, the version it settled at.
 */
export interface CompletedUpload extends FileVersion {
  etag: string;
  /** null for a skipped file. */
  validation: ValidationMethod | null;
  /** Hex SHA-256 of the content sent; for a skipped file, of the object when it is known. */
  sha256: string | null;
  /** Why nothing was sent (see FileTask.skipped); absent when the file was uploaded. */
  skipped?: string | undefined;
}

/**
 * The S3 multipart upload a task is currently filling, with the file version its parts were cut
 * from: another version means the parts are stale. For a streamed upload, the version when it
 * started (its parts are checked against the bytes).
 */
export interface MultipartState extends FileVersion {
  taskId: number;
  s3UploadId: string;
  bucket: string;
  key: string;
  partSize: number;
  /**
   * Cut from the file as it grew (or appended to a copied object): every part but the last is
   * partSize long, counted from copiedBytes, and a resume checks the bytes rather than the version.
   */
  streamed: boolean;
  /** Bytes at the start of the object copied from the object already at the key (its first parts). */
  copiedBytes: number;
  /** The ETag of the object those bytes were copied from; null when nothing is copied. */
  copySourceEtag: string | null;
  parts: UploadedPart[];
  createdAt: EpochMs;
}

export interface UploadedPart {
  partNumber: number;
  etag: string;
  size: number;
}

/** What a scan of an upload's folder was: the first since the service started watching it, or a later one. */
export type ScanKind = 'initial' | 'rescan';

/** A scan of an upload's folder, as its monitor remembers it: in memory, the last one only. */
export interface ScanReport {
  kind: ScanKind;
  startedAt: EpochMs;
  /** null while the scan runs. */
  finishedAt: EpochMs | null;
  durationMs: number | null;
  /** Matching files found so far. */
  filesSeen: number;
  /** Tasks the scan created or changed: new files, and files whose version changed. */
  filesChanged: number;
  /**
   * Matching files skipped because their name, or a folder's name above them, is not valid UTF-8
   * (an S3 key must be): counted once the folder holding the name has been read.
   */
  filesNotUtf8: number;
  /** Why the scan failed (the folder is gone, say); null when it did not, or runs still. */
  error: string | null;
}

/** What asking for a rescan did: none is started while one runs, nor for a folder not watched. */
export type RescanOutcome = 'started' | 'already_running' | 'not_watched';
