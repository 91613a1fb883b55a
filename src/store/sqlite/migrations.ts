// The schema, as numbered migrations. A migration is never edited once released: a change is a
// new entry at the end. The database records how many it has applied in PRAGMA user_version.
import type { Database } from 'better-sqlite3';
import { SchemaTooNewError } from '../errors.js';

// Keep the counts of a table of counts per upload and status (see INITIAL_SCHEMA) in step with file_tasks.
function countTriggers(counts: string): string {
  return `
CREATE TRIGGER file_tasks_count_insert AFTER INSERT ON file_tasks
BEGIN
  INSERT INTO ${counts} (upload_id, status, files, bytes_total, bytes_uploaded)
  VALUES (NEW.upload_id, NEW.status, 1, NEW.size, NEW.bytes_uploaded)
  ON CONFLICT (upload_id, status) DO UPDATE SET
    files = files + 1,
    bytes_total = bytes_total + excluded.bytes_total,
    bytes_uploaded = bytes_uploaded + excluded.bytes_uploaded;
END;

CREATE TRIGGER file_tasks_count_delete AFTER DELETE ON file_tasks
BEGIN
  UPDATE ${counts} SET
    files = files - 1,
    bytes_total = bytes_total - OLD.size,
    bytes_uploaded = bytes_uploaded - OLD.bytes_uploaded
  WHERE upload_id = OLD.upload_id AND status = OLD.status;
END;

CREATE TRIGGER file_tasks_count_update AFTER UPDATE OF upload_id, status, size, bytes_uploaded ON file_tasks
WHEN OLD.upload_id IS NOT NEW.upload_id OR OLD.status IS NOT NEW.status
  OR OLD.size IS NOT NEW.size OR OLD.bytes_uploaded IS NOT NEW.bytes_uploaded
BEGIN
  UPDATE ${counts} SET
    files = files - 1,
    bytes_total = bytes_total - OLD.size,
    bytes_uploaded = bytes_uploaded - OLD.bytes_uploaded
  WHERE upload_id = OLD.upload_id AND status = OLD.status;
  INSERT INTO ${counts} (upload_id, status, files, bytes_total, bytes_uploaded)
  VALUES (NEW.upload_id, NEW.status, 1, NEW.size, NEW.bytes_uploaded)
  ON CONFLICT (upload_id, status) DO UPDATE SET
    files = files + 1,
    bytes_total = bytes_total + excluded.bytes_total,
    bytes_uploaded = bytes_uploaded + excluded.bytes_uploaded;
END;
`;
}

const INITIAL_SCHEMA = `
CREATE TABLE upload_requests (
  upload_id          TEXT    PRIMARY KEY,
  source_folder      TEXT    NOT NULL,
  destination_bucket TEXT    NOT NULL,
  destination_prefix TEXT    NOT NULL,
  pattern            TEXT    NOT NULL,
  status             TEXT    NOT NULL CHECK (status IN ('pending', 'active', 'cancelled')),
  created_at         INTEGER NOT NULL,
  updated_at         INTEGER NOT NULL,
  last_error         TEXT
) STRICT;

-- AUTOINCREMENT so that a task id is never reused after dropTask: a runner or an API cursor that
-- still holds an old id can never reach another file's task.
CREATE TABLE file_tasks (
  task_id        INTEGER PRIMARY KEY AUTOINCREMENT,
  upload_id      TEXT    NOT NULL REFERENCES upload_requests (upload_id),
  relative_path  TEXT    NOT NULL,
  object_key     TEXT    NOT NULL,
  size           INTEGER NOT NULL CHECK (size >= 0),
  mtime_ms       REAL    NOT NULL,
  status         TEXT    NOT NULL CHECK (status IN ('pending', 'in_progress', 'completed', 'failed')),
  bytes_uploaded INTEGER NOT NULL DEFAULT 0 CHECK (bytes_uploaded >= 0),
  attempts       INTEGER NOT NULL DEFAULT 0,
  last_error     TEXT,
  -- NULL: never to be claimed (the upload is cancelled); the queue's range scans skip NULLs.
  ready_at       INTEGER,
  -- When the file was stat'ed for the version held here: an older observation never replaces it.
  observed_at    INTEGER NOT NULL,
  etag           TEXT,
  validation     TEXT    CHECK (validation IN ('etag', 'content-md5')),
  created_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL,
  completed_at   INTEGER,
  failed_at      INTEGER,
  UNIQUE (upload_id, relative_path)
) STRICT;

-- The dispatcher's claim and nextReadyAt walk this in ready_at order; upload_id makes it covering
-- for the "upload is active" filter, so no table row is read for a task that is not taken. The
-- tasks of a cancelled upload sort first with ready_at NULL, before the range every scan starts at.
CREATE INDEX file_tasks_queue ON file_tasks (status, ready_at, upload_id);
-- Paging one upload's tasks by task_id (the rowid ends every index), with or without a status.
CREATE INDEX file_tasks_by_request ON file_tasks (upload_id);
CREATE INDEX file_tasks_by_request_status ON file_tasks (upload_id, status);

CREATE TABLE multipart_uploads (
  task_id      INTEGER PRIMARY KEY REFERENCES file_tasks (task_id) ON DELETE CASCADE,
  s3_upload_id TEXT    NOT NULL,
  bucket       TEXT    NOT NULL,
  object_key   TEXT    NOT NULL,
  size         INTEGER NOT NULL,
  mtime_ms     REAL    NOT NULL,
  part_size    INTEGER NOT NULL CHECK (part_size > 0),
  created_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE multipart_parts (
  task_id     INTEGER NOT NULL REFERENCES multipart_uploads (task_id) ON DELETE CASCADE,
  part_number INTEGER NOT NULL CHECK (part_number BETWEEN 1 AND 10000),
  etag        TEXT    NOT NULL,
  size        INTEGER NOT NULL CHECK (size >= 0),
  PRIMARY KEY (task_id, part_number)
) STRICT, WITHOUT ROWID;

-- Counts and byte totals per upload and status, kept by the triggers below in the same
-- transaction as the change to file_tasks, so they are always exact and cost one small read
-- however many tasks an upload has.
CREATE TABLE request_task_counts (
  upload_id      TEXT    NOT NULL REFERENCES upload_requests (upload_id) ON DELETE CASCADE,
  status         TEXT    NOT NULL CHECK (status IN ('pending', 'in_progress', 'completed', 'failed')),
  files          INTEGER NOT NULL,
  bytes_total    INTEGER NOT NULL,
  bytes_uploaded INTEGER NOT NULL,
  PRIMARY KEY (upload_id, status)
) STRICT, WITHOUT ROWID;

${countTriggers('request_task_counts')}`;

// Growing files. A task remembers the object it last completed at its key (size, SHA-256 of the
// content; etag and validation already exist), kept while a newer version of the file waits, so
// that an append can copy the object's bytes on the server instead of sending them again. A
// multipart upload may start with parts copied from that object, and may have been cut from a file
// that was still growing: it is then resumed by checking the file's bytes, not its size and time.
const GROWING_FILES = `
ALTER TABLE file_tasks ADD COLUMN sha256 TEXT;
ALTER TABLE file_tasks ADD COLUMN uploaded_size INTEGER CHECK (uploaded_size >= 0);
-- 1 once the file was rewritten in place while it was uploaded as it grew: it is uploaded only once
-- settled from then on (until an upload of it completes), rather than restarted at every rewrite.
ALTER TABLE file_tasks ADD COLUMN stream_refused INTEGER NOT NULL DEFAULT 0 CHECK (stream_refused IN (0, 1));
ALTER TABLE multipart_uploads ADD COLUMN streamed INTEGER NOT NULL DEFAULT 0 CHECK (streamed IN (0, 1));
ALTER TABLE multipart_uploads ADD COLUMN copied_bytes INTEGER NOT NULL DEFAULT 0 CHECK (copied_bytes >= 0);
ALTER TABLE multipart_uploads ADD COLUMN copy_source_etag TEXT;
`;

// Outages. A failed task records why it failed (FailureKind in domain/status.ts), which decides
// when it is tried again; an upload's last error names the task it is about, so that it clears
// once that file has completed.
const FAILURE_KINDS = `
ALTER TABLE file_tasks ADD COLUMN failure_kind TEXT
  CHECK (failure_kind IN ('transient', 'configuration', 'permanent'));
ALTER TABLE upload_requests ADD COLUMN last_error_task_id INTEGER;
`;

// A fair queue. Claims are shared among the active uploads (see queue.ts): each upload's ready
// tasks are found in its own ready_at order, and served_turn records when an upload was last claimed
// from (the number of the claim; 0: never), so that uploads with as many tasks in progress take
// turns.
const FAIR_QUEUE = `
ALTER TABLE upload_requests ADD COLUMN served_turn INTEGER NOT NULL DEFAULT 0;
CREATE INDEX file_tasks_by_request_queue ON file_tasks (upload_id, status, ready_at);
-- The active uploads alone: a claim visits each of them, and no cancelled one.
CREATE INDEX upload_requests_active ON upload_requests (upload_id, served_turn) WHERE status = 'active';
`;

// A file version is also its inode number and ctime (see FileVersion), so that a file replaced by
// one of the same size and mtime is a new version. NULL in rows written before: the first
// observation records them without changing anything else. REAL, as mtime_ms: Node.js reports
// inode numbers as doubles, and an INTEGER column would refuse those above 2^63.
const FILE_IDENTITY = `
ALTER TABLE file_tasks ADD COLUMN ino REAL;
ALTER TABLE file_tasks ADD COLUMN ctime_ms REAL;
-- 1 while only the file's ctime differs from its last upload: hashed before it is sent again.
ALTER TABLE file_tasks ADD COLUMN hash_first INTEGER NOT NULL DEFAULT 0 CHECK (hash_first IN (0, 1));
ALTER TABLE multipart_uploads ADD COLUMN ino REAL;
ALTER TABLE multipart_uploads ADD COLUMN ctime_ms REAL;
`;

// One word per concept: the client's order is an upload everywhere, in the database too. SQLite
// updates the foreign keys that name a renamed table, but the triggers are made again: its rename
// rewrites an upsert's `excluded.` as the table's name (SQLite 3.53), which would corrupt the
// counts. An index cannot be renamed, so those named after the old word are built again (a few
// seconds for a million tasks, once).
const UPLOAD_WORDS = `
DROP TRIGGER file_tasks_count_insert;
DROP TRIGGER file_tasks_count_delete;
DROP TRIGGER file_tasks_count_update;
ALTER TABLE upload_requests RENAME TO uploads;
ALTER TABLE request_task_counts RENAME TO upload_task_counts;
${countTriggers('upload_task_counts')}
DROP INDEX upload_requests_active;
CREATE INDEX uploads_active ON uploads (upload_id, served_turn) WHERE status = 'active';
DROP INDEX file_tasks_by_request;
CREATE INDEX file_tasks_by_upload ON file_tasks (upload_id);
DROP INDEX file_tasks_by_request_status;
CREATE INDEX file_tasks_by_upload_status ON file_tasks (upload_id, status);
DROP INDEX file_tasks_by_request_queue;
CREATE INDEX file_tasks_by_upload_queue ON file_tasks (upload_id, status, ready_at);
`;

// When each upload's last file completed, kept on the upload by completeTask in the same
// transaction: the API shows it for every listed upload, where a MAX over its tasks would read
// them all. Filled once from the tasks completed before.
const LAST_COMPLETED = `
ALTER TABLE uploads ADD COLUMN last_completed_at INTEGER;
UPDATE uploads SET last_completed_at =
  (SELECT MAX(t.completed_at) FROM file_tasks t WHERE t.upload_id = uploads.upload_id);
`;

// One-shot uploads. An upload may be scanned once rather than watched (watch 0), and is then
// completed, with the time, once every file it found is. SQLite cannot alter a CHECK, so the table
// is made again and its rows copied (the procedure of SQLite's "ALTER TABLE" page: migrate() turns
// foreign keys off meanwhile, so that dropping the old table neither fails on nor cascades to the
// tasks and counts that name it, and checks them before each commit). The count triggers are made
// again for the reason UPLOAD_WORDS gives, as is the index of active uploads, dropped with the table.
const ONE_SHOT = `
DROP TRIGGER file_tasks_count_insert;
DROP TRIGGER file_tasks_count_delete;
DROP TRIGGER file_tasks_count_update;
CREATE TABLE uploads_new (
  upload_id          TEXT    PRIMARY KEY,
  source_folder      TEXT    NOT NULL,
  destination_bucket TEXT    NOT NULL,
  destination_prefix TEXT    NOT NULL,
  pattern            TEXT    NOT NULL,
  status             TEXT    NOT NULL CHECK (status IN ('pending', 'active', 'completed', 'cancelled')),
  created_at         INTEGER NOT NULL,
  updated_at         INTEGER NOT NULL,
  last_error         TEXT,
  last_error_task_id INTEGER,
  served_turn        INTEGER NOT NULL DEFAULT 0,
  last_completed_at  INTEGER,
  watch              INTEGER NOT NULL DEFAULT 1 CHECK (watch IN (0, 1)),
  completed_at       INTEGER,
  CHECK ((status = 'completed') = (completed_at IS NOT NULL))
) STRICT;
INSERT INTO uploads_new (upload_id, source_folder, destination_bucket, destination_prefix, pattern,
                         status, created_at, updated_at, last_error, last_error_task_id, served_turn,
                         last_completed_at)
SELECT upload_id, source_folder, destination_bucket, destination_prefix, pattern,
       status, created_at, updated_at, last_error, last_error_task_id, served_turn, last_completed_at
FROM uploads;
DROP TABLE uploads;
ALTER TABLE uploads_new RENAME TO uploads;
CREATE INDEX uploads_active ON uploads (upload_id, served_turn) WHERE status = 'active';
${countTriggers('upload_task_counts')}`;

// Existing objects. An upload says what to do with an object already at a file's key the first time
// it sends the file (if_exists; uploads made before keep overwriting, as they did). The objects
// listed under its prefix when it starts wait in existing_objects, a page at a time, until their
// file is completed: memory holds one page however many the prefix has. listed_at: the listing is
// complete. A file not sent because of what was there says why (skipped).
const EXISTING_OBJECTS = `
ALTER TABLE uploads ADD COLUMN if_exists TEXT NOT NULL DEFAULT 'overwrite'
  CHECK (if_exists IN ('skip_identical', 'skip', 'overwrite'));
ALTER TABLE uploads ADD COLUMN listed_at INTEGER;
ALTER TABLE file_tasks ADD COLUMN skipped TEXT;
CREATE TABLE existing_objects (
  upload_id  TEXT    NOT NULL REFERENCES uploads (upload_id) ON DELETE CASCADE,
  object_key TEXT    NOT NULL,
  size       INTEGER NOT NULL CHECK (size >= 0),
  etag       TEXT    NOT NULL,
  PRIMARY KEY (upload_id, object_key)
) STRICT, WITHOUT ROWID;
`;

// What every object of an upload carries (storage class, encryption, user metadata, tags);
// metadata and tags as JSON objects of strings.
const OBJECT_PROPERTIES = `
ALTER TABLE uploads ADD COLUMN storage_class TEXT;
ALTER TABLE uploads ADD COLUMN sse TEXT CHECK (sse IN ('AES256', 'aws:kms'));
ALTER TABLE uploads ADD COLUMN sse_kms_key_id TEXT CHECK (sse_kms_key_id IS NULL OR sse = 'aws:kms');
ALTER TABLE uploads ADD COLUMN object_metadata TEXT NOT NULL DEFAULT '{}'
  CHECK (json_valid(object_metadata) AND json_type(object_metadata) = 'object');
ALTER TABLE uploads ADD COLUMN object_tags TEXT NOT NULL DEFAULT '{}'
  CHECK (json_valid(object_tags) AND json_type(object_tags) = 'object');
`;

// A task that was in progress when the service stopped without a word (SIGKILL, a power cut): its
// object may be in S3 already, put just before the stop and not yet recorded. Until it completes,
// its next run asks S3 first (see ExistingObjects.lookup).
const INTERRUPTED = `
ALTER TABLE file_tasks ADD COLUMN interrupted INTEGER NOT NULL DEFAULT 0 CHECK (interrupted IN (0, 1));
`;

// The process that watches each live upload (see watch-leases.ts): one process serves a file, so
// there is no expiry, and a start takes over what a crash left named.
const WATCH_LEASES = `
ALTER TABLE uploads ADD COLUMN watched_by TEXT;
`;

// Arrivals (see docs/run-folders.md). An upload may name its completion markers (globs, a JSON
// array), the key of its manifest and where its arrival is POSTed; scanned_at: its folder was
// scanned whole. Its latest arrival, the manifest last written and the notification of that
// arrival are columns of its row, each there whole or not at all (the CHECKs), and the
// notification is held by the instance that delivers it. A task is a marker or not from its
// creation on. The partial index holds the markers alone (a few per upload): an arrival counts
// the completed ones through it, never the upload's other tasks.
const ARRIVALS = `
ALTER TABLE uploads ADD COLUMN complete_markers TEXT NOT NULL DEFAULT '[]'
  CHECK (json_valid(complete_markers) AND json_type(complete_markers) = 'array');
ALTER TABLE uploads ADD COLUMN manifest_key TEXT;
ALTER TABLE uploads ADD COLUMN notify_url TEXT;
ALTER TABLE uploads ADD COLUMN scanned_at INTEGER;
ALTER TABLE uploads ADD COLUMN arrival_at INTEGER;
ALTER TABLE uploads ADD COLUMN arrival_files INTEGER CHECK (arrival_files >= 0);
ALTER TABLE uploads ADD COLUMN arrival_bytes INTEGER CHECK (arrival_bytes >= 0);
ALTER TABLE uploads ADD COLUMN arrival_marker_key TEXT
  CHECK ((arrival_at IS NULL) = (arrival_files IS NULL) AND (arrival_at IS NULL) = (arrival_bytes IS NULL)
         AND (arrival_at IS NOT NULL OR arrival_marker_key IS NULL));
ALTER TABLE uploads ADD COLUMN manifest_written_key TEXT;
ALTER TABLE uploads ADD COLUMN manifest_files INTEGER CHECK (manifest_files >= 0);
ALTER TABLE uploads ADD COLUMN manifest_bytes INTEGER CHECK (manifest_bytes >= 0);
ALTER TABLE uploads ADD COLUMN manifest_sha256 TEXT;
ALTER TABLE uploads ADD COLUMN manifest_written_at INTEGER
  CHECK ((manifest_written_at IS NULL) = (manifest_written_key IS NULL)
         AND (manifest_written_at IS NULL) = (manifest_files IS NULL)
         AND (manifest_written_at IS NULL) = (manifest_bytes IS NULL)
         AND (manifest_written_at IS NULL) = (manifest_sha256 IS NULL));
ALTER TABLE uploads ADD COLUMN notification_status TEXT
  CHECK (notification_status IN ('pending', 'delivered', 'failed'));
ALTER TABLE uploads ADD COLUMN notification_arrival_at INTEGER;
ALTER TABLE uploads ADD COLUMN notification_attempts INTEGER CHECK (notification_attempts >= 0);
ALTER TABLE uploads ADD COLUMN notification_last_error TEXT;
ALTER TABLE uploads ADD COLUMN notification_last_attempt_at INTEGER;
ALTER TABLE uploads ADD COLUMN notification_delivered_at INTEGER;
ALTER TABLE uploads ADD COLUMN notification_held_by TEXT
  CHECK ((notification_status IS NULL) = (notification_arrival_at IS NULL)
         AND (notification_status IS NULL) = (notification_attempts IS NULL));
ALTER TABLE file_tasks ADD COLUMN is_marker INTEGER NOT NULL DEFAULT 0 CHECK (is_marker IN (0, 1));
CREATE INDEX file_tasks_markers ON file_tasks (upload_id, status) WHERE is_marker = 1;
`;

/** Applied in order; MIGRATIONS[n] takes the schema from version n to n + 1. */
export const MIGRATIONS: readonly string[] = [
  INITIAL_SCHEMA,
  GROWING_FILES,
  FAILURE_KINDS,
  FAIR_QUEUE,
  FILE_IDENTITY,
  UPLOAD_WORDS,
  LAST_COMPLETED,
  ONE_SHOT,
  EXISTING_OBJECTS,
  OBJECT_PROPERTIES,
  INTERRUPTED,
  WATCH_LEASES,
  ARRIVALS,
];

function schemaVersion(db: Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/**
 * Brings the schema up to date, one transaction per migration, so that a crash leaves the file at
 * one version or the next. The connection holds the file exclusively (see connection.ts), so no
 * other process migrates it meanwhile. Foreign keys are off while migrations run (a table made
 * again is dropped and replaced; the pragma cannot change inside a transaction), and each
 * migration is checked against them before it commits. Returns the schema version.
 */
export function migrate(db: Database): number {
  const applyNext = db.transaction((): boolean => {
    const version = schemaVersion(db);
    if (version > MIGRATIONS.length) throw new SchemaTooNewError(version, MIGRATIONS.length);
    const migration = MIGRATIONS[version];
    if (migration === undefined) return false;
    db.exec(migration);
    const broken = db.pragma('foreign_key_check') as unknown[];
    if (broken.length > 0) {
      throw new Error(`migration ${version + 1} left ${broken.length} rows whose foreign keys do not hold`);
    }
    // user_version lives in the file header, which is written in the same transaction.
    db.pragma(`user_version = ${version + 1}`);
    return true;
  });
  const foreignKeys = db.pragma('foreign_keys', { simple: true }) as number;
  db.pragma('foreign_keys = OFF');
  try {
    while (applyNext.immediate()) {
      // one migration per iteration
    }
  } finally {
    db.pragma(`foreign_keys = ${foreignKeys === 1 ? 'ON' : 'OFF'}`);
  }
  return schemaVersion(db);
}
