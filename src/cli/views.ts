// The human output of each command, from the API's replies: compact lines and tables. Pure
// functions, so that what people read is decided in one place.
import type {
  CreatedUploadReply,
  FileItem,
  SettingsReply,
  UploadDetailsReply,
  UploadSummaryReply,
  VerifyReply,
} from '../api/schemas.js';
import {
  alignColumns,
  formatBytes,
  formatBytesOf,
  formatEta,
  formatPercent,
  formatRate,
  formatTable,
  s3Url,
} from './format.js';

type UploadWithProgress = UploadSummaryReply | UploadDetailsReply;

/** Percent of the bytes done; an idle or completed upload is done, even one with no bytes at all. */
export function percentOf(upload: UploadWithProgress): string {
  const done = upload.progress.phase === 'idle' || upload.progress.phase === 'completed';
  if (done && upload.bytes.total === 0) return '100%';
  return formatPercent(upload.bytes.uploaded, upload.bytes.total);
}

/** `3/7` files completed, and how many failed when some did. */
export function filesDone(upload: UploadWithProgress): string {
  const { completed, total, failed } = upload.files;
  return failed > 0 ? `${completed}/${total} (${failed} failed)` : `${completed}/${total}`;
}

/** One line for an upload in progress: what `status --wait` prints when it draws no bar. */
export function progressLine(upload: UploadDetailsReply): string {
  const { phase, bytes_per_second, eta_seconds } = upload.progress;
  const scan = upload.last_scan;
  if (phase === 'scanning' && scan) {
    return `${upload.upload_id} scanning: ${scan.files_seen} files seen, ${filesDone(upload)} files done`;
  }
  return [
    upload.upload_id,
    phase,
    percentOf(upload),
    formatBytesOf(upload.bytes.uploaded, upload.bytes.total),
    formatRate(bytes_per_second),
    `ETA ${formatEta(eta_seconds)}`,
    `files ${filesDone(upload)}`,
  ].join(' ');
}

export function uploadTable(uploads: readonly UploadSummaryReply[]): string[] {
  return formatTable(
    ['UPLOAD ID', 'PHASE', 'FILES', 'FAILED', 'BYTES', 'DONE', 'RATE', 'ETA', 'DESTINATION'],
    uploads.map((upload) => [
      upload.upload_id,
      upload.progress.phase,
      `${upload.files.completed}/${upload.files.total}`,
      String(upload.files.failed),
      formatBytesOf(upload.bytes.uploaded, upload.bytes.total),
      percentOf(upload),
      formatRate(upload.progress.bytes_per_second),
      formatEta(upload.progress.eta_seconds),
      s3Url(upload.destination_bucket, upload.destination_prefix),
    ]),
  );
}

export function uploadCreatedLines(upload: CreatedUploadReply): string[] {
  return [
    `created upload ${upload.upload_id}: ${upload.source_folder} (${upload.pattern}) → ${s3Url(upload.destination_bucket, upload.destination_prefix)}`,
    ...upload.warnings.map((warning) => `warning: ${warning}`),
    `follow it with: s3-folder-uploader status ${upload.upload_id} --wait`,
  ];
}

export function uploadDetailsLines(upload: UploadDetailsReply): string[] {
  const { files, progress } = upload;
  const lines = [
    `${upload.upload_id}  ${progress.phase}  (status ${upload.status})`,
    ...alignColumns([
      [
        'source',
        `${upload.source_folder}  pattern ${upload.pattern}${upload.watch ? '' : '  (once, not watched)'}`,
      ],
      ['destination', s3Url(upload.destination_bucket, upload.destination_prefix)],
      ['if exists', ifExistsSummary(upload)],
      [
        'files',
        `${files.completed}/${files.total} completed, ${files.pending} pending, ${files.in_progress} uploading, ${files.failed} failed`,
      ],
      ['bytes', `${formatBytesOf(upload.bytes.uploaded, upload.bytes.total)}  ${percentOf(upload)}`],
      ['throughput', `${formatRate(progress.bytes_per_second)}  ETA ${formatEta(progress.eta_seconds)}`],
      ['last completed', progress.last_completed_at ?? 'none yet'],
      ...(upload.completed_at === null ? [] : [['upload completed', upload.completed_at]]),
      ...objectPropertiesRows(upload.object_properties),
      ...arrivalRows(upload),
      ['last scan', scanSummary(upload.last_scan)],
      ...(upload.last_error === null ? [] : [['last error', upload.last_error]]),
    ]).map((line) => `  ${line}`),
  ];
  return lines;
}

function ifExistsSummary(upload: UploadDetailsReply): string {
  if (upload.if_exists === 'overwrite') return 'overwrite';
  const listing = upload.listed_at === null ? 'listing what S3 holds' : `listed ${upload.listed_at}`;
  return `${upload.if_exists}  (${listing})`;
}

/** The properties of the upload's objects that are set, one row each; none when none is. */
function objectPropertiesRows(properties: UploadDetailsReply['object_properties']): string[][] {
  const pairs = (entries: Record<string, string>): string =>
    Object.entries(entries)
      .map(([key, value]) => `${key}=${value}`)
      .join(', ');
  const encryption =
    properties.sse === null
      ? null
      : properties.sse_kms_key_id === null
        ? properties.sse
        : `${properties.sse} (key ${properties.sse_kms_key_id})`;
  const rows: [string, string | null][] = [
    ['storage class', properties.storage_class],
    ['encryption', encryption],
    ['metadata', Object.keys(properties.metadata).length === 0 ? null : pairs(properties.metadata)],
    ['tags', Object.keys(properties.tags).length === 0 ? null : pairs(properties.tags)],
  ];
  return rows.filter((row): row is [string, string] => row[1] !== null);
}

/** The markers, the manifest and the notification, when the upload has any of them. */
function arrivalRows(upload: UploadDetailsReply): string[][] {
  const rows: string[][] = [];
  if (upload.complete_markers.length > 0) rows.push(['markers', upload.complete_markers.join(', ')]);
  const { arrival, last_manifest: manifest, notification } = upload;
  if (arrival !== null) {
    const marker = arrival.marker_key === null ? 'completed' : `marker ${arrival.marker_key}`;
    rows.push([
      'arrived',
      `${arrival.at}  ${marker}, after ${arrival.files} files (${formatBytes(arrival.bytes)})`,
    ]);
  } else if (upload.complete_markers.length > 0) rows.push(['arrived', 'not yet']);
  if (upload.manifest_key !== null) {
    const written =
      manifest === null
        ? 'not written yet'
        : `${manifest.files} files, written ${manifest.written_at}, sha256 ${manifest.sha256}`;
    rows.push(['manifest', `${upload.manifest_key}  ${written}`]);
  }
  if (upload.notify_url !== null) {
    const state =
      notification === null
        ? 'nothing to send yet'
        : notification.status === 'delivered'
          ? `delivered ${notification.delivered_at ?? ''} (${attemptsOf(notification.attempts)})`
          : `${notification.status} after ${attemptsOf(notification.attempts)}${notification.last_error === null ? '' : `: ${notification.last_error}`}`;
    rows.push(['notify', `${upload.notify_url}  ${state}`]);
  }
  return rows;
}

function scanSummary(scan: UploadDetailsReply['last_scan']): string {
  if (scan === null) return 'none since the service started';
  const when = scan.finished_at === null ? `running since ${scan.started_at}` : `${scan.finished_at}`;
  const took =
    scan.duration_ms === null
      ? ''
      : scan.duration_ms < 1000
        ? ` in ${scan.duration_ms} ms`
        : ` in ${(scan.duration_ms / 1000).toFixed(1)} s`;
  const notUtf8 = scan.files_not_utf8 > 0 ? `, ${scan.files_not_utf8} names not UTF-8` : '';
  const error = scan.error === null ? '' : `, failed: ${scan.error}`;
  return `${scan.kind} ${when}${took}: ${scan.files_seen} files seen, ${scan.files_changed} changed${notUtf8}${error}`;
}

/** Fixed widths, so that a listing can be printed a page at a time. */
export function fileLines(file: FileItem): string[] {
  const skipped = file.skipped === null ? '' : `  (not sent: ${file.skipped})`;
  const line = `${file.status.padEnd(11)}  ${formatBytes(file.size).padStart(10)}  ${file.relative_path}${skipped}`;
  return file.last_error === null || file.status === 'completed'
    ? [line]
    : [line, `${' '.repeat(25)}${file.last_error}`];
}

export const FILE_HEADER = `${'STATUS'.padEnd(11)}  ${'SIZE'.padStart(10)}  PATH`;

/** The failed files at the end of `status`, with their messages. */
export function failedFilesLines(
  failed: readonly FileItem[],
  totalFailed: number,
  uploadId: string,
): string[] {
  if (failed.length === 0) return [];
  const more =
    totalFailed > failed.length
      ? [`  … and ${totalFailed - failed.length} more: s3-folder-uploader files ${uploadId} --status failed`]
      : [];
  return [
    `failed files (${totalFailed}):`,
    ...failed.flatMap((file) => [`  ${file.relative_path}`, `    ${file.last_error ?? 'no message'}`]),
    ...more,
  ];
}

export function verifyLines(uploadId: string, result: VerifyReply): string[] {
  const summary =
    result.mismatched === 0
      ? `${uploadId}: ${result.checked} completed files checked, all as uploaded`
      : `${uploadId}: ${result.checked} completed files checked, ${result.mismatched} not as uploaded, ${result.requeued} requeued to be uploaded again`;
  const listed = result.mismatches.map((mismatch) => `  ${mismatch.relative_path}: ${mismatch.reason}`);
  const more =
    result.mismatched > result.mismatches.length
      ? [`  … and ${result.mismatched - result.mismatches.length} more`]
      : [];
  return [summary, ...listed, ...more];
}

export function settingsLines(settings: SettingsReply): string[] {
  const limit = settings.max_upload_bytes_per_second;
  return [
    limit === 0
      ? 'bandwidth limit: none'
      : `bandwidth limit: ${formatRate(limit)} (${limit} bytes per second, all uploads together)`,
  ];
}

/** `1 attempt`, `3 attempts`. */
function attemptsOf(count: number): string {
  return `${count} attempt${count === 1 ? '' : 's'}`;
}
