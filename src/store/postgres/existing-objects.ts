// Existing objects: what the listing of an upload's prefix found, kept until each file's own record
// says what is at its key (see IfExists in domain/model.ts).
import type { EpochMs, ExistingObject, ListedObject } from '../../domain/model.js';
import type { Queryable } from './connection.js';

// A page arrives as arrays, in one statement; a key listed twice (a page asked again after a
// retry) keeps what the newest page says.
const RECORD_PAGE = `
  INSERT INTO existing_objects (upload_id, object_key, size, etag)
  SELECT $1, listed.object_key, listed.size, listed.etag
  FROM unnest($2::text[], $3::bigint[], $4::text[]) AS listed (object_key, size, etag)
  ON CONFLICT (upload_id, object_key) DO UPDATE SET size = excluded.size, etag = excluded.etag`;

/** In the transaction `tx`: a listing starts over, since what an earlier, unfinished one recorded may be stale. */
export async function begin(tx: Queryable, uploadId: string): Promise<void> {
  await tx.query({
    name: 'existing-restart-listing',
    text: 'UPDATE uploads SET listed_at = NULL WHERE upload_id = $1',
    values: [uploadId],
  });
  await forget(tx, uploadId);
}

export async function record(
  db: Queryable,
  uploadId: string,
  objects: readonly ListedObject[],
): Promise<void> {
  // One row per key: a statement may not write the same row twice, and the last one listed wins.
  const byKey = new Map(objects.map((object) => [object.key, object]));
  if (byKey.size === 0) return;
  const page = [...byKey.values()];
  await db.query({
    name: 'existing-record-page',
    text: RECORD_PAGE,
    values: [uploadId, page.map((o) => o.key), page.map((o) => o.size), page.map((o) => o.etag)],
  });
}

export async function finish(db: Queryable, uploadId: string, now: EpochMs): Promise<void> {
  await db.query({
    name: 'existing-finish-listing',
    text: 'UPDATE uploads SET listed_at = $2 WHERE upload_id = $1',
    values: [uploadId, now],
  });
}

export async function get(db: Queryable, uploadId: string, key: string): Promise<ExistingObject | undefined> {
  const { rows } = await db.query<ExistingObject>({
    name: 'existing-select',
    text: 'SELECT size, etag FROM existing_objects WHERE upload_id = $1 AND object_key = $2',
    values: [uploadId, key],
  });
  return rows[0];
}

/** These tasks completed: their own records now say what is at their keys. */
export async function forgetKeysOf(
  db: Queryable,
  completed: readonly { uploadId: string; objectKey: string }[],
): Promise<void> {
  await db.query({
    name: 'existing-forget-keys',
    text: `DELETE FROM existing_objects e
           USING unnest($1::text[], $2::text[]) AS done (upload_id, object_key)
           WHERE e.upload_id = done.upload_id AND e.object_key = done.object_key`,
    values: [completed.map((task) => task.uploadId), completed.map((task) => task.objectKey)],
  });
}

/** The upload uploads nothing more (cancelled, or a completed one-shot upload). */
export async function forget(db: Queryable, uploadId: string): Promise<void> {
  await db.query({
    name: 'existing-forget-all',
    text: 'DELETE FROM existing_objects WHERE upload_id = $1',
    values: [uploadId],
  });
}
