// The files of an upload as the page lists them. "All" reads the statuses one after another,
// failed files first (they need a person), then those in progress, pending and completed, each
// paged with the API's cursor; a filter reads one status. GET /uploads/{id}/files has no order by
// status, so the page asks status by status rather than sorting a partial list itself.
import { callApi, uploadPath } from './api.js';
import type { FilePage, FileTask, TaskStatus } from './api-types.js';
import { latestOfEach } from './file-reads.js';

export type FileFilter = 'all' | TaskStatus;

export const FILTERS: { value: FileFilter; label: string }[] = [
  { value: 'all', label: 'All (failed first)' },
  { value: 'failed', label: 'Failed' },
  { value: 'in_progress', label: 'In progress' },
  { value: 'pending', label: 'Pending' },
  { value: 'completed', label: 'Completed' },
];

const ALL_IN_ORDER: TaskStatus[] = ['failed', 'in_progress', 'pending', 'completed'];
const MAX_PAGE = 1000;

/** Where the next page starts: which status of the filter, and the cursor within it. */
export interface FeedPosition {
  statusIndex: number;
  cursor: string | null;
}

export const FEED_START: FeedPosition = { statusIndex: 0, cursor: null };

export interface FeedPage {
  items: FileTask[];
  /** null when every file of the filter was read. */
  next: FeedPosition | null;
}

/** Reads `count` files (fewer when there are no more) from `from`. */
export async function readFiles(
  uploadId: string,
  filter: FileFilter,
  count: number,
  from: FeedPosition = FEED_START,
): Promise<FeedPage> {
  const statuses = filter === 'all' ? ALL_IN_ORDER : [filter];
  const items: FileTask[] = [];
  let { statusIndex, cursor } = from;
  while (items.length < count && statusIndex < statuses.length) {
    const query = new URLSearchParams({
      status: statuses[statusIndex]!,
      limit: String(Math.min(MAX_PAGE, count - items.length)),
    });
    if (cursor !== null) query.set('cursor', cursor);
    const page = await callApi<FilePage>('GET', uploadPath(uploadId, `/files?${query}`));
    items.push(...page.items);
    cursor = page.next_cursor;
    if (cursor === null) statusIndex += 1;
  }
  return { items: latestOfEach(items), next: statusIndex < statuses.length ? { statusIndex, cursor } : null };
}
