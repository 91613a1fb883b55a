// The instances that share the schema: each one's row, its heartbeat (which renews the leases of
// the tasks it holds, see leases.ts), the reaper's removal of the rows of dead ones, and the view
// of what each live one works on. Times are the database's clock (DATABASE_NOW).
import type { Beat, Instance, InstanceInfo } from '../../domain/instance.js';
import type { EpochMs } from '../../domain/model.js';
import type { Queryable } from './connection.js';
import { DATABASE_NOW, leaseFromNow } from './leases.js';
import { LIVE } from './watch-leases.js';

/** An instance as it registers: who it is, and how long its leases last. */
export interface Registration {
  instanceId: string;
  info: InstanceInfo;
  leaseMs: number;
}

// $7: when it first registered, or NULL for now: an instance registered again after the reaper
// removed its row keeps its start.
const REGISTER = `
  INSERT INTO instances (instance_id, host, pid, version, source_roots, lease_ms, started_at, heartbeat_at)
  VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7::bigint, ${DATABASE_NOW}), ${DATABASE_NOW})
  ON CONFLICT (instance_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at
  RETURNING started_at`;

// One statement: the row beats, and the lease of every task the instance holds and the watch lease
// of every live upload it watches are renewed (the CTEs run whether or not the outer query reads
// them).
const BEAT = `
  WITH beat AS (
    UPDATE instances SET heartbeat_at = ${DATABASE_NOW} WHERE instance_id = $1 RETURNING instance_id
  ),
  renewed AS (
    UPDATE file_tasks SET lease_expires_at = ${leaseFromNow('$2')}
    WHERE claimed_by = $1 AND status = 'in_progress'
    RETURNING task_id
  ),
  watching AS (
    UPDATE uploads SET watch_lease_expires_at = ${leaseFromNow('$2')}
    WHERE watched_by = $1 AND ${LIVE}
    RETURNING upload_id
  )
  SELECT EXISTS (SELECT 1 FROM beat) AS beating, ARRAY(SELECT task_id FROM renewed) AS held,
         ARRAY(SELECT upload_id FROM watching) AS watching`;

const REAP_DEAD = `
  DELETE FROM instances WHERE heartbeat_at + lease_ms < ${DATABASE_NOW} RETURNING instance_id`;

// The live instances, each with its tasks in progress (the partial index file_tasks_held).
const LIVE_INSTANCES = `
  SELECT i.*, work.files, work.bytes, work.bytes_uploaded, work.upload_ids
  FROM instances i
  CROSS JOIN LATERAL (
    SELECT count(*) AS files, COALESCE(sum(t.size), 0)::bigint AS bytes,
           COALESCE(sum(t.bytes_uploaded), 0)::bigint AS bytes_uploaded,
           COALESCE(array_agg(DISTINCT t.upload_id), '{}') AS upload_ids
    FROM file_tasks t WHERE t.claimed_by = i.instance_id AND t.status = 'in_progress'
  ) work
  WHERE i.heartbeat_at + i.lease_ms >= ${DATABASE_NOW}
  ORDER BY i.started_at, i.instance_id`;

interface InstanceRow {
  instance_id: string;
  host: string;
  pid: number;
  version: string;
  source_roots: string[] | null;
  lease_ms: number;
  started_at: number;
  heartbeat_at: number;
  files: number;
  bytes: number;
  bytes_uploaded: number;
  upload_ids: string[];
}

/** Writes the instance's row (or beats it, when it is there); returns when it first registered. */
export async function register(
  db: Queryable,
  registration: Registration,
  startedAt: EpochMs | null,
): Promise<EpochMs> {
  const { instanceId, info, leaseMs } = registration;
  const { rows } = await db.query<{ started_at: number }>({
    name: 'instances-register',
    text: REGISTER,
    values: [instanceId, info.host, info.pid, info.version, info.sourceRoots, leaseMs, startedAt],
  });
  return rows[0]!.started_at;
}

/** The heartbeat; `beating` false: the instance has no row (the reaper removed it). */
export async function beat(
  db: Queryable,
  instanceId: string,
  leaseMs: number,
): Promise<{ beating: boolean; held: Beat['held']; watching: Beat['watching'] }> {
  const { rows } = await db.query<{ beating: boolean; held: (string | number)[]; watching: string[] }>({
    name: 'instances-beat',
    text: BEAT,
    values: [instanceId, leaseMs],
  });
  const row = rows[0]!;
  // bigint[] comes as strings: only bigint itself is read as a number (see connection.ts).
  return {
    beating: row.beating,
    held: row.held.map(Number).sort((a, b) => a - b),
    watching: [...row.watching].sort(),
  };
}

/** Removes the rows of the instances whose heartbeat is older than their lease; returns their ids. */
export async function reapDead(db: Queryable): Promise<string[]> {
  const { rows } = await db.query<{ instance_id: string }>({ name: 'instances-reap-dead', text: REAP_DEAD });
  return rows.map((row) => row.instance_id);
}

export async function remove(db: Queryable, instanceId: string): Promise<void> {
  await db.query({
    name: 'instances-remove',
    text: 'DELETE FROM instances WHERE instance_id = $1',
    values: [instanceId],
  });
}

export async function listLive(db: Queryable): Promise<Instance[]> {
  const { rows } = await db.query<InstanceRow>({ name: 'instances-list-live', text: LIVE_INSTANCES });
  return rows.map((row) => ({
    instanceId: row.instance_id,
    host: row.host,
    pid: row.pid,
    version: row.version,
    sourceRoots: row.source_roots,
    leaseMs: row.lease_ms,
    startedAt: row.started_at,
    heartbeatAt: row.heartbeat_at,
    work: {
      files: row.files,
      bytes: row.bytes,
      bytesUploaded: row.bytes_uploaded,
      uploadIds: [...row.upload_ids].sort(),
    },
  }));
}
