// Errors any Store raises, whatever its database: arguments it cannot use, and a schema newer
// than this build.

/** A listTasks cursor that no listTasks call returned. */
export class InvalidCursorError extends Error {
  constructor(readonly cursor: string) {
    super(`'${cursor}' is not a valid cursor: pass the nextCursor of a previous page`);
    this.name = 'InvalidCursorError';
  }
}

/**
 * A limit of at least 1, checked before any query: SQLite reads a negative LIMIT as "no limit",
 * and a claim of 0 tasks is a caller's mistake, not an empty queue.
 */
export function assertLimit(operation: string, limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new RangeError(`${operation}: limit must be a whole number of at least 1, got ${limit}`);
  }
}

/** The database was migrated by a newer build of the service, whose schema this one does not know. */
export class SchemaTooNewError extends Error {
  constructor(
    readonly databaseVersion: number,
    readonly knownVersion: number,
  ) {
    super(
      `the database is at schema version ${databaseVersion}, but this build knows only up to ${knownVersion}: ` +
        'it was written by a newer version of the service',
    );
    this.name = 'SchemaTooNewError';
  }
}

/**
 * A write about a task's run (its multipart upload, a part) from an instance that no longer holds
 * the task: its lease expired, and another instance claimed it since. Nothing was written.
 */
export class TaskNotHeldError extends Error {
  constructor(
    readonly taskId: number,
    readonly holder: string,
  ) {
    super(
      `task ${taskId} is held by instance ${holder}, not by this one: this instance's lease on it expired and another claimed it`,
    );
    this.name = 'TaskNotHeldError';
  }
}
