// Every upload with its progress: one GET /uploads draws it all.
import type { UploadSummary } from '../api-types.js';
import { formatBytes, formatEta, formatRate, formatTime } from '../format.js';
import { Bar, PhaseBadge } from './bits.js';
import { uploadHash } from './selection.js';

export function destinationOf(upload: Pick<UploadSummary, 'destination_bucket' | 'destination_prefix'>) {
  return `s3://${upload.destination_bucket}/${upload.destination_prefix}`;
}

export function UploadsTable(props: { uploads: UploadSummary[]; selectedId: string | undefined }) {
  if (props.uploads.length === 0) {
    return <p class="empty">No uploads to show. Create one with the form.</p>;
  }
  return (
    <div class="table-scroll">
      <table class="uploads">
        <thead>
          <tr>
            <th scope="col">Upload</th>
            <th scope="col">Phase</th>
            <th scope="col">Files</th>
            <th scope="col">Bytes</th>
            <th scope="col">Speed</th>
            <th scope="col">Time left</th>
            <th scope="col">Last completed</th>
          </tr>
        </thead>
        <tbody>
          {props.uploads.map((upload) => (
            <UploadRow
              key={upload.upload_id}
              upload={upload}
              selected={upload.upload_id === props.selectedId}
            />
          ))}
        </tbody>
      </table>
    </div>
  );
}

function UploadRow({ upload, selected }: { upload: UploadSummary; selected: boolean }) {
  const id = upload.upload_id;
  const { files, bytes, progress } = upload;
  return (
    <tr class={selected ? 'selected' : undefined} data-upload-id={id}>
      <th scope="row">
        <a href={uploadHash(id)} aria-current={selected ? 'true' : undefined}>
          {id}
        </a>
        <span class="route">
          <span class="path">{upload.source_folder}</span> → <span class="path">{destinationOf(upload)}</span>
        </span>
        <span class="pattern">
          pattern <code>{upload.pattern}</code>
        </span>
      </th>
      <td>
        <PhaseBadge phase={progress.phase} />
      </td>
      <td>
        <Bar
          label={`Files of ${id}`}
          value={files.completed}
          max={files.total}
          text={`${files.completed} / ${files.total} files`}
        />
        {files.failed > 0 && <span class="failed-count">{files.failed} failed</span>}
      </td>
      <td>
        <Bar
          label={`Bytes of ${id}`}
          value={bytes.uploaded}
          max={bytes.total}
          text={`${formatBytes(bytes.uploaded)} / ${formatBytes(bytes.total)}`}
        />
      </td>
      <td class="number">{formatRate(progress.bytes_per_second)}</td>
      <td class="number">{formatEta(progress.eta_seconds)}</td>
      <td>{formatTime(progress.last_completed_at)}</td>
    </tr>
  );
}
