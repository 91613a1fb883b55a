// Opening the SQLite file with the settings the store relies on, and bringing its schema up to date.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Sqlite from 'better-sqlite3';
import type { Database } from 'better-sqlite3';
import { migrate } from './migrations.js';

/** How long a statement waits for another connection's lock before failing with SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 5000;

export function openDatabase(filePath: string): Database {
  try {
    mkdirSync(path.dirname(filePath), { recursive: true });
    const db = new Sqlite(filePath, { timeout: BUSY_TIMEOUT_MS });
    try {
      configure(db, filePath);
      migrate(db);
      return db;
    } catch (error) {
      db.close();
      throw error;
    }
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`cannot open the SQLite database ${filePath}: ${reason}`, { cause: error });
  }
}

function configure(db: Database, filePath: string): void {
  // WAL: readers (the API) never block the writer (the engine), and a commit is one append.
  const journalMode = db.pragma('journal_mode = WAL', { simple: true });
  if (journalMode !== 'wal') {
    throw new Error(`SQLite refused WAL mode for ${filePath} (journal_mode is '${String(journalMode)}')`);
  }
  // NORMAL rather than FULL: in WAL mode NORMAL never corrupts the file; a process crash
  // (SIGKILL) loses nothing, and only an OS crash or power loss can roll back the last
  // transactions since the WAL was last synced. Every such loss is repaired by what the engine
  // already does: a lost part row is found again by ListParts, a lost completion re-uploads one
  // file to the same key, a lost claim is a task still pending. (A request created in the last
  // moment before the power went would have to be created again.) FULL would add an fsync to
  // every claim, progress write and completion, which bounds the rate of small files uploaded.
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
}
