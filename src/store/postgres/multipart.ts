// The multipart upload each task is filling, and its finished parts, written as each part
// finishes so that an interrupted upload resumes instead of starting over.
import pg from 'pg';
import type { EpochMs, MultipartState, UploadedPart } from '../../domain/model.js';
import { TaskNotHeldError } from '../errors.js';
import type { Queryable } from './connection.js';
import { notHeldByAnother } from './leases.js';
import { toMultipartState } from './rows.js';
import type { MultipartRow, PartRow } from './rows.js';

type NewMultipart = Omit<MultipartState, 'parts' | 'createdAt'>;

const INSERT_MULTIPART = `
  INSERT INTO multipart_uploads (task_id, s3_upload_id, bucket, object_key, size, mtime_ms, ino, ctime_ms,
                                 part_size, streamed, copied_bytes, copy_source_etag, created_at)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`;

// $5: the instance recording it. A part of a task another instance holds is not recorded: its
// lease expired, and the new holder records its own (see leases.ts).
const UPSERT_PART = `
  INSERT INTO multipart_parts (task_id, part_number, etag, size)
  SELECT $1, $2, $3, $4 WHERE ${notHeldByAnother('$1', '$5')}
  ON CONFLICT (task_id, part_number) DO UPDATE SET etag = excluded.etag, size = excluded.size`;

/** Who holds the task, when it is in progress for another instance than $2. */
const HELD_BY_ANOTHER = `
  SELECT COALESCE(claimed_by, 'none') AS claimed_by FROM file_tasks
  WHERE task_id = $1 AND status = 'in_progress' AND claimed_by IS DISTINCT FROM $2`;

// multipart_uploads (a few rows) joined to each task by its key, rather than a walk through every
// task of the upload, which may be a million.
const MULTIPARTS_OF_UPLOAD = `
  SELECT m.* FROM multipart_uploads m JOIN file_tasks t ON t.task_id = m.task_id
  WHERE t.upload_id = $1
  ORDER BY m.task_id`;

const PARTS_OF_UPLOAD = `
  SELECT p.* FROM multipart_uploads m
    JOIN file_tasks t ON t.task_id = m.task_id
    JOIN multipart_parts p ON p.task_id = m.task_id
  WHERE t.upload_id = $1
  ORDER BY m.task_id, p.part_number`;

export async function get(db: Queryable, taskId: number): Promise<MultipartState | undefined> {
  const { rows } = await db.query<MultipartRow>({
    name: 'multipart-select',
    text: 'SELECT * FROM multipart_uploads WHERE task_id = $1',
    values: [taskId],
  });
  const [upload] = rows;
  if (upload === undefined) return undefined;
  const { rows: parts } = await db.query<PartRow>({
    name: 'multipart-select-parts',
    text: 'SELECT * FROM multipart_parts WHERE task_id = $1 ORDER BY part_number',
    values: [taskId],
  });
  return toMultipartState(upload, parts);
}

/**
 * In the transaction `tx`: the task's multipart state becomes a new upload with no parts. Throws
 * TaskNotHeldError, and writes nothing, when another instance than `instanceId` holds the task.
 */
export async function save(
  tx: Queryable,
  instanceId: string,
  state: NewMultipart,
  now: EpochMs,
): Promise<void> {
  await assertNotHeldByAnother(tx, instanceId, state.taskId);
  try {
    await remove(tx, state.taskId);
    await tx.query({
      name: 'multipart-insert',
      text: INSERT_MULTIPART,
      values: [
        state.taskId,
        state.s3UploadId,
        state.bucket,
        state.key,
        state.size,
        state.mtimeMs,
        state.ino,
        state.ctimeMs,
        state.partSize,
        state.streamed,
        state.copiedBytes,
        state.copySourceEtag,
        now,
      ],
    });
  } catch (error) {
    throw withForeignKeyContext(error, `saveMultipart: task ${state.taskId} does not exist`);
  }
}

/** Throws TaskNotHeldError, and writes nothing, when another instance than `instanceId` holds the task. */
export async function recordPart(
  db: Queryable,
  instanceId: string,
  taskId: number,
  part: UploadedPart,
): Promise<void> {
  let rowCount: number | null;
  try {
    ({ rowCount } = await db.query({
      name: 'multipart-upsert-part',
      text: UPSERT_PART,
      values: [taskId, part.partNumber, part.etag, part.size, instanceId],
    }));
  } catch (error) {
    throw withForeignKeyContext(error, `recordPart: task ${taskId} has no multipart upload recorded`);
  }
  if (rowCount === 0) await assertNotHeldByAnother(db, instanceId, taskId);
}

async function assertNotHeldByAnother(db: Queryable, instanceId: string, taskId: number): Promise<void> {
  const { rows } = await db.query<{ claimed_by: string }>({
    name: 'multipart-held-by-another',
    text: HELD_BY_ANOTHER,
    values: [taskId, instanceId],
  });
  const holder = rows[0]?.claimed_by;
  if (holder !== undefined) throw new TaskNotHeldError(taskId, holder);
}

/** Its parts go with it (ON DELETE CASCADE). */
export async function remove(db: Queryable, taskId: number): Promise<void> {
  await removeAll(db, [taskId]);
}

export async function removeAll(db: Queryable, taskIds: readonly number[]): Promise<void> {
  await db.query({
    name: 'multipart-delete',
    text: 'DELETE FROM multipart_uploads WHERE task_id = ANY($1::bigint[])',
    values: [taskIds],
  });
}

export async function listOfUpload(db: Queryable, uploadId: string): Promise<MultipartState[]> {
  const { rows: parts } = await db.query<PartRow>({
    name: 'multipart-parts-of-upload',
    text: PARTS_OF_UPLOAD,
    values: [uploadId],
  });
  const partsByTask = new Map<number, PartRow[]>();
  for (const part of parts) {
    const ofTask = partsByTask.get(part.task_id);
    if (ofTask) ofTask.push(part);
    else partsByTask.set(part.task_id, [part]);
  }
  const { rows: uploads } = await db.query<MultipartRow>({
    name: 'multipart-of-upload',
    text: MULTIPARTS_OF_UPLOAD,
    values: [uploadId],
  });
  return uploads.map((upload) => toMultipartState(upload, partsByTask.get(upload.task_id) ?? []));
}

function withForeignKeyContext(error: unknown, message: string): unknown {
  if (error instanceof pg.DatabaseError && error.code === '23503')
    return new Error(message, { cause: error });
  return error;
}
