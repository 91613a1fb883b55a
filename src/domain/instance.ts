// Instances: the running processes of the service that share one database. Each registers at
// start, beats (its heartbeat) every few seconds, and holds the tasks it claims under a lease that
// each beat renews; the reaper of any instance returns the tasks of a lease that expired to the
// queue. Times are the database's clock (see docs/architecture.md: instance, lease, heartbeat,
// reaper).
import path from 'node:path';
import type { EpochMs } from './model.js';

/** What an instance says of itself when it registers. */
export interface InstanceInfo {
  /** The machine's host name. */
  host: string;
  pid: number;
  /** The service's version (package.json). */
  version: string;
  /**
   * The folders whose uploads it may serve (ALLOWED_SOURCE_ROOTS, real paths); null: any folder.
   * Its claims take only tasks of uploads under them (see isUnderRoots).
   */
  sourceRoots: readonly string[] | null;
}

/** A registered instance, and what it works on now. */
export interface Instance extends InstanceInfo {
  instanceId: string;
  /** When it registered. */
  startedAt: EpochMs;
  /** Its last heartbeat. */
  heartbeatAt: EpochMs;
  /** How long its leases last without a heartbeat (LEASE_SECONDS): a row older than this is a dead instance's. */
  leaseMs: number;
  work: InstanceWork;
}

/** The tasks an instance holds (in progress) now. */
export interface InstanceWork {
  files: number;
  /** The sizes of their files. */
  bytes: number;
  /** Of those bytes, uploaded so far. */
  bytesUploaded: number;
  /** The uploads they belong to, in upload id order. */
  uploadIds: string[];
}

/** What a heartbeat found. */
export interface Beat {
  /** The ids of the tasks this instance holds, whose leases it renewed. */
  held: number[];
  /** The ids of the live uploads whose watch lease this instance holds, renewed by this beat. */
  watching: string[];
  /**
   * Its row was gone (the reaper of another instance found its heartbeat older than its lease,
   * and took its tasks back): it was registered again.
   */
  registeredAgain: boolean;
}

/** A task the reaper returned to the queue. */
export interface ReapedTask {
  taskId: number;
  uploadId: string;
  /** The instance whose lease expired (null for a task claimed before leases existed). */
  claimedBy: string | null;
}

/** What one pass of the reaper did. */
export interface Reaped {
  tasks: ReapedTask[];
  /** The instances whose row it removed: their heartbeat was older than their lease. */
  instances: string[];
}

/**
 * Whether `folder` is one of `roots` or below one (all absolute and normalised, real paths); any
 * folder when roots is null. The stores' claims filter by the same rule in SQL.
 */
export function isUnderRoots(folder: string, roots: readonly string[] | null): boolean {
  return roots === null || roots.some((root) => isUnderRoot(folder, root));
}

export function isUnderRoot(folder: string, root: string): boolean {
  const relative = path.relative(root, folder);
  // Not startsWith('..'): a folder named '..data' is inside.
  return relative === '' || (relative !== '..' && !relative.startsWith('../') && !path.isAbsolute(relative));
}
