// Watch leases: each live upload's folder is watched (scanned, followed by file-system events,
// rescanned) by one instance at a time, the one named in watched_by, until
// watch_lease_expires_at by the database's clock. The heartbeat renews them with the leases of the
// tasks (instances.ts); an instance takes the lease of a live upload under its source roots that
// nobody holds, or whose holder let it expire (dead, or paused past its lease), and a clean stop
// releases its leases for the others to take at their next beat.
import type { TakenWatch } from '../store.js';
import type { Queryable } from './connection.js';
import { DATABASE_NOW, leaseFromNow } from './leases.js';
import { underSourceRoots } from './queue.js';
import { toUpload, type UploadRow } from './rows.js';

/** The SQL of the statuses of a live upload, the ones that are watched. */
export const LIVE = `status IN ('pending', 'active')`;

/** Set with an upload's end (cancelled, completed): a watch lease of an upload that is not live. */
export const WATCH_LEASE_ENDED = `watched_by = NULL, watch_lease_expires_at = NULL`;

/** The SQL condition that the watch lease of the uploads row `row` is free: nobody's, or expired. */
function free(row: string): string {
  return `(${row}.watched_by IS NULL OR ${row}.watch_lease_expires_at IS NULL
           OR ${row}.watch_lease_expires_at < ${DATABASE_NOW})`;
}

// $1 instance, $2 lease, $3 source roots (NULL: any), $4 one upload (NULL: any).
// How many: the instance's fair share (the live uploads over the live instances, rounded up) less
// what it watches, and at least one, so that an upload only this instance can read is taken even
// when it watches more than its share. The rows are locked (SKIP LOCKED: another instance taking
// them now passes them over) and checked again by the UPDATE, so that two instances racing never
// both take one.
const TAKE = `
  WITH mine AS (
    SELECT count(*) AS n FROM uploads WHERE watched_by = $1 AND ${LIVE}
  ),
  share AS (
    SELECT ceil(count(*)::numeric / GREATEST(1, (SELECT count(*) FROM instances
                                                 WHERE heartbeat_at + lease_ms >= ${DATABASE_NOW}))) AS n
    FROM uploads WHERE ${LIVE}
  ),
  free AS (
    SELECT upload_id, watched_by AS previous FROM uploads
    WHERE ${LIVE} AND ${free('uploads')} AND ($4::text IS NULL OR upload_id = $4)
      AND ${underSourceRoots('source_folder', '$3')}
    ORDER BY created_at, upload_id
    LIMIT GREATEST(1, (SELECT n FROM share) - (SELECT n FROM mine))
    FOR UPDATE SKIP LOCKED
  )
  UPDATE uploads u SET watched_by = $1, watch_lease_expires_at = ${leaseFromNow('$2')}
  FROM free WHERE u.upload_id = free.upload_id AND u.${LIVE} AND ${free('u')}
  RETURNING u.*, free.previous`;

const RELEASE = `
  UPDATE uploads SET watched_by = NULL, watch_lease_expires_at = NULL WHERE watched_by = $1`;

export async function take(
  db: Queryable,
  instanceId: string,
  leaseMs: number,
  sourceRoots: readonly string[] | null,
  uploadId: string | null,
): Promise<TakenWatch[]> {
  const { rows } = await db.query<UploadRow & { previous: string | null }>({
    name: 'watch-leases-take',
    text: TAKE,
    values: [instanceId, leaseMs, sourceRoots, uploadId],
  });
  return rows.map((row) => ({ upload: toUpload(row), previous: row.previous }));
}

export async function release(db: Queryable, instanceId: string): Promise<void> {
  await db.query({ name: 'watch-leases-release', text: RELEASE, values: [instanceId] });
}
