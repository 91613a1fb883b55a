// The multipart upload each task is filling, and its finished parts, written as each part
// finishes so that an interrupted upload resumes instead of starting over.
import Sqlite from 'better-sqlite3';
import type { Database } from 'better-sqlite3';
import type { EpochMs, MultipartState, UploadedPart } from '../../domain/model.js';
import { toMultipartState } from './rows.js';
import type { MultipartRow, PartRow } from './rows.js';

type NewMultipart = Omit<MultipartState, 'parts' | 'createdAt'>;

export type MultipartQueries = ReturnType<typeof multipartQueries>;

export function multipartQueries(db: Database) {
  const selectMultipart = db.prepare<[number], MultipartRow>(
    `SELECT * FROM multipart_uploads WHERE task_id = ?`,
  );

  const selectParts = db.prepare<[number], PartRow>(`
    SELECT * FROM multipart_parts WHERE task_id = ? ORDER BY part_number`);

  // CROSS JOIN keeps multipart_uploads (a few rows) as the outer loop, rather than walking every
  // task of the upload, which may be a million.
  const selectMultipartsOfUpload = db.prepare<[string], MultipartRow>(`
    SELECT m.* FROM multipart_uploads m CROSS JOIN file_tasks t ON t.task_id = m.task_id
    WHERE t.upload_id = ?
    ORDER BY m.task_id`);

  const selectPartsOfUpload = db.prepare<[string], PartRow>(`
    SELECT p.* FROM multipart_uploads m
      CROSS JOIN file_tasks t ON t.task_id = m.task_id
      CROSS JOIN multipart_parts p ON p.task_id = m.task_id
    WHERE t.upload_id = ?
    ORDER BY m.task_id, p.part_number`);

  // Its parts go with it (ON DELETE CASCADE).
  const deleteUpload = db.prepare<[number]>(`DELETE FROM multipart_uploads WHERE task_id = ?`);

  const insertMultipart = db.prepare<Omit<NewMultipart, 'streamed'> & { streamed: number; now: EpochMs }>(`
    INSERT INTO multipart_uploads (task_id, s3_upload_id, bucket, object_key, size, mtime_ms, ino, ctime_ms,
                                   part_size, streamed, copied_bytes, copy_source_etag, created_at)
    VALUES (@taskId, @s3UploadId, @bucket, @key, @size, @mtimeMs, @ino, @ctimeMs,
            @partSize, @streamed, @copiedBytes, @copySourceEtag, @now)`);

  const upsertPart = db.prepare<PartRow>(`
    INSERT INTO multipart_parts (task_id, part_number, etag, size)
    VALUES (@task_id, @part_number, @etag, @size)
    ON CONFLICT (task_id, part_number) DO UPDATE SET etag = excluded.etag, size = excluded.size`);

  const replaceUpload = db.transaction((state: NewMultipart, now: EpochMs): void => {
    deleteUpload.run(state.taskId);
    insertMultipart.run({
      taskId: state.taskId,
      s3UploadId: state.s3UploadId,
      bucket: state.bucket,
      key: state.key,
      size: state.size,
      mtimeMs: state.mtimeMs,
      ino: state.ino,
      ctimeMs: state.ctimeMs,
      partSize: state.partSize,
      streamed: state.streamed ? 1 : 0,
      copiedBytes: state.copiedBytes,
      copySourceEtag: state.copySourceEtag,
      now,
    });
  });

  return {
    get(taskId: number): MultipartState | undefined {
      const upload = selectMultipart.get(taskId);
      return upload && toMultipartState(upload, selectParts.all(taskId));
    },

    save(state: NewMultipart, now: EpochMs): void {
      try {
        replaceUpload(state, now);
      } catch (error) {
        throw withForeignKeyContext(error, `saveMultipart: task ${state.taskId} does not exist`);
      }
    },

    recordPart(taskId: number, part: UploadedPart): void {
      try {
        upsertPart.run({ task_id: taskId, part_number: part.partNumber, etag: part.etag, size: part.size });
      } catch (error) {
        throw withForeignKeyContext(error, `recordPart: task ${taskId} has no multipart upload recorded`);
      }
    },

    delete(taskId: number): void {
      deleteUpload.run(taskId);
    },

    listOfUpload(uploadId: string): MultipartState[] {
      const partsByTask = new Map<number, PartRow[]>();
      for (const part of selectPartsOfUpload.all(uploadId)) {
        const parts = partsByTask.get(part.task_id);
        if (parts) parts.push(part);
        else partsByTask.set(part.task_id, [part]);
      }
      return selectMultipartsOfUpload
        .all(uploadId)
        .map((upload) => toMultipartState(upload, partsByTask.get(upload.task_id) ?? []));
    },
  };
}

function withForeignKeyContext(error: unknown, message: string): unknown {
  if (error instanceof Sqlite.SqliteError && error.code === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
    return new Error(message, { cause: error });
  }
  return error;
}
