// The events of GET /events as clients read them: each type's data in the API's words (snake_case
// fields, ISO 8601 times), written once. The OpenAPI document's description of the stream is made
// from this table, and eventData() is the one mapping from the engine's facts (domain/events.ts):
// a new type of ServiceEvent does not compile until it has an entry here and a case there.
import { Type, type Static, type TObject, type TSchema } from '@fastify/type-provider-typebox';
import type { ServiceEvent, ServiceEventType } from '../domain/events.js';
import { UPLOAD_PHASES } from '../domain/status.js';

const phase = (description: string) => Type.Enum([...UPLOAD_PHASES], { type: 'string', description });

/** Every field of every event, described once: a field means the same in every event that has it. */
const FIELDS = {
  upload_id: Type.String({ description: 'The id of the upload.' }),
  task_id: Type.Integer({
    description: 'The id of the file task, as in GET /uploads/{upload_id}/files (`task_id`).',
  }),
  path: Type.String({
    description: 'The path of the file relative to the source folder, `/` separated (`relative_path` there).',
  }),
  key: Type.String({ description: 'The S3 key it is uploaded to (`object_key` there).' }),
  size: Type.Integer({
    minimum: 0,
    description: 'Size in bytes of the file version uploaded (so far, for a file still being written).',
  }),
  bytes_uploaded: Type.Integer({ minimum: 0, description: 'Bytes of the file S3 confirmed so far.' }),
  bytes_sent: Type.Integer({
    minimum: 0,
    description:
      'Bytes sent over the wire for it in this run: 0 when nothing had to be sent (its content was already in S3).',
  }),
  skipped: Type.Union([Type.String(), Type.Null()], {
    description:
      'Why it was not sent, as `skipped` of the file says (an object was already at its key); null when it was uploaded.',
  }),
  message: Type.String({ description: 'Why it failed, as `last_error` of the file says.' }),
  phase: phase('The phase now, as `progress.phase` of GET /uploads/{upload_id}.'),
  previous_phase: Type.Union([phase('The phase before.'), Type.Null()], {
    description:
      'The phase before; null for the first phase told since the service started watching the upload.',
  }),
  kind: Type.Enum(['initial', 'rescan'], {
    type: 'string',
    description: 'The first scan since the service started watching the upload, or a later one.',
  }),
  files_seen: Type.Integer({ minimum: 0, description: 'Files matching the pattern that the scan found.' }),
  files_changed: Type.Integer({ minimum: 0, description: 'Files it found new or changed, to be uploaded.' }),
  duration_ms: Type.Integer({ minimum: 0, description: 'How long the scan took, in milliseconds.' }),
  error: Type.Union([Type.String(), Type.Null()], {
    description: 'Why the scan failed (the folder is gone, say); null when it did not.',
  }),
  bucket: Type.String({ description: 'The S3 bucket of the upload.' }),
  prefix: Type.String({ description: "The upload's key prefix; empty for none." }),
  files: Type.Integer({
    minimum: 0,
    description: 'The files of the upload in S3 then, markers left out (the files a marker waited for).',
  }),
  bytes: Type.Integer({ minimum: 0, description: 'The sum of their sizes.' }),
  manifest_key: Type.Union([Type.String(), Type.Null()], {
    description: "The manifest's key, written before the arrival; null when the upload writes none.",
  }),
  marker_key: Type.Union([Type.String(), Type.Null()], {
    description: "The marker's key; null for a one-shot upload that completed with no marker.",
  }),
  at: Type.String({ format: 'date-time', description: 'When it happened.' }),
};

type FieldName = keyof typeof FIELDS;

function data<const K extends FieldName>(...names: K[]): TObject<{ [N in K]: (typeof FIELDS)[N] }> {
  const properties = Object.fromEntries(names.map((name) => [name, FIELDS[name]]));
  return Type.Object(properties as { [N in K]: (typeof FIELDS)[N] }, { additionalProperties: false });
}

interface EventType {
  /** When the event is told. */
  description: string;
  data: TObject;
  /** The data of an example, for the documentation. */
  example: Record<string, unknown>;
}

const AT = '2026-12-04T12:00:00.000Z';
const FILE = { upload_id: 'run-7', task_id: 12, path: 'lane1/a.fastq.gz' };
const KEY = 'runs/lane1/a.fastq.gz';

export const EVENT_TYPES = {
  'upload.created': {
    description: 'An upload was created (POST /uploads).',
    data: data('upload_id', 'at'),
    example: { upload_id: 'run-7', at: AT },
  },
  'upload.cancelled': {
    description: 'An upload was cancelled (DELETE /uploads/{upload_id}).',
    data: data('upload_id', 'at'),
    example: { upload_id: 'run-7', at: AT },
  },
  'upload.completed': {
    description:
      'A one-shot upload (`watch: false`) is completed: its scan finished and every file it found is uploaded.',
    data: data('upload_id', 'at'),
    example: { upload_id: 'run-7', at: AT },
  },
  'upload.arrived': {
    description:
      'Every known file of an upload is in S3: its completion marker went up last, or a one-shot upload completed with no marker. The document POSTed to the upload\'s `notify_url` is this event\'s data with `"event": "upload.arrived"` (see docs/run-folders.md).',
    data: data('upload_id', 'bucket', 'prefix', 'files', 'bytes', 'manifest_key', 'marker_key', 'at'),
    example: {
      upload_id: 'run-7',
      bucket: 'sequencing',
      prefix: 'runs/run-7',
      files: 1204,
      bytes: 53687091200,
      manifest_key: 'runs/run-7/_manifest.json',
      marker_key: 'runs/run-7/RTAComplete.txt',
      at: AT,
    },
  },
  'upload.phase': {
    description:
      "An upload's phase changed: `scanning` → `uploading` → `idle` when all goes well (then `completed` for a one-shot upload), `failed` while failed files wait for their requeue, `cancelled` at the end.",
    data: data('upload_id', 'phase', 'previous_phase', 'at'),
    example: { upload_id: 'run-7', phase: 'idle', previous_phase: 'uploading', at: AT },
  },
  'upload.scanned': {
    description: "A full scan of an upload's folder ended.",
    data: data('upload_id', 'kind', 'files_seen', 'files_changed', 'duration_ms', 'error', 'at'),
    example: {
      upload_id: 'run-7',
      kind: 'initial',
      files_seen: 120,
      files_changed: 120,
      duration_ms: 35,
      error: null,
      at: AT,
    },
  },
  'file.started': {
    description: 'An attempt to upload a file started.',
    data: data('upload_id', 'task_id', 'path', 'key', 'size', 'at'),
    example: { ...FILE, key: KEY, size: 1048576, at: AT },
  },
  'file.progress': {
    description: 'More of a file is in S3: at most about 4 a second per file.',
    data: data('upload_id', 'task_id', 'path', 'bytes_uploaded', 'size', 'at'),
    example: { ...FILE, bytes_uploaded: 524288, size: 1048576, at: AT },
  },
  'file.completed': {
    description: 'A file was uploaded and checked, or found already in S3 (`skipped`).',
    data: data('upload_id', 'task_id', 'path', 'key', 'size', 'bytes_sent', 'skipped', 'at'),
    example: { ...FILE, key: KEY, size: 1048576, bytes_sent: 1048576, skipped: null, at: AT },
  },
  'file.failed': {
    description:
      'An attempt to upload a file failed, and why; it is tried again after its requeue (`ready_at` of the file) or on POST /uploads/{upload_id}/retry.',
    data: data('upload_id', 'task_id', 'path', 'key', 'message', 'at'),
    example: {
      ...FILE,
      key: KEY,
      message: 'cannot read the local file /data/run-7/lane1/a.fastq.gz: permission denied (EACCES)',
      at: AT,
    },
  },
} as const satisfies Record<ServiceEventType, EventType>;

/** The data of an event of type T, as sent. */
export type EventData<T extends ServiceEventType> = Static<(typeof EVENT_TYPES)[T]['data']>;

/** An event as sent: its type and its data. */
export type WireEvent = { [T in ServiceEventType]: { type: T; data: EventData<T> } }[ServiceEventType];

export const EVENT_TYPE_NAMES = Object.keys(EVENT_TYPES) as ServiceEventType[];

function iso(time: number): string {
  return new Date(time).toISOString();
}

/** The engine's fact in the API's words. */
export function wireEvent(event: ServiceEvent): WireEvent {
  const at = iso(event.at);
  switch (event.type) {
    case 'upload.created':
    case 'upload.cancelled':
    case 'upload.completed':
      return { type: event.type, data: { upload_id: event.uploadId, at } };
    case 'upload.arrived':
      return { type: event.type, data: arrivalData(event) };
    case 'upload.phase':
      return {
        type: event.type,
        data: { upload_id: event.uploadId, phase: event.phase, previous_phase: event.previousPhase, at },
      };
    case 'upload.scanned':
      return {
        type: event.type,
        data: {
          upload_id: event.uploadId,
          kind: event.kind,
          files_seen: event.filesSeen,
          files_changed: event.filesChanged,
          duration_ms: event.durationMs,
          error: event.error,
          at,
        },
      };
    case 'file.started':
      return {
        type: event.type,
        data: { ...fileFacts(event), key: event.key, size: event.size, at },
      };
    case 'file.progress':
      return {
        type: event.type,
        data: { ...fileFacts(event), bytes_uploaded: event.bytesUploaded, size: event.size, at },
      };
    case 'file.completed':
      return {
        type: event.type,
        data: {
          ...fileFacts(event),
          key: event.key,
          size: event.size,
          bytes_sent: event.bytesSent,
          skipped: event.skipped,
          at,
        },
      };
    case 'file.failed':
      return {
        type: event.type,
        data: { ...fileFacts(event), key: event.key, message: event.message, at },
      };
    default:
      return unmapped(event);
  }
}

/** The data of an upload.arrived event: also the body of the notification, with its type. */
export function arrivalData(
  event: Extract<ServiceEvent, { type: 'upload.arrived' }>,
): EventData<'upload.arrived'> {
  return {
    upload_id: event.uploadId,
    bucket: event.bucket,
    prefix: event.prefix,
    files: event.files,
    bytes: event.bytes,
    manifest_key: event.manifestKey,
    marker_key: event.markerKey,
    at: iso(event.at),
  };
}

function fileFacts(event: { uploadId: string; taskId: number; path: string }) {
  return { upload_id: event.uploadId, task_id: event.taskId, path: event.path };
}

/** Reached only when a type of event has no case above: then `event` is not `never`, and this does not compile. */
function unmapped(event: never): never {
  throw new Error(`no wire form for the event ${JSON.stringify(event)}`);
}

function descriptionOf(schema: TSchema): string {
  const { description } = schema as { description?: unknown };
  return typeof description === 'string' ? description : '';
}

/** The stream described for the OpenAPI document: the framing, then each type with its data's fields. */
export function eventStreamDescription(stream: {
  flushSeconds: number;
  heartbeatSeconds: number;
  maxQueuedEvents: number;
  maxQueuedBytes: number;
}): string {
  const types = EVENT_TYPE_NAMES.map((type) => {
    const { description, data: shape } = EVENT_TYPES[type];
    const fields = Object.keys(shape.properties)
      .map((name) => `\`${name}\``)
      .join(', ');
    return `- \`${type}\`: ${description} Data: ${fields}.`;
  }).join('\n');
  const fields = (Object.keys(FIELDS) as FieldName[])
    .map((name) => `- \`${name}\`: ${descriptionOf(FIELDS[name])}`)
    .join('\n');
  return `Server-Sent Events, one per fact, as they happen. Each event is \`id:\` (a sequence number of this process, increasing), \`event:\` (its type) and \`data:\` (one line of JSON, snake_case fields, ISO 8601 times). The events of ${stream.flushSeconds} s go out together, so an event arrives at most that long after it happened. A comment line \`: heartbeat\` comes every ${stream.heartbeatSeconds} s. There is no replay (\`Last-Event-ID\` is ignored): a client that reconnects rebuilds its view from GET /uploads and GET /uploads/{upload_id}/files. A client that stops reading is dropped (its connection closed) once more than ${stream.maxQueuedEvents.toLocaleString('en')} events or ${stream.maxQueuedBytes.toLocaleString('en')} bytes would wait for it. \`?upload_id=\` keeps the events of one upload.

Types:
${types}

Fields:
${fields}`;
}
