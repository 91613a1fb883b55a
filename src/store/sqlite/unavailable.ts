// The SQLite failures that say the database cannot be used right now (its disk is full or
// read-only, an I/O error, a lock), as opposed to a bug: the store throws them as
// DatabaseUnavailableError, which the API answers with a 503 that names the cause.
import Sqlite from 'better-sqlite3';
import { DatabaseUnavailableError } from '../../domain/errors.js';

/** By the primary result code (the part before an extended code's suffix, e.g. SQLITE_IOERR_WRITE). */
const CAUSES: ReadonlyArray<[prefix: string, cause: string]> = [
  ['SQLITE_FULL', 'the disk that holds it is full'],
  ['SQLITE_READONLY_DBMOVED', 'its file was moved or deleted while the service runs; restart the service'],
  ['SQLITE_READONLY', 'its file or disk is read-only'],
  ['SQLITE_IOERR', 'its disk failed with an input/output error'],
  ['SQLITE_BUSY', 'it is busy: another connection holds its lock'],
  ['SQLITE_LOCKED', 'it is busy: another connection holds its lock'],
  ['SQLITE_CANTOPEN', 'its file cannot be opened'],
];

/**
 * Why the database cannot be used, in words with SQLite's code ("the disk that holds it is full
 * (SQLITE_FULL)"), or undefined when the error is not one of those failures.
 */
export function databaseUnavailableCause(error: unknown): string | undefined {
  if (!(error instanceof Sqlite.SqliteError)) return undefined;
  const { code } = error;
  const match = CAUSES.find(([prefix]) => code === prefix || code.startsWith(`${prefix}_`));
  return match ? `${match[1]} (${code})` : undefined;
}

/** The error as the store throws it: a DatabaseUnavailableError (the driver's error as its cause), or as it was. */
export function asDatabaseUnavailable(error: unknown): unknown {
  const reason = databaseUnavailableCause(error);
  return reason === undefined ? error : new DatabaseUnavailableError(reason, { cause: error });
}
