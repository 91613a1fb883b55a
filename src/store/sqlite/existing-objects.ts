// Existing objects: what the listing of an upload's prefix found, kept until each file's own record
// says what is at its key (see IfExists in domain/model.ts).
import type { Database } from 'better-sqlite3';
import type { EpochMs, ExistingObject, ListedObject } from '../../domain/model.js';

export type ExistingObjectQueries = ReturnType<typeof existingObjectQueries>;

export function existingObjectQueries(db: Database) {
  const forgetAll = db.prepare<{ uploadId: string }>(`
    DELETE FROM existing_objects WHERE upload_id = @uploadId`);

  const restartListing = db.prepare<{ uploadId: string }>(`
    UPDATE uploads SET listed_at = NULL WHERE upload_id = @uploadId`);

  // A key listed twice (a page asked again after a retry) keeps what the newest page says.
  const insertObject = db.prepare<{ uploadId: string; key: string; size: number; etag: string }>(`
    INSERT INTO existing_objects (upload_id, object_key, size, etag) VALUES (@uploadId, @key, @size, @etag)
    ON CONFLICT (upload_id, object_key) DO UPDATE SET size = excluded.size, etag = excluded.etag`);

  const finishListing = db.prepare<{ uploadId: string; now: EpochMs }>(`
    UPDATE uploads SET listed_at = @now WHERE upload_id = @uploadId`);

  const selectObject = db.prepare<{ uploadId: string; key: string }, { size: number; etag: string }>(`
    SELECT size, etag FROM existing_objects WHERE upload_id = @uploadId AND object_key = @key`);

  const forgetKeyOfTask = db.prepare<{ taskId: number }>(`
    DELETE FROM existing_objects
    WHERE (upload_id, object_key) = (SELECT upload_id, object_key FROM file_tasks WHERE task_id = @taskId)`);

  const recordPage = db.transaction((uploadId: string, objects: readonly ListedObject[]) => {
    for (const { key, size, etag } of objects) insertObject.run({ uploadId, key, size, etag });
  });

  const beginListing = db.transaction((uploadId: string) => {
    restartListing.run({ uploadId });
    forgetAll.run({ uploadId });
  });

  return {
    /** A listing starts over: what an earlier, unfinished one recorded may be stale. */
    begin(uploadId: string): void {
      beginListing(uploadId);
    },
    record(uploadId: string, objects: readonly ListedObject[]): void {
      recordPage(uploadId, objects);
    },
    finish(uploadId: string, now: EpochMs): void {
      finishListing.run({ uploadId, now });
    },
    get(uploadId: string, key: string): ExistingObject | undefined {
      return selectObject.get({ uploadId, key });
    },
    /** The task completed: its own record now says what is at its key. */
    forgetKeyOf(taskId: number): void {
      forgetKeyOfTask.run({ taskId });
    },
    /** The upload uploads nothing more (cancelled, or a completed one-shot upload). */
    forget(uploadId: string): void {
      forgetAll.run({ uploadId });
    },
  };
}
