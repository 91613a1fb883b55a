// What the monitor saw, recorded as tasks: a batch of files in a few statements, whatever its
// size (the versions the tasks hold, read at once; then one write for the tasks that adopt an
// inode and ctime, one for those created or changed).
import { sameVersion } from '../../domain/file-version.js';
import type { EpochMs, FileReadiness, ObservedFile } from '../../domain/model.js';
import type { Queryable } from './connection.js';
import { heldUploadStatus } from './locks.js';

// A new path → a pending task. A known path with another version, observed no earlier than the
// one it holds → pending again, from scratch, unless a runner holds it (it notices the change
// itself). What the last completed upload put at the key (etag, sha256, uploaded_size) stays: it
// is what an append copies from. The WHERE makes the same version, or an older observation, no
// write at all, so that the count is exactly the tasks created or changed. When only the ctime
// differs from the last upload (a chmod), hash_first asks the runner to compare contents before
// sending; it holds as long as later observations differ from that upload in ctime alone. Whether
// the task is a marker is set once, when it is created.
const UPSERT_OBSERVED_FILES = `
  WITH observed AS (
    SELECT * FROM unnest($2::text[], $3::text[], $4::bigint[], $5::float8[], $6::float8[], $7::float8[],
                         $8::bigint[], $9::bigint[], $11::bigint[], $12::boolean[])
      AS f (relative_path, object_key, size, mtime_ms, ino, ctime_ms, observed_at, ready_at, settled_at,
            is_marker)
  )
  INSERT INTO file_tasks (upload_id, relative_path, object_key, size, mtime_ms, ino, ctime_ms, status,
                          bytes_uploaded, attempts, ready_at, observed_at, is_marker, created_at, updated_at)
  SELECT $1, relative_path, object_key, size, mtime_ms, ino, ctime_ms, 'pending', 0, 0, ready_at, observed_at,
         is_marker, $10, $10
  FROM observed
  ON CONFLICT (upload_id, relative_path) DO UPDATE SET
    hash_first = CASE
      WHEN file_tasks.size = excluded.size AND file_tasks.mtime_ms = excluded.mtime_ms
        AND file_tasks.ino = excluded.ino
        AND (file_tasks.hash_first OR (file_tasks.status = 'completed'
             AND file_tasks.sha256 IS NOT NULL AND file_tasks.uploaded_size = excluded.size))
      THEN true ELSE false END,
    size = excluded.size,
    mtime_ms = excluded.mtime_ms,
    ino = excluded.ino,
    ctime_ms = excluded.ctime_ms,
    observed_at = excluded.observed_at,
    status = 'pending',
    bytes_uploaded = 0,
    attempts = 0,
    last_error = NULL,
    -- A task whose streaming was refused waits for its file to settle: settled_at has no column
    -- in the row offered (excluded), so it is looked up in the batch, for these tasks alone.
    ready_at = CASE WHEN file_tasks.stream_refused
                    THEN (SELECT settled_at FROM observed WHERE observed.relative_path = excluded.relative_path)
                    ELSE excluded.ready_at END,
    completed_at = NULL,
    failed_at = NULL,
    updated_at = excluded.updated_at
  WHERE (file_tasks.size <> excluded.size OR file_tasks.mtime_ms <> excluded.mtime_ms
         OR file_tasks.ino <> excluded.ino OR file_tasks.ctime_ms <> excluded.ctime_ms)
    AND excluded.observed_at >= file_tasks.observed_at
    AND file_tasks.status <> 'in_progress'`;

// A row written before inode numbers and ctimes were recorded takes the ones observed, once,
// without any other change: an upgrade must not upload every file again.
const ADOPT_IDENTITY = `
  UPDATE file_tasks t SET ino = COALESCE(t.ino, f.ino), ctime_ms = COALESCE(t.ctime_ms, f.ctime_ms)
  FROM unnest($2::text[], $3::float8[], $4::float8[]) AS f (relative_path, ino, ctime_ms)
  WHERE t.upload_id = $1 AND t.relative_path = f.relative_path`;

interface HeldVersion {
  relative_path: string;
  size: number;
  mtime_ms: number;
  ino: number | null;
  ctime_ms: number | null;
  status: string;
}

/**
 * Records a batch of observed files (see Store.recordObservedFiles) in the transaction `tx`, and
 * returns how many tasks were created or changed.
 */
export async function recordObservedFiles(
  tx: Queryable,
  uploadId: string,
  files: readonly ObservedFile[],
  objectKeyFor: (relativePath: string) => string,
  readinessOf: (file: ObservedFile) => FileReadiness,
  now: EpochMs,
  isMarker?: (relativePath: string) => boolean,
): Promise<number> {
  const { rows } = await tx.query<{ status: string | null }>({
    name: 'observed-upload-status',
    text: `SELECT ${heldUploadStatus('$1')} AS status`,
    values: [uploadId],
  });
  const status = rows[0]?.status ?? null;
  if (status === null) throw new Error(`recordObservedFiles: there is no upload '${uploadId}'`);
  // A cancelled or completed upload uploads nothing more: what its watcher still reports is not recorded.
  if (status === 'cancelled' || status === 'completed') return 0;
  let changed = 0;
  for (const round of roundsOfDistinctPaths(files)) {
    changed += await recordRound(tx, uploadId, round, objectKeyFor, readinessOf, now, isMarker);
  }
  return changed;
}

/**
 * The batch cut where a path comes again, so that each round names a path once (one statement may
 * not write a row twice) and a later observation of it is applied after the earlier one.
 */
function roundsOfDistinctPaths(files: readonly ObservedFile[]): ObservedFile[][] {
  const rounds: ObservedFile[][] = [];
  let round: ObservedFile[] = [];
  let paths = new Set<string>();
  for (const file of files) {
    if (paths.has(file.relativePath)) {
      rounds.push(round);
      round = [];
      paths = new Set();
    }
    round.push(file);
    paths.add(file.relativePath);
  }
  if (round.length > 0) rounds.push(round);
  return rounds;
}

async function recordRound(
  tx: Queryable,
  uploadId: string,
  files: readonly ObservedFile[],
  objectKeyFor: (relativePath: string) => string,
  readinessOf: (file: ObservedFile) => FileReadiness,
  now: EpochMs,
  isMarker: ((relativePath: string) => boolean) | undefined,
): Promise<number> {
  const { rows } = await tx.query<HeldVersion>({
    name: 'observed-held-versions',
    text: `SELECT relative_path, size, mtime_ms, ino, ctime_ms, status FROM file_tasks
           WHERE upload_id = $1 AND relative_path = ANY($2::text[])`,
    values: [uploadId, files.map((file) => file.relativePath)],
  });
  const held = new Map(rows.map((row) => [row.relative_path, row]));
  const adopting: ObservedFile[] = [];
  const writing: ObservedFile[] = [];
  for (const file of files) {
    const task = held.get(file.relativePath);
    if (task !== undefined) {
      // A rescan of an unchanged tree only reads; a running task is its runner's to update.
      const { size, mtime_ms: mtimeMs, ino, ctime_ms: ctimeMs } = task;
      if (sameVersion({ size, mtimeMs, ino, ctimeMs }, file)) {
        if (ino === null || ctimeMs === null) adopting.push(file);
        continue;
      }
      if (task.status === 'in_progress') continue;
    }
    writing.push(file);
  }
  if (adopting.length > 0) {
    await tx.query({
      name: 'observed-adopt-identity',
      text: ADOPT_IDENTITY,
      values: [
        uploadId,
        adopting.map((file) => file.relativePath),
        adopting.map((file) => file.ino),
        adopting.map((file) => file.ctimeMs),
      ],
    });
  }
  if (writing.length === 0) return 0;
  const readiness = writing.map(readinessOf);
  const { rowCount } = await tx.query({
    name: 'observed-upsert',
    text: UPSERT_OBSERVED_FILES,
    values: [
      uploadId,
      writing.map((file) => file.relativePath),
      writing.map((file) => objectKeyFor(file.relativePath)),
      writing.map((file) => file.size),
      writing.map((file) => file.mtimeMs),
      writing.map((file) => file.ino),
      writing.map((file) => file.ctimeMs),
      writing.map((file) => file.observedAt),
      readiness.map((ready) => ready.readyAt),
      now,
      readiness.map((ready) => ready.settledAt),
      writing.map((file) => isMarker?.(file.relativePath) === true),
    ],
  });
  return rowCount ?? 0;
}
