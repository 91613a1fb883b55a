// The API's shapes, written once: they validate requests, type the handlers, serialise replies
// (a field not listed here never leaves the server) and become the OpenAPI document. A shape with
// an `$id` is registered with the app (NAMED_SCHEMAS) and referenced with ref(): the document shows
// it once, as `#/components/schemas/<$id>`, and generated clients get a type of that name.
import {
  Type,
  type Static,
  type TInteger,
  type TSchema,
  type TString,
  type TUnsafe,
} from '@fastify/type-provider-typebox';
import { ERROR_CATALOGUE, ERROR_CODES } from './errors.js';
import { MAX_COMPLETE_MARKERS } from '../domain/arrival.js';
import { IF_EXISTS_CHOICES, NOTIFICATION_STATUSES } from '../domain/model.js';
import { UPLOAD_PHASES, UPLOAD_STATUSES, TASK_STATUSES } from '../domain/status.js';
import { UPLOAD_ID_PATTERN, UPLOAD_ID_RULE } from '../service/upload-service.js';
import {
  MAX_METADATA_BYTES,
  MAX_TAG_KEY_LENGTH,
  MAX_TAG_VALUE_LENGTH,
  MAX_TAGS,
  SHA256_METADATA,
  SSE_ALGORITHMS,
  STORAGE_CLASSES,
} from '../domain/object-properties.js';
import { ERROR_MESSAGE_KEY } from './validation.js';

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

const EXAMPLE_ID = 'photos-2024';
const EXAMPLE_TIME = '2024-05-01T12:00:00.000Z';

function time(description: string): TString {
  return Type.String({ format: 'date-time', description, examples: [EXAMPLE_TIME] });
}

function nullable<T extends TSchema>(schema: T, description: string, example: unknown) {
  return Type.Union([schema, Type.Null()], { description, examples: [example] });
}

/** A reference to a named shape, typed as the shape itself. */
export function ref<T extends TSchema & { $id?: string }>(schema: T): TUnsafe<Static<T>> {
  if (schema.$id === undefined) throw new Error('only a shape with an $id can be referenced');
  return Type.Unsafe<Static<T>>({ $ref: `${schema.$id}#` } as unknown as TSchema);
}

// --- object properties: the same shape in the order and in the upload shown

const EXAMPLE_OBJECT_PROPERTIES = {
  storage_class: 'STANDARD_IA',
  sse: 'aws:kms',
  sse_kms_key_id: 'alias/lab-archive',
  metadata: { project: 'genomics', run: '42' },
  tags: { lab: 'sequencing', retention: '5y' },
};

const objectPropertyFields = {
  storage_class: Type.Union([Type.Enum([...STORAGE_CLASSES], { type: 'string' }), Type.Null()], {
    description: `S3's storage class of every object (\`x-amz-storage-class\`): ${STORAGE_CLASSES.join(', ')}; null: none sent, the bucket's default (STANDARD on AWS).`,
  }),
  sse: Type.Union([Type.Enum([...SSE_ALGORITHMS], { type: 'string' }), Type.Null()], {
    description:
      "Server-side encryption asked for on every write (`x-amz-server-side-encryption`): `AES256` (SSE-S3) or `aws:kms` (SSE-KMS); null: none asked, the bucket's default encryption applies.",
  }),
  sse_kms_key_id: Type.Union([Type.String({ minLength: 1, maxLength: 2048 }), Type.Null()], {
    description:
      "The KMS key (id, alias or ARN) for `sse` `aws:kms` only; null: the account's or bucket's default KMS key.",
  }),
  metadata: Type.Record(Type.String(), Type.String(), {
    description: `User metadata of every object (\`x-amz-meta-<key>\`): keys are HTTP header tokens, kept in lower case; values printable ASCII without leading or trailing spaces; at most ${MAX_METADATA_BYTES} bytes of keys and values together. The key \`${SHA256_METADATA}\` is reserved for the service.`,
  }),
  tags: Type.Record(Type.String(), Type.String(), {
    description: `Object tags of every object (sent as \`x-amz-tagging\`): at most ${MAX_TAGS}, keys of 1 to ${MAX_TAG_KEY_LENGTH} characters (not starting with \`aws:\`), values of 0 to ${MAX_TAG_VALUE_LENGTH}; letters, digits, spaces and \`+ - = . _ : / @\`.`,
  }),
};

// The order's fields are the reply's, optional, and described once, in the named shape.
function typeOnly<T extends TSchema>(schema: T): T {
  const copy: T & { description?: string } = { ...schema };
  delete copy.description;
  return copy;
}

export const ObjectPropertiesBody = Type.Object(
  {
    storage_class: Type.Optional(typeOnly(objectPropertyFields.storage_class)),
    sse: Type.Optional(typeOnly(objectPropertyFields.sse)),
    sse_kms_key_id: Type.Optional(typeOnly(objectPropertyFields.sse_kms_key_id)),
    metadata: Type.Optional(typeOnly(objectPropertyFields.metadata)),
    tags: Type.Optional(typeOnly(objectPropertyFields.tags)),
  },
  {
    additionalProperties: false,
    description:
      "What every object of the upload carries besides its bytes and its Content-Type (which comes from each file's extension): the fields of `ObjectProperties`, where each one's rules are. A field left out takes the service's default (`DEFAULT_STORAGE_CLASS`, `DEFAULT_SSE` with `DEFAULT_SSE_KMS_KEY_ID`, `DEFAULT_OBJECT_METADATA`, `DEFAULT_OBJECT_TAGS`); a field given replaces it (null or `{}` for none). `sse` and `sse_kms_key_id` go together: giving either one leaves both defaults out. Default: the service's defaults.",
    examples: [EXAMPLE_OBJECT_PROPERTIES],
  },
);

export const ObjectPropertiesReply = Type.Object(objectPropertyFields, {
  $id: 'ObjectProperties',
  description:
    "What every object of the upload carries besides its bytes and its Content-Type (from each file's extension), the service's defaults applied: the same shape as `object_properties` in the order.",
  examples: [EXAMPLE_OBJECT_PROPERTIES],
});
export type ObjectPropertiesReply = Static<typeof ObjectPropertiesReply>;

// --- what tells downstream that a run has arrived (docs/run-folders.md)

const EXAMPLE_ARRIVAL = {
  at: '2024-05-01T14:00:00.000Z',
  files: 1204,
  bytes: 53687091200,
  marker_key: 'runs/42/RTAComplete.txt',
};

export const ArrivalReply = Type.Object(
  {
    at: time('When the marker went up, or the one-shot upload completed.'),
    files: count(
      'The files of the upload completed by then, markers left out: the files a marker waited for.',
    ),
    bytes: count('Their bytes.'),
    marker_key: nullable(
      Type.String(),
      "The marker's object key; null for a one-shot upload that completed with no marker.",
      'runs/42/RTAComplete.txt',
    ),
  },
  {
    $id: 'Arrival',
    description: 'An arrival: every known file of the upload is in S3.',
    examples: [EXAMPLE_ARRIVAL],
  },
);
export type ArrivalReply = Static<typeof ArrivalReply>;

const EXAMPLE_MANIFEST = {
  key: 'runs/42/_manifest.json',
  files: 1204,
  bytes: 53687091200,
  sha256: '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
  written_at: '2024-05-01T13:59:59.000Z',
};

export const ManifestReply = Type.Object(
  {
    key: Type.String({ description: 'Its object key.' }),
    files: count('The files it lists.'),
    bytes: count('The sum of their sizes.'),
    sha256: Type.String({
      pattern: '^[0-9a-f]{64}$',
      description: "Hex SHA-256 of the manifest object's bytes.",
    }),
    written_at: time('When its listing began: a file completed later is in the next one.'),
  },
  { $id: 'Manifest', description: 'A manifest written.', examples: [EXAMPLE_MANIFEST] },
);
export type ManifestReply = Static<typeof ManifestReply>;

const EXAMPLE_NOTIFICATION = {
  status: 'delivered',
  arrival_at: '2024-05-01T14:00:00.000Z',
  attempts: 2,
  last_error: null,
  last_attempt_at: '2024-05-01T14:00:01.200Z',
  delivered_at: '2024-05-01T14:00:01.200Z',
};

export const NotificationReply = Type.Object(
  {
    status: Type.Enum([...NOTIFICATION_STATUSES], {
      type: 'string',
      description:
        '`pending`: to be sent, or sent again after a failed attempt; `delivered`: the receiver answered 2xx; `failed`: it was given up (a 4xx other than 408, 425 and 429, a redirect, or every attempt failed).',
    }),
    arrival_at: time('The arrival it tells of (`arrival.at`).'),
    attempts: count('POSTs made so far.'),
    last_error: nullable(Type.String(), 'Why the last attempt failed; null when it did not.', null),
    last_attempt_at: nullable(
      Type.String({ format: 'date-time' }),
      'When the last POST was made.',
      EXAMPLE_TIME,
    ),
    delivered_at: nullable(Type.String({ format: 'date-time' }), 'When the receiver took it.', EXAMPLE_TIME),
  },
  {
    $id: 'Notification',
    description: 'The notification of an arrival, POSTed to `notify_url`.',
    examples: [EXAMPLE_NOTIFICATION],
  },
);
export type NotificationReply = Static<typeof NotificationReply>;

// --- inputs

export const CreateUploadBody = Type.Object(
  {
    source_folder: Type.String({
      maxLength: 4096,
      description:
        'Absolute path of the local folder to watch. It must exist and be readable by the service; it is stored as its real path (symbolic links resolved, no trailing slash).',
      examples: ['/data/photos'],
    }),
    destination_bucket: Type.String({
      maxLength: 255,
      description: 'Name of the S3 bucket the files are uploaded to. It must already exist.',
      examples: ['my-archive'],
    }),
    pattern: Type.Optional(
      Type.String({
        maxLength: 1024,
        description:
          'Glob of the files to upload: `*`, `?`, `[...]`, `{a,b}` and `**`. Without a `/` it matches a file name at any depth (`*.jpg` takes `a.jpg` and `sub/deep/b.jpg`); with a `/` it matches the path relative to the source folder (`raw/**/*.csv`). Hidden files are matched like others. Default `**`: every file.',
        examples: ['*.jpg'],
      }),
    ),
    destination_prefix: Type.Optional(
      Type.String({
        maxLength: 1024,
        description:
          'Put in front of every object key; the key is the prefix followed by the relative path of the file. Default: none.',
        examples: ['backups/2024/'],
      }),
    ),
    upload_id: Type.Optional(
      Type.String({
        pattern: UPLOAD_ID_PATTERN,
        description: `Your own id for the upload: ${UPLOAD_ID_RULE}. Default: a generated UUID.`,
        examples: [EXAMPLE_ID],
        [ERROR_MESSAGE_KEY]: `must be ${UPLOAD_ID_RULE}`,
      }),
    ),
    allow_overlap: Type.Optional(
      Type.Boolean({
        description:
          'Accept the upload even when a live (pending or active) upload could write the same objects: the same bucket, and one prefix is the other or one of its folders (`runs` and `runs/42`, not `runs2`; an empty prefix overlaps every other). Without it such an upload is a 409 `upload_overlaps` naming the other one, because whichever uploads a key last wins. Send `true` when both are meant, for example two patterns that take different files. Default `false`.',
        examples: [false],
      }),
    ),
    check_bucket: Type.Optional(
      Type.Boolean({
        description:
          "Check `destination_bucket` with the service's credentials before creating the upload (one listing of at most one key, within 5 s): a bucket that does not exist or credentials S3 rejects are a 422 at once, instead of files that fail later. When the check cannot tell (listing denied, as on a write-only policy; no answer in time), the upload is created and `warnings` says what was not checked. Default `true`; `false` skips the check, for a bucket that will exist later.",
        examples: [true],
      }),
    ),
    if_exists: Type.Optional(
      Type.Enum([...IF_EXISTS_CHOICES], {
        type: 'string',
        description:
          "What to do with an object already at a file's key the first time this upload sends the file: `skip_identical` (default): not sent when the object has the same size and checksum (ETag, multipart ETag, or the SHA-256 this service stores in object metadata); `skip`: any object there is left alone (rclone's `--ignore-existing`); `overwrite`: always sent. The prefix is listed when the upload starts; a large file that appears later is asked with a HEAD. Later versions of a file this upload sent are always sent. See docs/sync.md.",
        examples: ['skip_identical'],
      }),
    ),
    object_properties: Type.Optional(ObjectPropertiesBody),
    watch: Type.Optional(
      Type.Boolean({
        description:
          '`true`: the folder is watched, and every matching file created or changed later is uploaded too, until the upload is cancelled. `false`: a one-shot upload, like `aws s3 sync`: the folder is scanned once, its matching files are uploaded, and the upload becomes `completed` once every one of them is (failed files keep it `active` while they are requeued); files that appear later are not uploaded. Default `true`.',
        examples: [true],
      }),
    ),
    complete_markers: Type.Optional(
      Type.Array(Type.String({ maxLength: 1024 }), {
        maxItems: MAX_COMPLETE_MARKERS,
        description: `Globs (the syntax of \`pattern\`) of the files that say a run is complete, such as a sequencer's \`RTAComplete.txt\`: a matching file is uploaded last, only once the folder was scanned and every other known file of the upload is completed (none pending, in progress or failed); a file that appears meanwhile is waited for too. Its upload is the upload's \`arrival\`, which the manifest and the notification follow. A marker must also match \`pattern\`. At most ${MAX_COMPLETE_MARKERS}. Default: none. See docs/run-folders.md.`,
        examples: [['RTAComplete.txt', 'CopyComplete.txt']],
      }),
    ),
    manifest: Type.Optional(
      Type.Boolean({
        description:
          'Write a manifest: a JSON object listing every uploaded key of the upload (not the markers) with its size, SHA-256, ETag and modification time. It is written before each marker goes up, when a one-shot upload completes, and each time a watched upload becomes idle with files completed since the last one. Default `false` (`true` when `manifest_key` is given).',
        examples: [true],
      }),
    ),
    manifest_key: Type.Optional(
      Type.String({
        maxLength: 1024,
        description:
          "The manifest's object key in `destination_bucket` (the whole key, not under the prefix). Default: `_manifest.json` under `destination_prefix`.",
        examples: ['runs/42/_manifest.json'],
      }),
    ),
    notify_url: Type.Optional(
      Type.String({
        maxLength: 2048,
        description:
          "An http(s) URL the service POSTs a JSON document to at each arrival (a marker uploaded, or a one-shot upload completed): the upload's id, bucket, prefix, files, bytes, manifest key and marker key. Retried with backoff until it answers 2xx; where it stands is in `notification`. NOTIFY_ALLOWED_HOSTS may restrict the hosts. Put a secret in the query string or the user information, which are redacted wherever the URL is shown, not in the path.",
        examples: ['https://hooks.example.org/runs?token=s3cr3t'],
      }),
    ),
  },
  { additionalProperties: false, description: 'What to watch and where to upload it.' },
);
export type CreateUploadBody = Static<typeof CreateUploadBody>;

export const UploadIdParams = Type.Object({
  upload_id: Type.String({ description: 'The id of the upload.', examples: [EXAMPLE_ID] }),
});
export type UploadIdParams = Static<typeof UploadIdParams>;

export const ListUploadsQuery = Type.Object(
  {
    status: Type.Optional(
      Type.Enum([...UPLOAD_STATUSES, 'all'], {
        type: 'string',
        description:
          'Only the uploads in this status; `all` for every upload. Default: pending, active and completed (every upload but the cancelled ones).',
      }),
    ),
  },
  { additionalProperties: false },
);
export type ListUploadsQuery = Static<typeof ListUploadsQuery>;

export const ListFilesQuery = Type.Object(
  {
    status: Type.Optional(
      Type.Enum([...TASK_STATUSES], { type: 'string', description: 'Only the files in this status.' }),
    ),
    limit: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: MAX_PAGE_SIZE,
        default: DEFAULT_PAGE_SIZE,
        description: `How many files per page, 1 to ${MAX_PAGE_SIZE}.`,
      }),
    ),
    cursor: Type.Optional(
      Type.String({
        maxLength: 64,
        description: 'The `next_cursor` of the previous page; omit it for the first page.',
      }),
    ),
  },
  { additionalProperties: false },
);
export type ListFilesQuery = Static<typeof ListFilesQuery>;

export const EventsQuery = Type.Object(
  {
    upload_id: Type.Optional(
      Type.String({
        pattern: UPLOAD_ID_PATTERN,
        description:
          'Only the events of this upload. It may name an upload not created yet: subscribe first, then create it with this `upload_id`, and miss none of its events.',
        examples: [EXAMPLE_ID],
        [ERROR_MESSAGE_KEY]: `must be ${UPLOAD_ID_RULE}`,
      }),
    ),
  },
  { additionalProperties: false },
);
export type EventsQuery = Static<typeof EventsQuery>;

// --- replies

const uploadProperties = {
  upload_id: Type.String({ description: 'The id of the upload.', examples: [EXAMPLE_ID] }),
  source_folder: Type.String({ description: 'Real path of the watched folder.', examples: ['/data/photos'] }),
  destination_bucket: Type.String({ description: 'The S3 bucket.', examples: ['my-archive'] }),
  destination_prefix: Type.String({
    description: 'Put in front of every object key; empty for none.',
    examples: ['backups/2024/'],
  }),
  pattern: Type.String({ description: 'Glob of the files to upload.', examples: ['**/*.jpg'] }),
  status: Type.Enum([...UPLOAD_STATUSES], {
    type: 'string',
    description:
      '`pending` until its folder is first scanned, then `active` (watched, files uploaded as they settle); `completed` for a one-shot upload (`watch: false`) once its scan finished and every file it found is uploaded; `cancelled` after DELETE.',
  }),
  watch: Type.Boolean({
    description:
      '`false` for a one-shot upload: its folder is scanned once, not watched, and the upload is `completed` once every file found is uploaded.',
    examples: [true],
  }),
  completed_at: nullable(
    Type.String({ format: 'date-time' }),
    'When the one-shot upload became `completed`; null until then, and for a watched upload.',
    null,
  ),
  if_exists: Type.Enum([...IF_EXISTS_CHOICES], {
    type: 'string',
    description:
      "What is done with an object already at a file's key the first time the upload sends the file (see POST /uploads). Uploads created before this setting existed have `overwrite`.",
  }),
  listed_at: nullable(
    Type.String({ format: 'date-time' }),
    'When the listing of the objects already under the prefix began, once it is complete (files modified since are asked with a HEAD); null while it runs, and when none is needed (`if_exists: overwrite`).',
    EXAMPLE_TIME,
  ),
  object_properties: ref(ObjectPropertiesReply),
  complete_markers: Type.Array(Type.String(), {
    description: 'Globs of the files uploaded last (see POST /uploads); empty for none.',
    examples: [['RTAComplete.txt']],
  }),
  manifest: Type.Boolean({ description: 'Whether the upload writes a manifest.', examples: [true] }),
  manifest_key: nullable(
    Type.String(),
    "The manifest's key in the bucket; null when the upload writes none.",
    'runs/42/_manifest.json',
  ),
  notify_url: nullable(
    Type.String(),
    'Where each arrival is POSTed, with the password and the query values redacted (`***`); null for nowhere.',
    'https://hooks.example.org/runs?token=***',
  ),
  arrival: nullable(
    ref(ArrivalReply),
    'The latest arrival: the moment every known file of the upload was in S3, told by a marker uploaded last or a one-shot upload completed; null before the first.',
    EXAMPLE_ARRIVAL,
  ),
  last_manifest: nullable(
    ref(ManifestReply),
    'The manifest last written; null before the first (or when the upload writes none).',
    EXAMPLE_MANIFEST,
  ),
  notification: nullable(
    ref(NotificationReply),
    'Where the notification of the latest arrival stands; null without `notify_url`, or before the first arrival.',
    EXAMPLE_NOTIFICATION,
  ),
  created_at: time('When the upload was created.'),
  updated_at: time('When the upload last changed.'),
  last_error: nullable(
    Type.String(),
    'Why the upload cannot progress (for example, its folder vanished); null when all is well.',
    null,
  ),
};

export const UploadReply = Type.Object(uploadProperties, {
  $id: 'Upload',
  description: 'An upload: a folder watched and uploaded to a bucket.',
});
export type UploadReply = Static<typeof UploadReply>;

export const CreatedUploadReply = Type.Object(
  {
    ...uploadProperties,
    warnings: Type.Array(Type.String(), {
      description:
        'What could not be checked before the upload was created, in words for people; empty when everything was. For example the check of `destination_bucket` when S3 denies listing it.',
      examples: [
        [
          "destination_bucket 'my-archive' was not checked: access denied to bucket 'my-archive' (AccessDenied, HTTP 403) [ListObjectsV2 s3://my-archive]",
        ],
      ],
    }),
  },
  { $id: 'CreatedUpload', description: 'The upload just created, and what could not be checked.' },
);
export type CreatedUploadReply = Static<typeof CreatedUploadReply>;

function count(description: string): TInteger {
  return Type.Integer({ minimum: 0, description });
}

// Its fields carry no examples of their own: inside the nullable `last_scan` (an anyOf), the
// OpenAPI document could not show them; the whole object has one instead.
export const ScanReply = Type.Object(
  {
    kind: Type.Enum(['initial', 'rescan'], {
      type: 'string',
      description:
        '`initial`: the first scan since the service started watching the upload (at its creation, or at a start of the service); `rescan`: a later one (periodic, asked for with POST /uploads/{upload_id}/rescan, or after missed file-system events).',
    }),
    started_at: Type.String({ format: 'date-time', description: 'When the scan started.' }),
    finished_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
      description: 'When it ended; null while it runs.',
    }),
    duration_ms: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], {
      description: 'How long it took, in milliseconds; null while it runs.',
    }),
    files_seen: count('Files matching the pattern found in the folder (so far, while it runs).'),
    files_changed: count(
      'Files the scan found new or changed (another size or modification time), which are to be uploaded; 0 when file-system events had already reported every change.',
    ),
    files_not_utf8: count(
      "Files matching the pattern that were skipped because their name, or a folder's name above them, is not valid UTF-8: S3 keys must be UTF-8 (`last_error` says where; rename them to upload them).",
    ),
    error: Type.Union([Type.String(), Type.Null()], {
      description:
        'Why the scan failed (the folder is gone, say; also in `last_error`); null when it did not, or while it runs.',
    }),
  },
  {
    $id: 'Scan',
    description:
      'A full scan of the source folder: the safety net for changes that file-system events missed.',
  },
);
export type ScanReply = Static<typeof ScanReply>;

export const UploadProgressReply = Type.Object(
  {
    phase: Type.Enum([...UPLOAD_PHASES], {
      type: 'string',
      description:
        'What the upload is doing now, the first that holds: `cancelled` or `completed` (the upload is); `scanning` (its first scan since the service started watching it runs: the backlog is not known yet); `uploading` (files pending or in progress); `failed` (files failed and wait for their requeue, nothing else to do); `idle` (every known file completed, or none matched: up to date, watching).',
      examples: ['uploading'],
    }),
    bytes_per_second: Type.Integer({
      minimum: 0,
      description:
        'Throughput: bytes S3 confirmed over the last 20 seconds (or since bytes began to move, when shorter), per second (kept in memory; parts already on S3 when an upload resumes are not counted); 0 when nothing moved.',
      examples: [52428800],
    }),
    eta_seconds: nullable(
      Type.Integer({ minimum: 0 }),
      'Seconds until the bytes still to send of the pending and in-progress files are sent at the current throughput (failed files wait for their requeue and are not counted); null when the throughput is 0 or nothing is left.',
      42,
    ),
    last_completed_at: nullable(
      Type.String({ format: 'date-time' }),
      'When the last file of the upload completed; null until one has.',
      EXAMPLE_TIME,
    ),
  },
  { $id: 'UploadProgress', description: 'Where an upload stands, computed when asked.' },
);
export type UploadProgressReply = Static<typeof UploadProgressReply>;

const progressProperty = {
  progress: ref(UploadProgressReply),
};

/** How many files are in each status, and the bytes: what progress bars are drawn from. */
const countsProperties = {
  files: Type.Object(
    {
      pending: count('Waiting to be uploaded (new, changed, or requeued after a failure).'),
      in_progress: count('Being uploaded now.'),
      completed: count('Uploaded, and checked against what S3 stored.'),
      failed: count('Failed; requeued automatically after the requeue interval, or now by POST .../retry.'),
      total: count('Every file of the upload.'),
    },
    { description: 'How many files are in each status.' },
  ),
  bytes: Type.Object(
    {
      total: count('Size of every file of the upload.'),
      uploaded: count('Bytes uploaded so far, finished parts of unfinished files included.'),
    },
    { description: 'Progress in bytes.' },
  ),
};

export const UploadSummaryReply = Type.Object(
  { ...uploadProperties, ...countsProperties, ...progressProperty },
  { $id: 'UploadSummary', description: 'An upload, and where it stands: an item of the list of uploads.' },
);
export type UploadSummaryReply = Static<typeof UploadSummaryReply>;

export const UploadDetailsReply = Type.Object(
  {
    ...uploadProperties,
    last_scan: nullable(
      ref(ScanReply),
      'The last scan of the folder (or the one running), kept in memory: null when none has started since the service started, and for a cancelled upload.',
      {
        kind: 'rescan',
        started_at: EXAMPLE_TIME,
        finished_at: '2024-05-01T12:00:01.530Z',
        duration_ms: 1530,
        files_seen: 200000,
        files_changed: 2,
        files_not_utf8: 0,
        error: null,
      } satisfies ScanReply,
    ),
    watched_by: nullable(
      Type.String(),
      "The `instance_id` of the instance that watches the upload's folder (it holds the upload's watch lease: it alone scans it, follows its changes and answers its rescans; see GET /instances), or null: no instance does now (it is cancelled or completed, or its watcher stopped and another takes it at its next heartbeat).",
      '4f0c1c7e-8a5e-4a8e-9d2b-3b1f2a6c9e10',
    ),
    ...countsProperties,
    ...progressProperty,
  },
  { $id: 'UploadDetails', description: 'An upload with its progress.' },
);
export type UploadDetailsReply = Static<typeof UploadDetailsReply>;

const LAST_UPLOAD_NOTE =
  'Null until a first upload of the path completes; kept while a newer version of the file waits or is being uploaded, and cleared when POST /uploads/{upload_id}/verify finds the object changed.';

export const FileItem = Type.Object(
  {
    task_id: Type.Integer({ description: 'Internal id of the file task.' }),
    relative_path: Type.String({
      description: 'Path of the file relative to the source folder, `/` separated.',
      examples: ['2024/05/beach.jpg'],
    }),
    object_key: Type.String({
      description: 'The S3 key it is uploaded to.',
      examples: ['backups/2024/2024/05/beach.jpg'],
    }),
    size: count('Size in bytes of the file version to upload.'),
    modified_at: time('Modification time of the file version to upload.'),
    status: Type.Enum([...TASK_STATUSES], {
      type: 'string',
      description:
        '`pending` → `in_progress` → `completed` or `failed`; a failed or changed file becomes `pending` again.',
    }),
    bytes_uploaded: count('Bytes of this version uploaded so far.'),
    attempts: count('How many times an upload of this version was started.'),
    last_error: nullable(Type.String(), 'Why the last attempt failed; null if it did not.', null),
    etag: nullable(
      Type.String(),
      `ETag S3 returned for the object of the last upload completed for this path. ${LAST_UPLOAD_NOTE}`,
      '"9b2cf535f27731c974343645a3985328"',
    ),
    validation: nullable(
      Type.Enum(['etag', 'content-md5'], { type: 'string' }),
      `How the bytes of the last completed upload were checked: \`etag\` (the ETag equals the locally computed MD5) or \`content-md5\` (S3 verified the Content-MD5 of every request, for encrypted objects whose ETag is not an MD5). ${LAST_UPLOAD_NOTE}`,
      'etag',
    ),
    sha256: nullable(
      Type.String({ pattern: '^[0-9a-f]{64}$' }),
      `Hex SHA-256 of the content sent by the last completed upload for this path. ${LAST_UPLOAD_NOTE}`,
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    ),
    skipped: nullable(
      Type.String(),
      "Why the file was not sent: `already in S3` (an object with the same size and checksum was already at its key), or `already in S3 (if_exists skip: not compared)`; null when it was uploaded. A skipped file's `etag` is the object's, its `validation` null, and its `sha256` the file's (null when not compared).",
      null,
    ),
    uploaded_size: nullable(
      Type.Integer({ minimum: 0 }),
      `Size in bytes of the object the last completed upload put at the key (\`size\` is the version to upload, which may be newer). ${LAST_UPLOAD_NOTE}`,
      1048576,
    ),
    ready_at: nullable(
      Type.String({ format: 'date-time' }),
      'Earliest time the next upload attempt may start (the file has settled, or the failure requeue time); null when it will not start on its own: the upload is cancelled, or the file failed for good (its object key would be longer than S3 allows; see last_error).',
      EXAMPLE_TIME,
    ),
    created_at: time('When the file was first seen.'),
    updated_at: time('When the task last changed.'),
    completed_at: nullable(Type.String({ format: 'date-time' }), 'When the upload completed.', EXAMPLE_TIME),
    failed_at: nullable(Type.String({ format: 'date-time' }), 'When the last attempt failed.', null),
    marker: Type.Boolean({
      description:
        'The file matches one of `complete_markers`: it is uploaded last, once every other known file of the upload is completed.',
      examples: [false],
    }),
    instance: nullable(
      Type.String(),
      'The instance uploading the file now (its `instance_id` in GET /instances): the one whose claim holds it while it is `in_progress`; null otherwise.',
      '3f0c2a9e-5b7d-4c1e-9a41-2d6f8e0b7c55',
    ),
  },
  { $id: 'FileTask', description: 'One file of an upload, and where its upload stands.' },
);
export type FileItem = Static<typeof FileItem>;

export const FileListReply = Type.Object(
  {
    items: Type.Array(ref(FileItem)),
    next_cursor: nullable(
      Type.String(),
      'Pass it as `cursor` to get the next page; null on the last page.',
      '1234',
    ),
  },
  { $id: 'FilePage', description: 'A page of files, in the order they were first seen.' },
);
export type FileListReply = Static<typeof FileListReply>;

// --- instances

export const InstanceReply = Type.Object(
  {
    instance_id: Type.String({
      description:
        'The instance: a running process of the service, random at each start; the `instance` of the files it uploads.',
      examples: ['3f0c2a9e-5b7d-4c1e-9a41-2d6f8e0b7c55'],
    }),
    host: Type.String({ description: 'Host name of its machine.', examples: ['uploader-1'] }),
    pid: Type.Integer({ minimum: 0, description: 'Its process id on that host.', examples: [4242] }),
    version: Type.String({ description: 'Its version of the service.', examples: ['0.1.0'] }),
    started_at: time('When it registered (started).'),
    heartbeat_at: time(
      "Its last heartbeat, by the database's clock: every `HEARTBEAT_SECONDS` it renews the leases of the files it uploads.",
    ),
    lease_seconds: Type.Number({
      minimum: 0,
      description:
        'Its `LEASE_SECONDS`: once its last heartbeat is older than this, it is taken for dead, and the files it was uploading go back to the queue for other instances to finish.',
      examples: [30],
    }),
    source_roots: nullable(
      Type.Array(Type.String()),
      'The folders whose uploads it serves (`ALLOWED_SOURCE_ROOTS`, real paths); null: any folder.',
      ['/data'],
    ),
    work: Type.Object(
      {
        files: count('Files it is uploading now (`in_progress`).'),
        bytes: count('Their sizes, together.'),
        bytes_uploaded: count('Of those bytes, uploaded so far.'),
        upload_ids: Type.Array(Type.String(), {
          description: 'The uploads those files belong to.',
          examples: [[EXAMPLE_ID]],
        }),
      },
      { description: 'What it works on now.' },
    ),
  },
  {
    $id: 'Instance',
    description:
      'A running instance of the service sharing the database (one on SQLite; every live one on PostgreSQL), and what it uploads now.',
  },
);
export type InstanceReply = Static<typeof InstanceReply>;

export const RetryReply = Type.Object(
  {
    upload_id: Type.String({ examples: [EXAMPLE_ID] }),
    requeued: count('How many failed files are pending again.'),
  },
  { $id: 'RetryResult', description: 'The failed files of the upload are pending again.' },
);
export type RetryReply = Static<typeof RetryReply>;

export const RescanReply = Type.Object(
  {
    upload_id: Type.String({ examples: [EXAMPLE_ID] }),
    rescan: Type.Enum(['started', 'already_running'], {
      type: 'string',
      description:
        '`started`: a scan of the folder started now; `already_running`: a scan was under way (the initial scan, or another rescan), so no other was started (a paced periodic rescan goes on at full speed). Either way, `last_scan` of GET /uploads/{upload_id} shows its progress and outcome.',
    }),
  },
  { $id: 'RescanResult', description: 'A scan of the folder is under way.' },
);
export type RescanReply = Static<typeof RescanReply>;

export const VerifyReply = Type.Object(
  {
    checked: count('How many completed files were checked.'),
    mismatched: count('How many of them were found wrong (`mismatches` lists the first 1,000).'),
    mismatches: Type.Array(
      Type.Object({
        relative_path: Type.String({
          description: 'Path of the file relative to the source folder.',
          examples: ['2024/05/beach.jpg'],
        }),
        object_key: Type.String({
          description: 'The S3 key it was uploaded to.',
          examples: ['backups/2024/2024/05/beach.jpg'],
        }),
        reason: Type.String({
          description:
            "What differs, in words (several findings are joined by '; '): the object is missing in S3, its size or ETag is not the upload's, or the local file is missing or has another size.",
          examples: ['S3 holds 1234 bytes, 5678 were uploaded'],
        }),
      }),
      {
        description:
          'The completed files whose object or local file is not what was uploaded, in the order the files were first seen: all of them, up to 1,000.',
      },
    ),
    requeued: count(
      'How many of them are pending again, to be uploaded anew: none for a cancelled upload, nor for a file that is gone.',
    ),
  },
  {
    $id: 'VerifyResult',
    description: 'What a check of the completed files against S3 and the local folder found.',
  },
);
export type VerifyReply = Static<typeof VerifyReply>;

export const HealthReply = Type.Object(
  {
    status: Type.Enum(['ok', 'degraded'], {
      type: 'string',
      description: '`degraded` (with HTTP 503) when the database is anything but `reachable`.',
    }),
    version: Type.String({ description: 'Version of the service.', examples: ['0.1.0'] }),
    database: Type.Enum(['reachable', 'unreachable', 'missing', 'replaced'], {
      type: 'string',
      description:
        '`unreachable`: a trivial query fails. `missing` / `replaced`: the database file (or its `-wal`) was removed or replaced while the service ran; nothing more is written until it is restarted, and the log says what to do first.',
    }),
    s3: Type.Object(
      {
        status: Type.Enum(['reachable', 'unreachable'], {
          type: 'string',
          description:
            '`unreachable` while S3 cannot be reached or answers every request with a server error or throttling: no upload starts, S3 is probed every few seconds (up to a minute apart), and uploads resume by themselves once it answers. The HTTP status stays 200: the service itself works.',
        }),
        since: Type.String({ format: 'date-time', description: 'When the status last changed.' }),
        last_error: Type.Union([Type.String(), Type.Null()], {
          description: 'What the last probe found, while unreachable; null otherwise.',
        }),
      },
      { description: 'Whether S3 answers.' },
    ),
  },
  { $id: 'Health', description: 'Whether the service works, reaches its database, and reaches S3.' },
);
export type HealthReply = Static<typeof HealthReply>;

const errorCodeList = ERROR_CODES.map(
  (code) => `- \`${code}\` (${ERROR_CATALOGUE[code].status}): ${ERROR_CATALOGUE[code].description}`,
).join('\n');

export const ErrorReply = Type.Object(
  {
    error: Type.Enum([...ERROR_CODES], {
      type: 'string',
      description: `A stable code for programs:\n${errorCodeList}`,
    }),
    message: Type.String({ description: 'What went wrong, in words for people.' }),
    details: Type.Optional(
      Type.Array(
        Type.Object({
          field: Type.String({
            description: 'The field at fault, by its API name (a path such as `a/b` for a nested value).',
            examples: ['source_folder'],
          }),
          message: Type.String({ examples: ["'data/photos' is a relative path"] }),
        }),
        { description: 'For `validation_error` and the `invalid_*` errors: each field at fault.' },
      ),
    ),
  },
  { $id: 'Error', description: 'Every error reply has this shape.' },
);
export type ErrorReply = Static<typeof ErrorReply>;

// --- settings changed at run time

const maxUploadBytesPerSecond = Type.Integer({
  minimum: 0,
  maximum: Number.MAX_SAFE_INTEGER,
  description:
    'The bandwidth limit: bytes per second sent to S3 by all uploads together, request bodies only; `0` means no limit. It starts as `MAX_UPLOAD_BYTES_PER_SECOND` and applies to the parts in flight too, within a fraction of a second. A limit set while there was none applies from the next request (a part already being sent goes on at full speed).',
  examples: [4194304],
});

export const SettingsReply = Type.Object(
  { max_upload_bytes_per_second: maxUploadBytesPerSecond },
  { $id: 'Settings', description: 'The settings that can be changed while the service runs.' },
);
export type SettingsReply = Static<typeof SettingsReply>;

export const UpdateSettingsBody = Type.Object(
  { max_upload_bytes_per_second: Type.Optional(maxUploadBytesPerSecond) },
  {
    additionalProperties: false,
    description:
      'The settings to change; those left out keep their value. They last until the service stops.',
  },
);
export type UpdateSettingsBody = Static<typeof UpdateSettingsBody>;

/** The named shapes, registered with the app so that references to them resolve. */
export const NAMED_SCHEMAS: TSchema[] = [
  ObjectPropertiesReply,
  ArrivalReply,
  ManifestReply,
  NotificationReply,
  UploadReply,
  CreatedUploadReply,
  ScanReply,
  UploadProgressReply,
  UploadDetailsReply,
  UploadSummaryReply,
  FileItem,
  FileListReply,
  InstanceReply,
  RetryReply,
  RescanReply,
  VerifyReply,
  HealthReply,
  ErrorReply,
  SettingsReply,
];
