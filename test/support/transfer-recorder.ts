// What a transfer test needs around the uploader: a progress listener that records what it is
// told, a count of the commands a client sends, and a bucket removal that Swift accepts.
import {
  AbortMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { UploadedPart, ValidationMethod } from '../../src/domain/model.js';
import type { NewMultipartUpload, UploadProgressListener, UploadResult } from '../../src/transfer/types.js';
import type { S3RequestObserver } from '../../src/transfer/s3-observer.js';
import { listKeys, listMultipartUploads } from './s3.js';

export interface Recorded {
  created: NewMultipartUpload[];
  parts: UploadedPart[];
  bytes: number[];
  aborted: number;
}

/** A progress listener that records what it is told; `onPart` runs once a part is recorded. */
export function recorder(onPart?: (part: UploadedPart, recorded: Recorded) => Promise<void> | void): {
  listener: UploadProgressListener;
  recorded: Recorded;
} {
  const recorded: Recorded = { created: [], parts: [], bytes: [], aborted: 0 };
  return {
    recorded,
    listener: {
      multipartCreated: async (state) => {
        recorded.created.push(state);
      },
      partUploaded: async (part) => {
        recorded.parts.push(part);
        await onPart?.(part, recorded);
      },
      multipartAborted: async () => {
        recorded.aborted++;
      },
      bytesUploaded: (total) => {
        recorded.bytes.push(total);
      },
    },
  };
}

/**
 * Counts the requests a client made with this observer sends, by command name ('PutObjectCommand';
 * one count per attempt), those the SDK sends and the direct PutObjects alike.
 */
export function requestCounter(): { observer: S3RequestObserver; counts: Map<string, number> } {
  const counts = new Map<string, number>();
  const observer: S3RequestObserver = {
    requestStarted(operation) {
      const name = `${operation}Command`;
      counts.set(name, (counts.get(name) ?? 0) + 1);
    },
    requestEnded: () => undefined,
    requestRetried: () => undefined,
  };
  return { observer, counts };
}

/** Counts the commands the service's client sends through the SDK, by name (one count per attempt). */
export function countCommands(client: S3Client): Map<string, number> {
  const counts = new Map<string, number>();
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = context.commandName ?? 'unknown';
      counts.set(name, (counts.get(name) ?? 0) + 1);
      return next(args);
    },
    { step: 'finalizeRequest', name: 'testCommandCounter' },
  );
  return counts;
}

/** The most requests of one command the client had in flight at once. */
export function peakInFlight(client: S3Client, commandName: string): { readonly peak: number } {
  const tracked = { peak: 0 };
  let inFlight = 0;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== commandName) return next(args);
      tracked.peak = Math.max(tracked.peak, ++inFlight);
      try {
        return await next(args);
      } finally {
        inFlight--;
      }
    },
    { step: 'finalizeRequest', name: 'testInFlightCounter' },
  );
  return tracked;
}

/**
 * Empties and deletes the bucket one object at a time: support's deleteBucket uses DeleteObjects,
 * which Swift refuses without a Content-MD5 header that the SDK no longer sends.
 */
export async function removeBucket(client: S3Client, bucket: string): Promise<void> {
  for (const upload of await listMultipartUploads(client, bucket)) {
    await client.send(
      new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.Key, UploadId: upload.UploadId }),
    );
  }
  for (const key of await listKeys(client, bucket)) {
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  }
  await client.send(new DeleteBucketCommand({ Bucket: bucket }));
}

/** What an upload that sent the file recorded: its SHA-256 and validation, which a skipped file may lack. */
export function sentContent(result: UploadResult): {
  etag: string;
  validation: ValidationMethod;
  sha256: string;
} {
  if (result.sha256 === null || result.validation === null) {
    throw new Error(`expected the file to be sent, but it was ${result.method}`);
  }
  return { etag: result.etag, validation: result.validation, sha256: result.sha256 };
}
