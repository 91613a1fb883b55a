import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { Readable } from 'node:stream';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { ConfigError, DEFAULT_S3_REQUEST_TIMEOUT_MS, type ChecksumMode, type S3Settings } from '../config.js';
import { putDirectlyWith } from './direct-put.js';
import { observeS3Requests, type S3RequestObserver } from './s3-observer.js';
import { throttleRequestBodies } from './throttled-body.js';
import type { TokenBucket } from './token-bucket.js';

/** Time allowed to open a TCP (and TLS) connection. */
export const CONNECTION_TIMEOUT_MS = 10_000;
/** A request whose socket stays silent this long is dead, however large its body. */
export const SOCKET_IDLE_TIMEOUT_MS = 120_000;
/** Time allowed for a whole request and its answer, unless the options say otherwise (S3_REQUEST_TIMEOUT_MS). */
export const REQUEST_TIMEOUT_MS = DEFAULT_S3_REQUEST_TIMEOUT_MS;

export interface S3ClientOptions {
  /** Connections kept open to S3: the number of requests the service may have in flight. */
  maxSockets: number;
  connectionTimeoutMs?: number;
  socketIdleTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** The process's bandwidth limit (MAX_UPLOAD_BYTES_PER_SECOND), which every request body goes through. */
  bandwidth?: TokenBucket;
  /** Told of every request and retry (the metrics); none: nothing is measured. */
  observer?: S3RequestObserver;
}

const CHECKSUM_MODES: Record<ChecksumMode, 'WHEN_REQUIRED' | 'WHEN_SUPPORTED'> = {
  when_required: 'WHEN_REQUIRED',
  when_supported: 'WHEN_SUPPORTED',
};

const ignore = (): void => undefined;
const SILENT_SDK_LOGGER = { trace: ignore, debug: ignore, info: ignore, warn: ignore, error: ignore };

function credentialsOf(settings: S3Settings): S3ClientConfig['credentials'] {
  const { accessKeyId, secretAccessKey, sessionToken } = settings;
  if (accessKeyId === undefined && secretAccessKey === undefined) return undefined; // the SDK's default chain
  if (accessKeyId === undefined)
    throw new ConfigError('AWS_ACCESS_KEY_ID', 'is required with AWS_SECRET_ACCESS_KEY');
  if (secretAccessKey === undefined) {
    throw new ConfigError('AWS_SECRET_ACCESS_KEY', 'is required with AWS_ACCESS_KEY_ID');
  }
  return sessionToken === undefined
    ? { accessKeyId, secretAccessKey }
    : { accessKeyId, secretAccessKey, sessionToken };
}

/**
 * The service's S3 client. The SDK makes one attempt per call: transfer/retry.ts owns retries, so
 * that backoff, abort and the error allow-list live in one place.
 */
export function createS3Client(settings: S3Settings, options: S3ClientOptions): S3Client {
  const agentOptions = { keepAlive: true, maxSockets: Math.max(1, options.maxSockets) };
  const httpAgent = new HttpAgent(agentOptions);
  const httpsAgent = new HttpsAgent(agentOptions);
  const connectionTimeoutMs = options.connectionTimeoutMs ?? CONNECTION_TIMEOUT_MS;
  const socketIdleTimeoutMs = options.socketIdleTimeoutMs ?? SOCKET_IDLE_TIMEOUT_MS;
  const checksums = CHECKSUM_MODES[settings.checksumMode];
  const requestTimeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  const client = new S3Client({
    region: settings.region,
    endpoint: settings.endpoint,
    forcePathStyle: settings.forcePathStyle,
    credentials: credentialsOf(settings),
    profile: settings.profile,
    requestChecksumCalculation: checksums,
    responseChecksumValidation: checksums,
    maxAttempts: 1,
    // The SDK says nothing through its default logger, except for a failed request with a streamed
    // body (a part sent in pieces), where it prints a bare line on the console; requestS3 logs
    // every failure with its context already.
    logger: SILENT_SDK_LOGGER,
    // With "Expect: 100-continue" (the SDK's default for bodies of 2 MB or more) the SDK's handler
    // opens a fresh connection per request, so every part would pay a new TCP/TLS handshake.
    expectContinueHeader: false,
    requestHandler: {
      httpAgent,
      httpsAgent,
      connectionTimeout: connectionTimeoutMs,
      socketTimeout: socketIdleTimeoutMs,
      // Until the answer's headers arrive; boundAnswerBody takes over from there.
      requestTimeout: requestTimeoutMs,
      throwOnRequestTimeout: true,
    },
  });
  boundAnswerBody(client, requestTimeoutMs);
  if (options.bandwidth !== undefined) throttleRequestBodies(client, options.bandwidth);
  if (options.observer !== undefined) observeS3Requests(client, options.observer);
  // Over the same connections, with the same limits, timeouts and observer.
  putDirectlyWith(client, {
    httpAgent,
    httpsAgent,
    connectionTimeoutMs,
    socketIdleTimeoutMs,
    requestTimeoutMs,
    bandwidth: options.bandwidth,
    observer: options.observer,
  });
  return client;
}

/** A request whose whole answer did not arrive in time: transient, retried like a reset. */
function answerTimeoutError(timeoutMs: number): Error {
  return Object.assign(
    new Error(`S3 did not send its whole answer within ${timeoutMs} ms (S3_REQUEST_TIMEOUT_MS)`),
    { name: 'TimeoutError', code: 'ETIMEDOUT' },
  );
}

/**
 * The SDK's requestTimeout ends once the answer's headers are in: a body that then stalls (a
 * CompleteMultipartUpload answer cut off mid-XML, say) would hang until the socket idle timeout.
 * This gives the body what is left of the request's time, then destroys it with a TimeoutError.
 * It sits innermost, next to the HTTP handler, so the body is still unread when it gets it.
 */
function boundAnswerBody(client: S3Client, timeoutMs: number): void {
  client.middlewareStack.add(
    (next) => async (args) => {
      const startedAt = Date.now();
      const result = await next(args);
      const body: unknown = (result.response as { body?: unknown } | undefined)?.body;
      if (body instanceof Readable && !body.readableEnded && !body.destroyed) {
        const remainingMs = Math.max(0, startedAt + timeoutMs - Date.now());
        const timer = setTimeout(() => body.destroy(answerTimeoutError(timeoutMs)), remainingMs);
        timer.unref();
        const stop = () => clearTimeout(timer);
        body.once('end', stop);
        body.once('close', stop);
      }
      return result;
    },
    { step: 'deserialize', priority: 'low', name: 'answerBodyDeadline' },
  );
}
