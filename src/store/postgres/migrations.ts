// The schema, as numbered migrations. A migration is never edited once released: a change is a
// new entry at the end. The schema records each one it has applied in schema_migrations.
//
// The tables and their words are SQLite's (see ../sqlite/migrations.ts for why each exists), in
// PostgreSQL's types: bigint for epoch milliseconds, sizes and counts, double precision where
// Node.js reports doubles (mtime, ctime, inode numbers), boolean for flags, json for the object
// properties (json rather than jsonb: the text is kept as given, key order included).
import { SchemaTooNewError } from '../errors.js';
import type { Queryable } from './connection.js';

/**
 * The advisory lock that migrations hold, one key for every schema of the database: instances
 * that start at once on an empty database migrate one after the other, and each one after the
 * first finds the work done.
 */
const MIGRATION_LOCK_KEY = 0x5346_5501; // "SFU" 1

/**
 * Keeps upload_task_counts in step with file_tasks: once per statement, from the rows it changed
 * (its transition tables), with one write per upload and status, in (upload_id, status) order. A
 * statement-level trigger writes each count row once however many tasks changed, and always in
 * the same order, so that two transactions writing counts never wait on each other in a circle
 * (see locks.ts). A change that moves no count (a new ready_at) writes nothing. The function
 * keeps the schema's search_path, whatever the session that fires it has.
 */
function countTrigger(event: 'INSERT' | 'UPDATE' | 'DELETE'): string {
  const added =
    'SELECT upload_id, status, 1 AS files, size AS bytes, bytes_uploaded AS uploaded FROM new_tasks';
  const removed =
    'SELECT upload_id, status, -1 AS files, -size AS bytes, -bytes_uploaded AS uploaded FROM old_tasks';
  const changes = { INSERT: added, DELETE: removed, UPDATE: `${added} UNION ALL ${removed}` }[event];
  const transitions = {
    INSERT: 'NEW TABLE AS new_tasks',
    DELETE: 'OLD TABLE AS old_tasks',
    UPDATE: 'OLD TABLE AS old_tasks NEW TABLE AS new_tasks',
  }[event];
  const name = `file_tasks_count_${event.toLowerCase()}`;
  return `
CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
  INSERT INTO upload_task_counts AS c (upload_id, status, files, bytes_total, bytes_uploaded)
  SELECT upload_id, status, SUM(files), SUM(bytes), SUM(uploaded)
  FROM (${changes}) AS change
  GROUP BY upload_id, status
  HAVING SUM(files) <> 0 OR SUM(bytes) <> 0 OR SUM(uploaded) <> 0
  ORDER BY upload_id, status
  ON CONFLICT (upload_id, status) DO UPDATE SET
    files = c.files + excluded.files,
    bytes_total = c.bytes_total + excluded.bytes_total,
    bytes_uploaded = c.bytes_uploaded + excluded.bytes_uploaded;
  RETURN NULL;
END $$;
CREATE TRIGGER ${name} AFTER ${event} ON file_tasks
  REFERENCING ${transitions} FOR EACH STATEMENT EXECUTE FUNCTION ${name}();
`;
}

const INITIAL_SCHEMA = `
CREATE TABLE uploads (
  upload_id          text    PRIMARY KEY,
  source_folder      text    NOT NULL,
  destination_bucket text    NOT NULL,
  destination_prefix text    NOT NULL,
  pattern            text    NOT NULL,
  status             text    NOT NULL CHECK (status IN ('pending', 'active', 'completed', 'cancelled')),
  watch              boolean NOT NULL DEFAULT true,
  if_exists          text    NOT NULL DEFAULT 'overwrite'
                             CHECK (if_exists IN ('skip_identical', 'skip', 'overwrite')),
  storage_class      text,
  sse                text    CHECK (sse IN ('AES256', 'aws:kms')),
  sse_kms_key_id     text    CHECK (sse_kms_key_id IS NULL OR sse = 'aws:kms'),
  object_metadata    json    NOT NULL DEFAULT '{}' CHECK (json_typeof(object_metadata) = 'object'),
  object_tags        json    NOT NULL DEFAULT '{}' CHECK (json_typeof(object_tags) = 'object'),
  created_at         bigint  NOT NULL,
  updated_at         bigint  NOT NULL,
  completed_at       bigint,
  last_error         text,
  last_error_task_id bigint,
  last_completed_at  bigint,
  listed_at          bigint,
  CHECK ((status = 'completed') = (completed_at IS NOT NULL))
);

-- The turn of the last claim that took a task of each upload (0: never), which the fair queue
-- orders uploads by (see claim.ts). Apart from uploads, whose rows completions and failures
-- update: claims alone write it, so a claim never waits on a completion's lock, nor one on it.
-- Made with its upload, so that a claim only ever updates it.
CREATE TABLE upload_turns (
  upload_id   text   PRIMARY KEY REFERENCES uploads (upload_id) ON DELETE CASCADE,
  served_turn bigint NOT NULL DEFAULT 0
);

-- An identity, never reused after dropTask: a runner or an API cursor that still holds an old id
-- can never reach another file's task. claimed_by: the instance (PostgresStoreOptions.instanceId)
-- whose claim holds the task while it is in progress, NULL otherwise; lease_expires_at is kept
-- for leases, which later work adds.
CREATE TABLE file_tasks (
  task_id          bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  upload_id        text    NOT NULL REFERENCES uploads (upload_id),
  relative_path    text    NOT NULL,
  object_key       text    NOT NULL,
  size             bigint  NOT NULL CHECK (size >= 0),
  mtime_ms         double precision NOT NULL,
  ino              double precision,
  ctime_ms         double precision,
  status           text    NOT NULL CHECK (status IN ('pending', 'in_progress', 'completed', 'failed')),
  bytes_uploaded   bigint  NOT NULL DEFAULT 0 CHECK (bytes_uploaded >= 0),
  attempts         integer NOT NULL DEFAULT 0,
  last_error       text,
  failure_kind     text    CHECK (failure_kind IN ('transient', 'configuration', 'permanent')),
  -- NULL: never to be claimed (the upload is cancelled).
  ready_at         bigint,
  -- When the file was stat'ed for the version held here: an older observation never replaces it.
  observed_at      bigint  NOT NULL,
  etag             text,
  validation       text    CHECK (validation IN ('etag', 'content-md5')),
  sha256           text,
  uploaded_size    bigint  CHECK (uploaded_size >= 0),
  stream_refused   boolean NOT NULL DEFAULT false,
  hash_first       boolean NOT NULL DEFAULT false,
  interrupted      boolean NOT NULL DEFAULT false,
  skipped          text,
  claimed_by       text,
  lease_expires_at bigint,
  created_at       bigint  NOT NULL,
  updated_at       bigint  NOT NULL,
  completed_at     bigint,
  failed_at        bigint,
  UNIQUE (upload_id, relative_path)
);

-- Requeuing due failures and nextReadyAt walk this in ready_at order, from a bound.
CREATE INDEX file_tasks_queue ON file_tasks (status, ready_at);
-- A claim walks each active upload's ready tasks in its own queue order.
CREATE INDEX file_tasks_by_upload_queue ON file_tasks (upload_id, status, ready_at, task_id);
-- Paging one upload's tasks by task_id, with or without a status.
CREATE INDEX file_tasks_by_upload ON file_tasks (upload_id, task_id);
CREATE INDEX file_tasks_by_upload_status ON file_tasks (upload_id, status, task_id);

CREATE TABLE multipart_uploads (
  task_id          bigint  PRIMARY KEY REFERENCES file_tasks (task_id) ON DELETE CASCADE,
  s3_upload_id     text    NOT NULL,
  bucket           text    NOT NULL,
  object_key       text    NOT NULL,
  size             bigint  NOT NULL,
  mtime_ms         double precision NOT NULL,
  ino              double precision,
  ctime_ms         double precision,
  part_size        bigint  NOT NULL CHECK (part_size > 0),
  streamed         boolean NOT NULL DEFAULT false,
  copied_bytes     bigint  NOT NULL DEFAULT 0 CHECK (copied_bytes >= 0),
  copy_source_etag text,
  created_at       bigint  NOT NULL
);

CREATE TABLE multipart_parts (
  task_id     bigint  NOT NULL REFERENCES multipart_uploads (task_id) ON DELETE CASCADE,
  part_number integer NOT NULL CHECK (part_number BETWEEN 1 AND 10000),
  etag        text    NOT NULL,
  size        bigint  NOT NULL CHECK (size >= 0),
  PRIMARY KEY (task_id, part_number)
);

-- Counts and byte totals per upload and status, kept by the triggers below in the same
-- transaction as the change to file_tasks, so they are always exact and cost one small read
-- however many tasks an upload has. Its four rows are made with the upload, so that keeping them
-- only ever updates them.
CREATE TABLE upload_task_counts (
  upload_id      text   NOT NULL REFERENCES uploads (upload_id) ON DELETE CASCADE,
  status         text   NOT NULL CHECK (status IN ('pending', 'in_progress', 'completed', 'failed')),
  files          bigint NOT NULL,
  bytes_total    bigint NOT NULL,
  bytes_uploaded bigint NOT NULL,
  PRIMARY KEY (upload_id, status)
);
${countTrigger('INSERT')}${countTrigger('UPDATE')}${countTrigger('DELETE')}
CREATE TABLE existing_objects (
  upload_id  text   NOT NULL REFERENCES uploads (upload_id) ON DELETE CASCADE,
  object_key text   NOT NULL,
  size       bigint NOT NULL CHECK (size >= 0),
  etag       text   NOT NULL,
  PRIMARY KEY (upload_id, object_key)
);
`;

// The instances that share the schema, and the leases of the tasks they hold (see instances.ts
// and leases.ts). Times are the database's clock in epoch milliseconds: every instance judges
// leases by the same clock, whatever its own says. lease_ms is each instance's own LEASE_SECONDS,
// so that the reaper judges a row by the lease its instance promised. The partial index holds
// the tasks in progress only (a few per slot of each instance, however many tasks the queue has):
// the heartbeat renews an instance's leases through it, the reaper reads it whole to find the
// expired ones, and so does the view of what each instance works on. lease_expires_at is left out
// of it, and of every index: a renewal then changes no indexed column, and PostgreSQL can write it
// as a heap-only update, with no new index entries for each task at every heartbeat.
const INSTANCES = `
CREATE TABLE instances (
  instance_id  text    PRIMARY KEY,
  host         text    NOT NULL,
  pid          integer NOT NULL,
  version      text    NOT NULL,
  source_roots text[],
  lease_ms     bigint  NOT NULL CHECK (lease_ms > 0),
  started_at   bigint  NOT NULL,
  heartbeat_at bigint  NOT NULL
);

CREATE INDEX file_tasks_held ON file_tasks (claimed_by) WHERE status = 'in_progress';
`;

// The watch lease of each live upload: the instance that watches its folder (watched_by) until
// watch_lease_expires_at, by the database's clock (see watch-leases.ts). As for the tasks' leases,
// the expiry is in no index, so that a heartbeat's renewal is a heap-only update.
const WATCH_LEASES = `
ALTER TABLE uploads ADD COLUMN watched_by text, ADD COLUMN watch_lease_expires_at bigint;
CREATE INDEX uploads_watched ON uploads (watched_by) WHERE watched_by IS NOT NULL;
`;

// Arrivals: the columns of SQLite's migration of that name (see there), the marker globs as a
// text[]. Columns with no default, or a constant one, are added without rewriting a row; building
// the index of markers reads file_tasks once. The notifications pending are found through a
// partial index of them alone, by the instance that holds each.
const ARRIVALS = `
ALTER TABLE uploads
  ADD COLUMN complete_markers text[] NOT NULL DEFAULT '{}',
  ADD COLUMN manifest_key text,
  ADD COLUMN notify_url text,
  ADD COLUMN scanned_at bigint,
  ADD COLUMN arrival_at bigint,
  ADD COLUMN arrival_files bigint CHECK (arrival_files >= 0),
  ADD COLUMN arrival_bytes bigint CHECK (arrival_bytes >= 0),
  ADD COLUMN arrival_marker_key text,
  ADD COLUMN manifest_written_key text,
  ADD COLUMN manifest_files bigint CHECK (manifest_files >= 0),
  ADD COLUMN manifest_bytes bigint CHECK (manifest_bytes >= 0),
  ADD COLUMN manifest_sha256 text,
  ADD COLUMN manifest_written_at bigint,
  ADD COLUMN notification_status text CHECK (notification_status IN ('pending', 'delivered', 'failed')),
  ADD COLUMN notification_arrival_at bigint,
  ADD COLUMN notification_attempts integer CHECK (notification_attempts >= 0),
  ADD COLUMN notification_last_error text,
  ADD COLUMN notification_last_attempt_at bigint,
  ADD COLUMN notification_delivered_at bigint,
  ADD COLUMN notification_held_by text,
  ADD CONSTRAINT uploads_arrival_whole CHECK (
    (arrival_at IS NULL) = (arrival_files IS NULL) AND (arrival_at IS NULL) = (arrival_bytes IS NULL)
    AND (arrival_at IS NOT NULL OR arrival_marker_key IS NULL)),
  ADD CONSTRAINT uploads_manifest_whole CHECK (
    (manifest_written_at IS NULL) = (manifest_written_key IS NULL)
    AND (manifest_written_at IS NULL) = (manifest_files IS NULL)
    AND (manifest_written_at IS NULL) = (manifest_bytes IS NULL)
    AND (manifest_written_at IS NULL) = (manifest_sha256 IS NULL)),
  ADD CONSTRAINT uploads_notification_whole CHECK (
    (notification_status IS NULL) = (notification_arrival_at IS NULL)
    AND (notification_status IS NULL) = (notification_attempts IS NULL));
ALTER TABLE file_tasks ADD COLUMN is_marker boolean NOT NULL DEFAULT false;
CREATE INDEX file_tasks_markers ON file_tasks (upload_id, status) WHERE is_marker;
CREATE INDEX uploads_notifying ON uploads (notification_held_by) WHERE notification_status = 'pending';
`;

/** Applied in order; MIGRATIONS[n] takes the schema from version n to n + 1. */
export const MIGRATIONS: readonly string[] = [INITIAL_SCHEMA, INSTANCES, WATCH_LEASES, ARRIVALS];

/**
 * Brings `schema` up to date, creating it when missing, inside the transaction `tx` (the caller
 * commits): every migration, and its record in schema_migrations, commits together or not at all.
 * Returns the schema version.
 */
export async function migrate(tx: Queryable, schema: string, now: number): Promise<number> {
  await tx.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`);
  // Created only when missing: a role allowed to create tables in a schema made for it need not be
  // allowed to create schemas. `schema` is a plain identifier (see postgresTargetOf), and the
  // connection's search_path already names it.
  const { rowCount } = await tx.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
  if (rowCount === 0) await tx.query(`CREATE SCHEMA ${schema}`);
  await tx.query(`
    CREATE TABLE IF NOT EXISTS schema_migrations (
      version    integer PRIMARY KEY,
      applied_at bigint  NOT NULL
    )`);
  const { rows } = await tx.query<{ version: number | null }>(
    'SELECT MAX(version) AS version FROM schema_migrations',
  );
  const applied = rows[0]?.version ?? 0;
  if (applied > MIGRATIONS.length) throw new SchemaTooNewError(applied, MIGRATIONS.length);
  for (const [index, migration] of MIGRATIONS.entries()) {
    if (index < applied) continue;
    await tx.query(migration);
    await tx.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [index + 1, now]);
  }
  return MIGRATIONS.length;
}
