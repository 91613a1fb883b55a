// Errors the store raises for arguments it cannot use. InvalidCursorError belongs with the Store
// contract (any implementation pages with cursors); it lives here until it moves there.

/** A listTasks cursor that no listTasks call returned. */
export class InvalidCursorError extends Error {
  constructor(readonly cursor: string) {
    super(`'${cursor}' is not a valid cursor: pass the nextCursor of a previous page`);
    this.name = 'InvalidCursorError';
  }
}

/** SQLite reads a negative LIMIT as "no limit", so a bad value must never reach a query. */
export function assertLimit(operation: string, limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new RangeError(`${operation}: limit must be a whole number of at least 1, got ${limit}`);
  }
}
