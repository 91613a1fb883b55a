// The one place that turns DATABASE_URL into a Store.
import type { Logger } from '../logger.js';
import type { Store } from './store.js';
import { SUPPORTED_URLS, databaseKindOf, redactPassword, schemeOf } from './database-url.js';
import { openPostgresStore } from './postgres/postgres-store.js';
import { lockDatabasePath } from './sqlite/path-lock.js';
import type { DatabaseLoss } from './sqlite/location-check.js';
import { openSqliteStore } from './sqlite/sqlite-store.js';

export interface OpenStoreOptions {
  /** The database's file was removed or replaced while the service ran (SQLite only; called once). */
  lost?: (loss: DatabaseLoss) => void;
  /** Connections a PostgreSQL store's pool opens at most (DATABASE_POOL_SIZE). */
  poolSize?: number;
  /** How long a lease lasts from a claim or a heartbeat (LEASE_SECONDS); default DEFAULT_LEASE_MS. */
  leaseMs?: number;
  /** Where a PostgreSQL store says that its connection listening for other instances' changes was lost. */
  logger?: Logger;
}

/**
 * Opens the store DATABASE_URL names: sqlite:path, or postgres:// (postgresql://) with its
 * migrations. sqlitePath is the file a sqlite: URL resolves to (config resolves it against the
 * working folder). Throws DatabaseInUseError when another running instance holds the SQLite file
 * (a PostgreSQL schema is shared by every instance that opens it). No message holds the URL's
 * password.
 */
export async function openStore(
  databaseUrl: string,
  sqlitePath: string | undefined,
  options: OpenStoreOptions = {},
): Promise<Store> {
  const kind = databaseKindOf(databaseUrl);
  if (kind === 'sqlite') {
    if (sqlitePath === undefined) throw new Error('openStore: a sqlite: URL needs the path it resolves to');
    // The path first: an instance refused must not create or touch the file.
    const pathLock = await lockDatabasePath(sqlitePath);
    try {
      return openSqliteStore(sqlitePath, { lost: options.lost, pathLock, leaseMs: options.leaseMs });
    } catch (error) {
      await pathLock.release();
      throw error;
    }
  }
  if (kind === 'postgres') {
    return openPostgresStore(databaseUrl, {
      poolSize: options.poolSize,
      leaseMs: options.leaseMs,
      logger: options.logger,
    });
  }
  const scheme = schemeOf(databaseUrl);
  throw new Error(
    `DATABASE_URL '${redactPassword(databaseUrl)}' is not supported: ${scheme === undefined ? 'it has no scheme' : `the scheme '${scheme}:' is not implemented`}; ${SUPPORTED_URLS}`,
  );
}
