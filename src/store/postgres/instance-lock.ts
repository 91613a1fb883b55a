// One running instance per schema, for now. At start-up the engine takes every in_progress task of
// the queue for one that its own crash interrupted (recoverInterruptedTasks), which is only right
// while no other instance is running them. Until leases say which instance holds which task, an
// instance holds its schema alone: a session advisory lock, on a connection of its own that
// PostgreSQL closes, and so releases, when the process ends, even by SIGKILL. This is the
// PostgreSQL counterpart of SQLite's path lock (../sqlite/path-lock.ts).
import pg from 'pg';
import { DatabaseInUseError } from '../store.js';

/** The first key of the lock (the second is the schema's hash): "SFU" 2. */
const INSTANCE_LOCK_CLASS = 0x5346_5502;

export interface InstanceLock {
  release(): Promise<void>;
}

/**
 * Holds `schema` for this process, or throws DatabaseInUseError (naming `location`, a URL
 * without its password) when another process holds it. A lost connection loses the lock with it:
 * nothing here notices, which leases will make moot.
 */
export async function lockSchema(
  config: pg.ClientConfig,
  schema: string,
  location: string,
): Promise<InstanceLock> {
  const client = new pg.Client(config);
  // An error on the idle connection ends it, and the lock with it; there is no one to tell.
  client.on('error', () => undefined);
  await client.connect();
  try {
    const { rows } = await client.query<{ locked: boolean }>(
      'SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked',
      [INSTANCE_LOCK_CLASS, schema],
    );
    if (rows[0]?.locked !== true) throw new DatabaseInUseError(location);
  } catch (error) {
    await client.end();
    throw error;
  }
  let released: Promise<void> | undefined;
  return { release: () => (released ??= client.end()) };
}
