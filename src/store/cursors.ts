// The cursor of listTasks, the same for every store: the last task id of the page, in decimal.
import { InvalidCursorError } from './errors.js';

export function cursorOfTaskId(taskId: number): string {
  return String(taskId);
}

/** Throws InvalidCursorError for anything cursorOfTaskId does not make. */
export function taskIdOfCursor(cursor: string): number {
  const taskId = /^[1-9][0-9]{0,15}$/.test(cursor) ? Number(cursor) : NaN;
  if (!Number.isSafeInteger(taskId)) throw new InvalidCursorError(cursor);
  return taskId;
}
