// The open upload: where it stands, its last scan, the actions on it, and its files.
import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { callApi, uploadPath } from '../api.js';
import type { RescanResult, RetryResult, Scan, UploadDetails, VerifyResult } from '../api-types.js';
import type { ServiceEvent } from '../events.js';
import { formatEta, formatRate, formatTime, objectPropertyPhrases } from '../format.js';
import type { Listeners } from '../listeners.js';
import { PhaseBadge } from './bits.js';
import { ConfirmDialog } from './confirm-dialog.js';
import { FilesTable } from './files-table.js';
import { destinationOf } from './uploads-table.js';
import { VerifyReport } from './verify-report.js';

interface Props {
  uploadId: string;
  details: UploadDetails | undefined;
  /** Why the upload could not be read (an unknown id, say). */
  loadError: string | undefined;
  refresh: number;
  events: Listeners<ServiceEvent>;
  /** An action changed the upload: read it (and the list) again. */
  onChanged(uploadId: string): void;
  announce(message: string): void;
}

type Action = 'retry' | 'rescan' | 'verify' | 'cancel';

export function UploadPanel(props: Props) {
  const { uploadId, details } = props;
  const [running, setRunning] = useState<Action>();
  const [actionError, setActionError] = useState<string>();
  const [report, setReport] = useState<VerifyResult>();
  const [confirming, setConfirming] = useState(false);
  const heading = useRef<HTMLHeadingElement>(null);

  useEffect(() => {
    setActionError(undefined);
    setReport(undefined);
    heading.current?.focus(); // a keyboard user who opened it is taken to it
  }, [uploadId]);

  const act = async (action: Action, run: () => Promise<string>): Promise<void> => {
    if (running) return;
    setRunning(action);
    setActionError(undefined);
    try {
      props.announce(await run());
      props.onChanged(uploadId);
    } catch (failure) {
      setActionError(failure instanceof Error ? failure.message : String(failure));
    } finally {
      setRunning(undefined);
    }
  };
  const path = (rest: string): string => uploadPath(uploadId, rest);
  const retry = () =>
    act('retry', async () => {
      const result = await callApi<RetryResult>('POST', path('/retry'));
      return `${uploadId}: ${result.requeued} failed ${result.requeued === 1 ? 'file' : 'files'} queued again.`;
    });
  const rescan = () =>
    act('rescan', async () => {
      const result = await callApi<RescanResult>('POST', path('/rescan'));
      return result.rescan === 'started'
        ? `${uploadId}: a scan of the folder started.`
        : `${uploadId}: a scan of the folder is already running.`;
    });
  const verify = () =>
    act('verify', async () => {
      setReport(undefined);
      const result = await callApi<VerifyResult>('POST', path('/verify'));
      setReport(result);
      return `${uploadId}: verify checked ${result.checked} files, ${result.mismatched} found wrong.`;
    });
  const cancel = () => {
    setConfirming(false);
    void act('cancel', async () => {
      await callApi('DELETE', path(''));
      return `${uploadId} is cancelled.`;
    });
  };

  // A cancelled upload, or a completed one-shot one, has nothing left to retry, scan or stop.
  const cancelled = details?.status === 'cancelled' || details?.status === 'completed';
  return (
    <section class="panel" aria-labelledby="upload-heading">
      <h2 id="upload-heading" tabIndex={-1} ref={heading}>
        Upload <span class="upload-id">{uploadId}</span>{' '}
        {details && <PhaseBadge phase={details.progress.phase} />}
      </h2>
      {props.loadError && (
        <p role="alert" class="error">
          {props.loadError}
        </p>
      )}
      {details && <Facts details={details} />}
      {details && (
        <div class="actions" role="group" aria-label={`Actions on ${uploadId}`}>
          {!cancelled && (
            <>
              <ActionButton action="retry" running={running} onClick={retry} busyLabel="Retrying…">
                Retry failed files ({details.files.failed})
              </ActionButton>
              <ActionButton action="rescan" running={running} onClick={rescan} busyLabel="Asking for a scan…">
                Rescan the folder
              </ActionButton>
            </>
          )}
          <ActionButton action="verify" running={running} onClick={verify} busyLabel="Verifying…">
            Verify against S3
          </ActionButton>
          {!cancelled && (
            <ActionButton
              action="cancel"
              running={running}
              onClick={() => setConfirming(true)}
              busyLabel="Cancelling…"
              danger
            >
              Cancel upload…
            </ActionButton>
          )}
        </div>
      )}
      {actionError && (
        <p role="alert" class="error">
          {actionError}
        </p>
      )}
      {report && <VerifyReport report={report} onDismiss={() => setReport(undefined)} />}
      {details && <FilesTable uploadId={uploadId} refresh={props.refresh} events={props.events} />}
      <ConfirmDialog
        open={confirming}
        title={`Cancel ${uploadId}?`}
        confirmLabel="Cancel the upload"
        keepLabel="Keep it"
        onConfirm={cancel}
        onClose={() => setConfirming(false)}
      >
        <p>
          The folder stops being watched and the files being sent are aborted. Objects already in S3 stay. A
          cancelled upload cannot be resumed.
        </p>
      </ConfirmDialog>
    </section>
  );
}

function ActionButton(props: {
  action: Action;
  running: Action | undefined;
  onClick(): void;
  busyLabel: string;
  danger?: boolean;
  children: ComponentChildren;
}) {
  const busy = props.running === props.action;
  return (
    <button
      type="button"
      class={props.danger ? 'danger' : undefined}
      aria-disabled={props.running !== undefined}
      onClick={props.onClick}
    >
      {busy ? props.busyLabel : props.children}
    </button>
  );
}

function Facts({ details }: { details: UploadDetails }) {
  return (
    <dl class="facts">
      <dt>Source folder</dt>
      <dd class="path">{details.source_folder}</dd>
      <dt>Destination</dt>
      <dd class="path">{destinationOf(details)}</dd>
      <dt>Pattern</dt>
      <dd>
        <code>{details.pattern}</code>
      </dd>
      <dt>Status</dt>
      <dd>
        {details.status}
        {details.completed_at !== null && `, ${formatTime(details.completed_at)}`}
        {!details.watch && ' (once: not watched)'}
      </dd>
      <dt>Speed, time left</dt>
      <dd>
        {formatRate(details.progress.bytes_per_second)}, {formatEta(details.progress.eta_seconds)}
      </dd>
      <dt>Objects</dt>
      <dd>{describeObjects(details)}</dd>
      {arrivalExpected(details) && (
        <>
          <dt>Arrival</dt>
          <dd>{describeArrival(details)}</dd>
        </>
      )}
      <dt>Created</dt>
      <dd>{formatTime(details.created_at)}</dd>
      <dt>Last scan</dt>
      <dd>{describeScan(details.last_scan)}</dd>
      {details.last_error !== null && (
        <>
          <dt>Last error</dt>
          <dd class="message">{details.last_error}</dd>
        </>
      )}
    </dl>
  );
}

/** Each file's Content-Type comes from its extension; then what the upload sets, or that it sets nothing. */
function describeObjects(details: UploadDetails): string {
  const phrases = objectPropertyPhrases(details.object_properties);
  return ['Content-Type by extension', ...phrases].join('; ');
}

/** The upload tells downstream of its arrival: a marker, a manifest or a notification. */
function arrivalExpected(details: UploadDetails): boolean {
  return details.complete_markers.length > 0 || details.manifest || details.notify_url !== null;
}

/** When every file was in S3 and what told it; the manifest and the notification, when asked for. */
function describeArrival(details: UploadDetails): string {
  const { arrival, last_manifest: manifest, notification } = details;
  const markers = details.complete_markers.map((marker) => `‘${marker}’`).join(', ');
  const phrases = [
    arrival === null
      ? markers === ''
        ? 'not yet'
        : `not yet: ${markers} waits for the other files`
      : `${formatTime(arrival.at)}, ${arrival.files} files${arrival.marker_key === null ? '' : `, then ${arrival.marker_key}`}`,
  ];
  if (details.manifest_key !== null)
    phrases.push(
      manifest === null ? 'no manifest yet' : `manifest of ${manifest.files} files at ${manifest.key}`,
    );
  if (notification !== null)
    phrases.push(
      notification.status === 'delivered'
        ? `notified after ${attemptsOf(notification.attempts)}`
        : `notification ${notification.status} after ${attemptsOf(notification.attempts)}${notification.last_error === null ? '' : `: ${notification.last_error}`}`,
    );
  return phrases.join('; ');
}

function describeScan(scan: Scan | null): string {
  if (scan === null) return 'none since the service started';
  const seen = `${scan.files_seen} files seen`;
  if (scan.finished_at === null)
    return `${scan.kind} scan running since ${formatTime(scan.started_at)}, ${seen}`;
  const outcome = scan.error === null ? `${scan.files_changed} new or changed` : `failed: ${scan.error}`;
  return `${scan.kind}, ${formatTime(scan.finished_at)}: ${seen}, ${outcome} (${scan.duration_ms} ms)`;
}

/** `1 attempt`, `3 attempts`. */
function attemptsOf(count: number): string {
  return `${count} attempt${count === 1 ? '' : 's'}`;
}
