// The commands about uploads: add, ls, status, cancel, retry, rescan, verify.
import path from 'node:path';
import { Argument, Option, type Command } from 'commander';
import {
  collectKeyValue,
  collectValues,
  parseIntervalSeconds,
  parseS3Destination,
  type S3Destination,
} from '../arguments.js';
import { clientOf, type CliIo } from '../context.js';
import { EXIT, type ExitCode } from '../exit-codes.js';
import { progressDisplay } from '../progress-display.js';
import {
  failedFilesLines,
  uploadCreatedLines,
  uploadDetailsLines,
  uploadTable,
  verifyLines,
} from '../views.js';
import { waitUntilSettled } from '../wait.js';
import type { ApiClient } from '../api-client.js';
import type { CreateUploadBody, UploadDetailsReply } from '../../api/schemas.js';
import type { IfExists } from '../../domain/model.js';

/** How many failed files `status` lists with their messages; `files --status failed` has the rest. */
const FAILED_FILES_SHOWN = 20;

const UPLOAD_STATUS_CHOICES = ['pending', 'active', 'completed', 'cancelled', 'all'] as const;

/** The API's `if_exists`: the CLI loads nothing of the service at run time, its types only. */
const IF_EXISTS_CHOICES: readonly IfExists[] = ['skip_identical', 'skip', 'overwrite'];

interface JsonOption {
  json?: boolean;
}

/** What `add` says of the objects; what it leaves out, the service's defaults give. */
interface ObjectPropertyOptions {
  storageClass?: string;
  sse?: string;
  sseKmsKeyId?: string;
  metadata?: Record<string, string>;
  tag?: Record<string, string>;
}

function objectPropertiesOf(options: ObjectPropertyOptions): Pick<CreateUploadBody, 'object_properties'> {
  const properties: NonNullable<CreateUploadBody['object_properties']> = {};
  // The service checks the values and names the field it refuses (400 invalid_object_properties).
  if (options.storageClass !== undefined) {
    properties.storage_class = options.storageClass as NonNullable<typeof properties.storage_class>;
  }
  if (options.sse !== undefined) properties.sse = options.sse as NonNullable<typeof properties.sse>;
  if (options.sseKmsKeyId !== undefined) properties.sse_kms_key_id = options.sseKmsKeyId;
  if (options.metadata !== undefined) properties.metadata = options.metadata;
  if (options.tag !== undefined) properties.tags = options.tag;
  return Object.keys(properties).length === 0 ? {} : { object_properties: properties };
}

type Register = (program: Command, io: CliIo, end: (code: ExitCode) => void) => void;

export const registerUploadCommands: Register = (program, io, end) => {
  const { out } = io;

  program
    .command('add')
    .description('Create an upload: watch a folder, upload it to S3')
    .argument('<folder>', 'the folder to watch (a relative path is taken from the current folder)')
    .addArgument(
      new Argument('<destination>', 's3://bucket or s3://bucket/prefix: where the files go').argParser(
        parseS3Destination,
      ),
    )
    .option('--pattern <glob>', 'which files to upload, e.g. "*.csv" or "raw/**/*.tif" (default: every file)')
    .option('--id <id>', 'your own upload id (default: a new UUID)')
    .option('--allow-overlap', 'accept a destination that overlaps a live upload of the same bucket')
    .option('--no-check-bucket', 'do not check the bucket first (for a bucket that will exist later)')
    .option(
      '--no-watch',
      'upload the files there now, once, and complete (default: watch the folder for new files until cancelled)',
    )
    .addOption(
      new Option(
        '--if-exists <choice>',
        "an object already at a file's key: skip_identical (not sent when the same), skip (never sent over), overwrite",
      )
        .choices(IF_EXISTS_CHOICES)
        .default('skip_identical'),
    )
    .option('--storage-class <class>', "S3's storage class of every object, e.g. STANDARD_IA or GLACIER_IR")
    .option('--sse <algorithm>', 'server-side encryption of every object: AES256 or aws:kms')
    .option('--sse-kms-key-id <key>', 'the KMS key (id, alias or ARN) for --sse aws:kms')
    .option('--metadata <key=value>', 'user metadata of every object (repeat it for more)', collectKeyValue)
    .option('--tag <key=value>', 'a tag of every object (repeat it for more)', collectKeyValue)
    .option(
      '--complete-marker <glob>',
      'a file that says the run is complete, e.g. RTAComplete.txt: uploaded last, after every other file (repeat it for more)',
      collectValues,
    )
    .option(
      '--manifest',
      'write a manifest of every uploaded file (before each marker, and when the upload completes)',
    )
    .option(
      '--manifest-key <key>',
      "the manifest's key in the bucket (default: _manifest.json under the prefix)",
    )
    .option(
      '--notify-url <url>',
      'POST the arrival there: when the marker is uploaded, or the one-shot upload completes',
    )
    .option('--json', 'print the created upload as JSON')
    .action(
      async (
        folder: string,
        destination: S3Destination,
        options: JsonOption &
          ObjectPropertyOptions & {
            pattern?: string;
            id?: string;
            allowOverlap?: boolean;
            checkBucket: boolean;
            watch: boolean;
            ifExists: IfExists;
            completeMarker?: string[];
            manifest?: boolean;
            manifestKey?: string;
            notifyUrl?: string;
          },
        command: Command,
      ) => {
        const created = await clientOf(command).createUpload({
          source_folder: path.resolve(folder),
          destination_bucket: destination.bucket,
          ...(destination.prefix === '' ? {} : { destination_prefix: destination.prefix }),
          ...(options.pattern === undefined ? {} : { pattern: options.pattern }),
          ...(options.id === undefined ? {} : { upload_id: options.id }),
          ...(options.allowOverlap ? { allow_overlap: true } : {}),
          ...(options.checkBucket ? {} : { check_bucket: false }),
          ...(options.watch ? {} : { watch: false }),
          if_exists: options.ifExists,
          ...objectPropertiesOf(options),
          ...(options.completeMarker === undefined ? {} : { complete_markers: options.completeMarker }),
          ...(options.manifest ? { manifest: true } : {}),
          ...(options.manifestKey === undefined ? {} : { manifest_key: options.manifestKey }),
          ...(options.notifyUrl === undefined ? {} : { notify_url: options.notifyUrl }),
        });
        await (options.json ? out.json(created) : out.lines(uploadCreatedLines(created)));
        end(EXIT.ok);
      },
    );

  program
    .command('ls')
    .description('List uploads: phase, files, bytes, MiB/s, ETA')
    .addOption(
      new Option('--status <status>', 'which uploads (default: all but the cancelled ones)').choices(
        UPLOAD_STATUS_CHOICES,
      ),
    )
    .option('--json', 'print the API’s list as JSON')
    .action(
      async (options: JsonOption & { status?: (typeof UPLOAD_STATUS_CHOICES)[number] }, command: Command) => {
        const uploads = await clientOf(command).listUploads(options.status);
        if (options.json) await out.json(uploads);
        else if (uploads.length === 0) await out.lines([noUploadsLine(options.status)]);
        else await out.lines(uploadTable(uploads));
        end(EXIT.ok);
      },
    );

  program
    .command('status')
    .description('Show an upload; --wait follows it to the end')
    .argument('<id>', 'the upload id')
    .option(
      '--wait',
      'follow it until its phase is idle, or completed for a one-shot upload (exit 0), failed or cancelled (exit 1)',
    )
    .option('--interval <seconds>', 'seconds between polls with --wait', parseIntervalSeconds, 1)
    .option('--json', 'print the API’s upload as JSON (with --wait: once, at the end)')
    .action(
      async (id: string, options: JsonOption & { wait?: boolean; interval: number }, command: Command) => {
        const client = clientOf(command);
        if (!options.wait) {
          const upload = await client.getUpload(id);
          await (options.json ? out.json(upload) : out.lines(await detailsWithFailures(client, upload)));
          end(EXIT.ok);
          return;
        }
        end(await waitAndReport(client, id, options.interval * 1000, options.json === true, io));
      },
    );

  program
    .command('cancel')
    .description('Cancel an upload: stop watching, abort uploads')
    .argument('<id>', 'the upload id')
    .option('--json', 'print the cancelled upload as JSON')
    .action(async (id: string, options: JsonOption, command: Command) => {
      const upload = await clientOf(command).cancelUpload(id);
      await (options.json ? out.json(upload) : out.lines([`cancelled upload ${upload.upload_id}`]));
      end(EXIT.ok);
    });

  program
    .command('retry')
    .description('Requeue the failed files of an upload now')
    .argument('<id>', 'the upload id')
    .option('--json', 'print the API’s answer as JSON')
    .action(async (id: string, options: JsonOption, command: Command) => {
      const result = await clientOf(command).retryFailed(id);
      await (options.json
        ? out.json(result)
        : out.lines([`${result.upload_id}: ${result.requeued} failed files requeued`]));
      end(EXIT.ok);
    });

  program
    .command('rescan')
    .description('Scan the folder of an upload now')
    .argument('<id>', 'the upload id')
    .option('--json', 'print the API’s answer as JSON')
    .action(async (id: string, options: JsonOption, command: Command) => {
      const result = await clientOf(command).rescan(id);
      const line =
        result.rescan === 'started'
          ? `${result.upload_id}: rescan started (see it in: s3-folder-uploader status ${result.upload_id})`
          : `${result.upload_id}: a scan is already running`;
      await (options.json ? out.json(result) : out.lines([line]));
      end(EXIT.ok);
    });

  program
    .command('verify')
    .description('Check uploaded files against S3 and the disk')
    .argument('<id>', 'the upload id')
    .option('--json', 'print the API’s answer as JSON')
    .action(async (id: string, options: JsonOption, command: Command) => {
      const result = await clientOf(command).verify(id);
      await (options.json ? out.json(result) : out.lines(verifyLines(id, result)));
      end(result.mismatched > 0 ? EXIT.filesFailed : EXIT.ok);
    });
};

function noUploadsLine(status: string | undefined): string {
  if (status === 'all') return 'no uploads';
  if (status !== undefined) return `no ${status} uploads`;
  return 'no uploads but cancelled ones (ls --status all lists every one)';
}

async function detailsWithFailures(client: ApiClient, upload: UploadDetailsReply): Promise<string[]> {
  const failed =
    upload.files.failed === 0
      ? []
      : (await client.listFiles(upload.upload_id, { status: 'failed', limit: FAILED_FILES_SHOWN })).items;
  return [...uploadDetailsLines(upload), ...failedFilesLines(failed, upload.files.failed, upload.upload_id)];
}

/**
 * Follows the upload until it settles. Exit 0 when idle, or completed (a one-shot upload); 1 when files failed (listed with their
 * messages) or when it was cancelled, since then its files will not all arrive.
 */
async function waitAndReport(
  client: ApiClient,
  id: string,
  intervalMs: number,
  json: boolean,
  { out }: CliIo,
): Promise<ExitCode> {
  const display = json ? undefined : progressDisplay(out);
  // Ctrl-C: put the cursor back before leaving, then end as an interrupted process does.
  const interrupted = (): void => {
    display?.stop();
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  let upload: UploadDetailsReply;
  try {
    upload = await waitUntilSettled(client, id, { intervalMs, display });
  } finally {
    process.removeListener('SIGINT', interrupted);
    display?.stop();
  }
  // The display has drawn the last state already; what remains is the verdict.
  const phase = upload.progress.phase;
  if (json) {
    await out.json(upload);
  } else if (phase === 'idle') {
    await out.lines([`${id} is up to date: ${upload.files.completed} files in S3`]);
  } else if (phase === 'completed') {
    await out.lines([`${id} is completed: ${upload.files.completed} files in S3`]);
  } else if (phase === 'cancelled') {
    await out.lines([`${id} was cancelled: ${upload.files.completed} of ${upload.files.total} files in S3`]);
  } else {
    const failed = (await client.listFiles(id, { status: 'failed', limit: FAILED_FILES_SHOWN })).items;
    await out.lines(failedFilesLines(failed, upload.files.failed, id));
  }
  return phase === 'idle' || phase === 'completed' ? EXIT.ok : EXIT.filesFailed;
}
