// The one place that turns DATABASE_URL into a Store.
import type { Store } from './store.js';
import { openSqliteStore } from './sqlite/sqlite-store.js';

/**
 * Opens the store DATABASE_URL names. sqlitePath is the file a sqlite: URL resolves to (config
 * resolves it against the working folder). Only SQLite exists so far.
 */
export function openStore(databaseUrl: string, sqlitePath: string): Store {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(databaseUrl)?.[1]?.toLowerCase();
  if (scheme === 'sqlite') return openSqliteStore(sqlitePath);
  throw new Error(
    `DATABASE_URL '${databaseUrl}' is not supported: ${scheme === undefined ? 'it has no scheme' : `the scheme '${scheme}:' is not implemented`}; use sqlite:./path.db or sqlite:/absolute/path.db`,
  );
}
