// The dashboard: a client of the REST API and its event stream, nothing else. The API is the
// source of truth; events say when to read it again (and move file rows at once). While the
// stream is not open (not yet, dropped, or a service without /events) the page reads everything
// every 2 s instead.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiError, callApi, readHealth, savedToken, uploadPath, whenUnauthorized } from '../api.js';
import type { Health, UploadDetails, UploadPhase, UploadSummary } from '../api-types.js';
import { Coalescer, Latest } from '../coalesce.js';
import type { ServiceEvent } from '../events.js';
import { Listeners } from '../listeners.js';
import { connectLive, type LiveStatus } from '../live.js';
import { BandwidthForm } from './bandwidth-form.js';
import { CreateUploadForm } from './create-form.js';
import { InstancesList } from './instances-list.js';
import { selectUpload, useSelectedUpload } from './selection.js';
import { TokenForm } from './token-form.js';
import { UploadPanel } from './upload-panel.js';
import { UploadsTable } from './uploads-table.js';

const POLL_MS = 2000;
const LIST = 'list';

const LIVE_WORDS: Record<LiveStatus, string> = {
  connecting: 'Connecting to live updates…',
  live: 'Live: updates as they happen',
  reconnecting: 'Live updates interrupted: reconnecting, and reading again every 2 s',
  unavailable: 'Live updates unavailable: reading again every 2 s',
  unauthorized: 'Live updates need the API token',
};

interface Opened {
  uploadId: string;
  details?: UploadDetails;
  error?: string;
}

export function App() {
  const [needsToken, setNeedsToken] = useState(false);
  const [session, setSession] = useState(0); // a new token: connect again
  const [live, setLive] = useState<LiveStatus>('connecting');
  const [refresh, setRefresh] = useState(0); // read everything again
  const [uploads, setUploads] = useState<UploadSummary[]>();
  const [showCancelled, setShowCancelled] = useState(false);
  const [opened, setOpened] = useState<Opened>();
  const [health, setHealth] = useState<Health>();
  const [trouble, setTrouble] = useState<string>();
  const [announcement, setAnnouncement] = useState({ text: '', count: 0 });
  const selectedId = useSelectedUpload();
  const events = useMemo(() => new Listeners<ServiceEvent>(), []);
  const latest = useMemo(() => new Latest(), []);

  const announce = (text: string): void => setAnnouncement((current) => ({ text, count: current.count + 1 }));
  // Phases as last read, so that a change is told however it was learnt (an event or a poll).
  const phases = useRef(new Map<string, UploadPhase>());
  const notePhases = (read: UploadSummary[]): void => {
    for (const { upload_id: uploadId, progress } of read) {
      const before = phases.current.get(uploadId);
      phases.current.set(uploadId, progress.phase);
      if (before !== undefined && before !== progress.phase) announce(`${uploadId} is ${progress.phase}.`);
    }
  };
  const failed = (failure: unknown): void => {
    if (failure instanceof ApiError && failure.status === 401) return; // the token form shows
    setTrouble(failure instanceof Error ? failure.message : String(failure));
  };

  // The handlers below read the state of the last render, whatever render created them.
  const state = useRef({ selectedId, showCancelled });
  state.current = { selectedId, showCancelled };

  const readList = async (): Promise<void> => {
    const ticket = latest.begin(LIST);
    const query = state.current.showCancelled ? '?status=all' : '';
    try {
      const list = await callApi<UploadSummary[]>('GET', `uploads${query}`);
      if (!latest.current(LIST, ticket)) return;
      setUploads(list);
      notePhases(list);
      setTrouble(undefined);
    } catch (failure) {
      failed(failure);
    }
  };

  /** One upload read again: its row of the list and, when it is open, its panel. */
  const readUpload = async (uploadId: string): Promise<void> => {
    const ticket = latest.begin(uploadId);
    try {
      const upload = await callApi<UploadDetails>('GET', uploadPath(uploadId));
      if (!latest.current(uploadId, ticket)) return;
      notePhases([upload]);
      const hidden = upload.status === 'cancelled' && !state.current.showCancelled;
      setUploads((list) => {
        if (list === undefined) return list;
        if (hidden) return list.filter((item) => item.upload_id !== uploadId);
        if (!list.some((item) => item.upload_id === uploadId)) return [...list, upload];
        return list.map((item) => (item.upload_id === uploadId ? upload : item));
      });
      if (state.current.selectedId === uploadId) setOpened({ uploadId, details: upload });
    } catch (failure) {
      if (failure instanceof ApiError && failure.status === 404 && state.current.selectedId === uploadId) {
        setOpened({ uploadId, error: failure.message });
      } else failed(failure);
    }
  };

  const coalescer = useMemo(
    () => new Coalescer((key) => void (key === LIST ? readList() : readUpload(key))),
    [], // the readers it calls read the state through state.current
  );

  const onEvent = (event: ServiceEvent): void => {
    events.emit(event);
    const uploadId = event.data.upload_id;
    if (
      event.type === 'upload.created' ||
      event.type === 'upload.cancelled' ||
      event.type === 'upload.completed'
    ) {
      coalescer.schedule(LIST);
    }
    coalescer.schedule(uploadId);
  };
  const handlers = useRef({ onEvent });
  handlers.current = { onEvent };

  useEffect(() => whenUnauthorized(() => setNeedsToken(true)), []);

  useEffect(() => {
    if (needsToken) return undefined;
    return connectLive({
      onEvent: (event) => handlers.current.onEvent(event),
      onStatus: (status) => {
        setLive(status);
        if (status === 'unauthorized') setNeedsToken(true);
      },
      onOpen: () => setRefresh((n) => n + 1),
    });
  }, [needsToken, session]);

  useEffect(() => {
    if (needsToken || live === 'live') return undefined;
    const timer = setInterval(() => setRefresh((n) => n + 1), POLL_MS);
    return () => clearInterval(timer);
  }, [needsToken, live]);

  useEffect(() => {
    if (needsToken) return;
    void readList();
    readHealth().then(setHealth, () => setHealth(undefined));
  }, [needsToken, refresh, showCancelled]);

  useEffect(() => {
    if (needsToken || selectedId === undefined) return;
    setOpened((current) => (current?.uploadId === selectedId ? current : { uploadId: selectedId }));
    void readUpload(selectedId);
  }, [needsToken, refresh, selectedId]);

  useEffect(() => () => coalescer.cancel(), [coalescer]);

  if (needsToken) {
    return (
      <TokenForm
        onAccepted={() => {
          setNeedsToken(false);
          setSession((n) => n + 1);
          announce('Token accepted.');
        }}
      />
    );
  }

  const forgetToken = (): void => {
    savedToken.forget();
    announce('The token is forgotten.');
    setRefresh((n) => n + 1); // a service with a token answers 401: the token form shows
  };

  return (
    <>
      <header class="top">
        <h1>S3 folder uploader</h1>
        <p class={`live live-${live}`} data-live={live}>
          <span aria-hidden="true" class="dot" />
          {LIVE_WORDS[live]}
        </p>
        {health && <HealthLine health={health} />}
        {savedToken.get() !== null && (
          <button type="button" onClick={forgetToken}>
            Forget the token
          </button>
        )}
      </header>
      <div role="status" class="announcer">
        <span key={announcement.count}>{announcement.text}</span>
      </div>
      {trouble && (
        <p role="alert" class="error trouble">
          {trouble}
        </p>
      )}
      <main class="layout">
        <div class="primary">
          <section aria-labelledby="uploads-heading">
            <div class="section-head">
              <h2 id="uploads-heading">Uploads</h2>
              <label class="inline">
                <input
                  type="checkbox"
                  checked={showCancelled}
                  onChange={(event) => setShowCancelled(event.currentTarget.checked)}
                />{' '}
                Show cancelled uploads
              </label>
            </div>
            {uploads === undefined ? (
              <p class="empty">Reading the uploads…</p>
            ) : (
              <UploadsTable uploads={uploads} selectedId={selectedId} />
            )}
          </section>
          {selectedId === undefined ? (
            <p class="empty">Open an upload (its id in the table) to see its files and act on it.</p>
          ) : (
            <UploadPanel
              key={selectedId}
              uploadId={selectedId}
              details={opened?.uploadId === selectedId ? opened.details : undefined}
              loadError={opened?.uploadId === selectedId ? opened.error : undefined}
              refresh={refresh}
              events={events}
              onChanged={(uploadId) => {
                coalescer.schedule(uploadId);
                coalescer.schedule(LIST);
              }}
              announce={announce}
            />
          )}
        </div>
        <aside class="secondary">
          <CreateUploadForm
            onCreated={(upload) => {
              announce(`${upload.upload_id} is created.`);
              coalescer.schedule(LIST);
              selectUpload(upload.upload_id);
            }}
          />
          <BandwidthForm refresh={refresh} announce={announce} />
          <InstancesList refresh={refresh} />
        </aside>
      </main>
    </>
  );
}

function HealthLine({ health }: { health: Health }) {
  const s3 =
    health.s3.status === 'reachable' ? 'S3 reachable' : `S3 unreachable: ${health.s3.last_error ?? ''}`;
  const database = health.database === 'reachable' ? 'database reachable' : `database ${health.database}`;
  return (
    <p class={`health health-${health.status}`}>
      Service {health.version}: {s3}, {database}
    </p>
  );
}
