// Opening the SQLite file with the settings the store relies on, holding it for this process alone,
// and bringing its schema up to date.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Sqlite from 'better-sqlite3';
import type { Database } from 'better-sqlite3';
import { DatabaseInUseError } from '../store.js';
import { migrate } from './migrations.js';

/** How long a statement waits for a lock before failing with SQLITE_BUSY, once the file is ours. */
const BUSY_TIMEOUT_MS = 5000;

/**
 * Opens, locks and migrates the file. Throws DatabaseInUseError when another process holds it;
 * any other failure is an Error that names the file.
 */
export function openDatabase(filePath: string): Database {
  try {
    mkdirSync(path.dirname(filePath), { recursive: true });
    // No waiting while the lock is taken: a lock held by another process is not released soon,
    // it is held by a running instance until it stops.
    const db = new Sqlite(filePath, { timeout: 0 });
    try {
      holdExclusively(db, filePath);
      configure(db);
      migrate(db);
      return db;
    } catch (error) {
      db.close();
      throw error;
    }
  } catch (error) {
    if (error instanceof DatabaseInUseError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`cannot open the SQLite database ${filePath}: ${reason}`, { cause: error });
  }
}

/**
 * One SQLite file serves one running instance: at start-up the engine takes every in_progress task
 * of the file for one that its own crash interrupted, which is only right when no other instance is
 * running them. EXCLUSIVE locking mode, set before the first access, makes the connection hold
 * an exclusive lock on the file from its first write until it closes; the operating system drops
 * the lock when the process dies, so a killed instance never blocks the next one. In WAL mode it
 * also keeps the WAL index in heap memory rather than in a shared -shm file.
 */
function holdExclusively(db: Database, filePath: string): void {
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    // WAL: a commit is one append to the log, not a rewrite of pages in place behind a journal.
    const journalMode = db.pragma('journal_mode = WAL', { simple: true });
    if (journalMode !== 'wal') {
      throw new Error(`SQLite refused WAL mode (journal_mode is '${String(journalMode)}')`);
    }
    // An empty write transaction takes the lock now, rather than at the first real write.
    db.exec('BEGIN IMMEDIATE; COMMIT');
  } catch (error) {
    if (error instanceof Sqlite.SqliteError && error.code.startsWith('SQLITE_BUSY')) {
      throw new DatabaseInUseError(filePath);
    }
    throw error;
  }
}

function configure(db: Database): void {
  // NORMAL rather than FULL: in WAL mode NORMAL never corrupts the file; a process crash
  // (SIGKILL) loses nothing, and only an OS crash or power loss can roll back the last
  // transactions since the WAL was last synced. Every such loss is repaired by what the engine
  // already does: a lost part row is found again by ListParts, a lost completion re-uploads one
  // file to the same key, a lost claim is a task still pending. Only what no one would redo, a
  // upload created or cancelled, is synced at once (withSyncedCommit). FULL would add an fsync to
  // every claim, progress write and completion, which bounds the rate of small files uploaded.
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  // Statement journals in memory: in EXCLUSIVE locking mode, once one has spilled to a temporary
  // file, the connection keeps that file and writes every later statement journal to it, which
  // doubled the time to record new files. They hold only what one statement changed.
  db.pragma('temp_store = MEMORY');
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
}

/**
 * Runs `write` with its commit synced to disk (synchronous = FULL for this one commit), for the
 * few writes a client was told succeeded and nothing else would redo: creating and cancelling a
 * upload. With NORMAL, the log is synced only at checkpoints, so a power cut, or a disk error that
 * turns the file system read-only, loses every commit since the last one; FULL here costs one
 * fsync per upload created, and syncs the commits before it too.
 */
export function withSyncedCommit<T>(db: Database, write: () => T): T {
  db.pragma('synchronous = FULL');
  try {
    return write();
  } finally {
    db.pragma('synchronous = NORMAL');
  }
}
