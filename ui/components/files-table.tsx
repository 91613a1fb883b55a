// The files of the open upload, failed ones and their messages first. Events change a row at once;
// a file that starts, completes or fails also has the list read again (coalesced), since it may
// enter or leave the filter, and the refresh signal rereads it after a reconnection or a poll.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiError } from '../api.js';
import type { FileTask } from '../api-types.js';
import { Coalescer, Latest } from '../coalesce.js';
import type { FileEvent, ServiceEvent } from '../events.js';
import { isFileEvent } from '../events.js';
import { latestOfEach } from '../file-reads.js';
import { FILTERS, readFiles, type FeedPosition, type FileFilter } from '../files-feed.js';
import { formatBytes, formatTime } from '../format.js';
import type { Listeners } from '../listeners.js';
import { Bar, StatusText } from './bits.js';

const PAGE = 100;

interface Props {
  uploadId: string;
  refresh: number;
  events: Listeners<ServiceEvent>;
}

interface Loaded {
  items: FileTask[];
  next: FeedPosition | null;
}

export function FilesTable({ uploadId, refresh, events }: Props) {
  const [filter, setFilter] = useState<FileFilter>('all');
  const [loaded, setLoaded] = useState<Loaded>();
  const [error, setError] = useState<string>();
  const [loadingMore, setLoadingMore] = useState(false);
  const wanted = useRef(PAGE); // how many rows to keep when the list is read again
  const latest = useMemo(() => new Latest(), []);
  const [reread, setReread] = useState(0);
  const coalescer = useMemo(() => new Coalescer(() => setReread((n) => n + 1)), []);

  useEffect(() => {
    wanted.current = PAGE;
    setLoaded(undefined);
  }, [uploadId, filter]);

  useEffect(() => {
    const ticket = latest.begin('files');
    readFiles(uploadId, filter, wanted.current).then(
      (page) => {
        if (!latest.current('files', ticket)) return;
        setLoaded(page);
        setError(undefined);
      },
      (failure: unknown) => {
        if (latest.current('files', ticket)) setError(messageOf(failure));
      },
    );
  }, [uploadId, filter, refresh, reread, latest]);

  useEffect(() => {
    const stop = events.add((event) => {
      if (!isFileEvent(event) || event.data.upload_id !== uploadId) return;
      setLoaded(
        (current) => current && { ...current, items: current.items.map((row) => applied(row, event)) },
      );
      if (event.type !== 'file.progress') coalescer.schedule('files');
    });
    return () => {
      stop();
      coalescer.cancel();
    };
  }, [uploadId, events, coalescer]);

  const loadMore = async (): Promise<void> => {
    if (!loaded?.next || loadingMore) return;
    setLoadingMore(true);
    const ticket = latest.begin('files');
    try {
      const page = await readFiles(uploadId, filter, PAGE, loaded.next);
      if (!latest.current('files', ticket)) return;
      const items = latestOfEach([...loaded.items, ...page.items]);
      wanted.current = items.length;
      setLoaded({ items, next: page.next });
    } catch (failure) {
      setError(messageOf(failure));
    } finally {
      setLoadingMore(false);
    }
  };

  const filterId = `files-filter-${uploadId}`;
  return (
    <section class="files" aria-labelledby="files-heading">
      <div class="section-head">
        <h3 id="files-heading">Files</h3>
        <label for={filterId}>Status</label>
        <select
          id={filterId}
          value={filter}
          onChange={(event) => setFilter(event.currentTarget.value as FileFilter)}
        >
          {FILTERS.map((option) => (
            <option key={option.value} value={option.value}>
              {option.label}
            </option>
          ))}
        </select>
      </div>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {loaded === undefined ? (
        <p class="empty">Reading the files…</p>
      ) : loaded.items.length === 0 ? (
        <p class="empty">No files{filter === 'all' ? ' yet' : ' with this status'}.</p>
      ) : (
        <FileRows items={loaded.items} />
      )}
      {loaded?.next && (
        <button type="button" onClick={() => void loadMore()} aria-disabled={loadingMore}>
          {loadingMore ? 'Reading more files…' : `Show ${PAGE} more files`}
        </button>
      )}
    </section>
  );
}

function FileRows({ items }: { items: FileTask[] }) {
  return (
    <div class="table-scroll">
      <table class="file-list">
        <caption class="visually-hidden">Files, failed ones first</caption>
        <thead>
          <tr>
            <th scope="col">File and object key</th>
            <th scope="col">Status</th>
            <th scope="col">Size</th>
            <th scope="col">Uploaded</th>
            <th scope="col">Attempts</th>
            <th scope="col">Message</th>
            <th scope="col">When</th>
          </tr>
        </thead>
        <tbody>
          {items.map((file) => (
            <tr key={file.task_id} class={`file-${file.status}`} data-path={file.relative_path}>
              <th scope="row">
                <span class="path">{file.relative_path}</span>
                <span class="key">{file.object_key}</span>
              </th>
              <td>
                <StatusText status={file.status} />
              </td>
              <td class="number">{formatBytes(file.size)}</td>
              <td>
                {file.status === 'in_progress' ? (
                  <Bar
                    label={`Uploaded of ${file.relative_path}`}
                    value={file.bytes_uploaded}
                    max={file.size}
                    text={formatBytes(file.bytes_uploaded)}
                  />
                ) : (
                  formatBytes(file.bytes_uploaded)
                )}
              </td>
              <td class="number">{file.attempts}</td>
              <td class="message">
                {file.last_error ?? (file.skipped === null ? '' : `not sent: ${file.skipped}`)}
              </td>
              <td>{formatTime(file.completed_at ?? file.failed_at ?? file.updated_at)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** The row as the event says it now is; the next read of the list confirms it. */
function applied(row: FileTask, event: FileEvent): FileTask {
  if (row.task_id !== event.data.task_id) return row;
  switch (event.type) {
    case 'file.started':
      return { ...row, status: 'in_progress', size: event.data.size };
    case 'file.progress':
      return {
        ...row,
        status: 'in_progress',
        size: event.data.size,
        bytes_uploaded: event.data.bytes_uploaded,
      };
    case 'file.completed':
      return {
        ...row,
        status: 'completed',
        size: event.data.size,
        bytes_uploaded: event.data.size,
        last_error: null,
        skipped: event.data.skipped,
        completed_at: event.data.at,
      };
    case 'file.failed':
      return { ...row, status: 'failed', last_error: event.data.message, failed_at: event.data.at };
  }
}

function messageOf(failure: unknown): string {
  return failure instanceof ApiError || failure instanceof Error ? failure.message : String(failure);
}
