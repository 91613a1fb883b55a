// Watch leases on SQLite: one process serves the file, so it watches every live upload under its
// source roots, and the lease never expires. watched_by names it so that the API shows the same
// view as on PostgreSQL; a lease a killed process left named is taken over at the next start.
import type { Database } from 'better-sqlite3';
import { isUnderRoots } from '../../domain/instance.js';
import type { TakenWatch, WatchLeaseRequest } from '../store.js';
import { toUpload, type UploadRow } from './rows.js';

export interface WatchLeaseQueries {
  take(instanceId: string, request: WatchLeaseRequest): TakenWatch[];
  watching(instanceId: string): string[];
  release(instanceId: string): void;
}

export function watchLeaseQueries(db: Database): WatchLeaseQueries {
  const selectUnwatched = db.prepare<[string], UploadRow>(`
    SELECT * FROM uploads
    WHERE status IN ('pending', 'active') AND watched_by IS NOT ?
    ORDER BY created_at, upload_id`);
  const setWatcher = db.prepare<[string, string], UploadRow>(`
    UPDATE uploads SET watched_by = ? WHERE upload_id = ? RETURNING *`);
  const selectWatching = db
    .prepare<[string], string>(
      `
      SELECT upload_id FROM uploads WHERE watched_by = ? AND status IN ('pending', 'active')
      ORDER BY upload_id`,
    )
    .pluck();
  const clear = db.prepare<[string]>(`UPDATE uploads SET watched_by = NULL WHERE watched_by = ?`);

  const take = db.transaction((instanceId: string, request: WatchLeaseRequest): TakenWatch[] => {
    const taken: TakenWatch[] = [];
    for (const row of selectUnwatched.all(instanceId)) {
      if (request.uploadId !== undefined && row.upload_id !== request.uploadId) continue;
      if (!isUnderRoots(row.source_folder, request.sourceRoots)) continue;
      const updated = setWatcher.get(instanceId, row.upload_id);
      if (updated) taken.push({ upload: toUpload(updated), previous: row.watched_by });
    }
    return taken;
  });

  return {
    take: (instanceId, request) => take.immediate(instanceId, request),
    watching: (instanceId) => selectWatching.all(instanceId),
    release: (instanceId) => void clear.run(instanceId),
  };
}
