// The one place that turns DATABASE_URL into a Store.
import type { Store } from './store.js';
import { lockDatabasePath } from './sqlite/path-lock.js';
import type { DatabaseLoss } from './sqlite/location-check.js';
import { openSqliteStore } from './sqlite/sqlite-store.js';

export interface StoreEvents {
  /** The database's file was removed or replaced while the service ran (called once). */
  lost?: (loss: DatabaseLoss) => void;
}

/**
 * Opens the store DATABASE_URL names. sqlitePath is the file a sqlite: URL resolves to (config
 * resolves it against the working folder). Only SQLite exists so far. Throws DatabaseInUseError
 * when another running instance holds the database.
 */
export async function openStore(
  databaseUrl: string,
  sqlitePath: string,
  events: StoreEvents = {},
): Promise<Store> {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(databaseUrl)?.[1]?.toLowerCase();
  if (scheme === 'sqlite') {
    // The path first: an instance refused must not create or touch the file.
    const pathLock = await lockDatabasePath(sqlitePath);
    try {
      return openSqliteStore(sqlitePath, { lost: events.lost, pathLock });
    } catch (error) {
      await pathLock.release();
      throw error;
    }
  }
  throw new Error(
    `DATABASE_URL '${databaseUrl}' is not supported: ${scheme === undefined ? 'it has no scheme' : `the scheme '${scheme}:' is not implemented`}; use sqlite:./path.db or sqlite:/absolute/path.db`,
  );
}
