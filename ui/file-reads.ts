// Files read in several requests (a status at a time, or a page more) are merged here: no DOM, no
// API, so that it is tested on its own.
import type { FileTask } from './api-types.js';

/**
 * Each file once, as last read: a file whose status changed between two requests (read pending,
 * then completed) is listed where the later one put it.
 */
export function latestOfEach(items: readonly FileTask[]): FileTask[] {
  const last = new Map(items.map((item, index) => [item.task_id, index]));
  return items.filter((item, index) => last.get(item.task_id) === index);
}
