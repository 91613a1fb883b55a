// What can be seen of the S3 traffic from outside transfer/: every request the client sends (its
// operation, how it ended, how long it took, the body it carried) and every retry requestS3 makes,
// told to an observer this layer defines. transfer/ knows nothing of who listens (the metrics).
import { performance } from 'node:perf_hooks';
import type { S3Client } from '@aws-sdk/client-s3';
import { requestOutcomeOf } from './errors.js';

/** Told of the S3 requests of one client. Called on the request path: keep each call cheap. */
export interface S3RequestObserver {
  /** A request of this operation ('PutObject', 'UploadPart'...) goes out now. */
  requestStarted(operation: string): void;
  /**
   * It ended: outcome is 'success' or what requestOutcomeOf says of its error; seconds from its
   * start (after signing) to its answer read whole; bodyBytes its Content-Length (0 for none).
   */
  requestEnded(operation: string, outcome: string, seconds: number, bodyBytes: number): void;
  /** A request failed and requestS3 tries it again (an attempt of the retry policy). */
  requestRetried(operation: string): void;
}

const observers = new WeakMap<S3Client, S3RequestObserver>();

/**
 * Tells `observer` of every request `client` sends. The middleware sits outside the deserializer,
 * so that S3's error codes are parsed by then, and inside signing, so that the time is the wire's.
 */
export function observeS3Requests(client: S3Client, observer: S3RequestObserver): void {
  observers.set(client, observer);
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const operation = operationOf(context.commandName);
      const bodyBytes = contentLengthOf(args.request);
      observer.requestStarted(operation);
      const startedAt = performance.now();
      try {
        const result = await next(args);
        observer.requestEnded(operation, 'success', (performance.now() - startedAt) / 1000, bodyBytes);
        return result;
      } catch (error) {
        const seconds = (performance.now() - startedAt) / 1000;
        observer.requestEnded(operation, requestOutcomeOf(error), seconds, bodyBytes);
        throw error;
      }
    },
    { step: 'deserialize', priority: 'high', name: 'requestObserver' },
  );
}

/** The observer of `client`'s requests, for the retries made around them (see requestS3). */
export function observerOf(client: S3Client): S3RequestObserver | undefined {
  return observers.get(client);
}

/** 'PutObjectCommand' → 'PutObject'. */
function operationOf(commandName: string | undefined): string {
  if (commandName === undefined) return 'unknown';
  return commandName.endsWith('Command') ? commandName.slice(0, -'Command'.length) : commandName;
}

function contentLengthOf(request: unknown): number {
  const headers = (request as { headers?: Record<string, string | undefined> } | undefined)?.headers;
  const value = headers?.['content-length'] ?? headers?.['Content-Length'];
  const bytes = value === undefined ? 0 : Number(value);
  return Number.isSafeInteger(bytes) && bytes > 0 ? bytes : 0;
}
