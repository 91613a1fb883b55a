import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { ConfigError, type ChecksumMode, type S3Settings } from '../config.js';

/** Time allowed to open a TCP (and TLS) connection. */
export const CONNECTION_TIMEOUT_MS = 10_000;
/** A request whose socket stays silent this long is dead, however large its body. */
export const SOCKET_IDLE_TIMEOUT_MS = 120_000;
/**
 * Time allowed for a whole request and its response. Generous on purpose: a part of 8 MiB over a
 * link of 20 KiB/s takes about 7 minutes; the idle timeout catches dead connections sooner.
 */
export const REQUEST_TIMEOUT_MS = 15 * 60_000;

export interface S3ClientOptions {
  /** Connections kept open to S3: the number of requests the service may have in flight. */
  maxSockets: number;
  connectionTimeoutMs?: number;
  socketIdleTimeoutMs?: number;
  requestTimeoutMs?: number;
}

const CHECKSUM_MODES: Record<ChecksumMode, 'WHEN_REQUIRED' | 'WHEN_SUPPORTED'> = {
  when_required: 'WHEN_REQUIRED',
  when_supported: 'WHEN_SUPPORTED',
};

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
  const checksums = CHECKSUM_MODES[settings.checksumMode];
  return new S3Client({
    region: settings.region,
    endpoint: settings.endpoint,
    forcePathStyle: settings.forcePathStyle,
    credentials: credentialsOf(settings),
    profile: settings.profile,
    requestChecksumCalculation: checksums,
    responseChecksumValidation: checksums,
    maxAttempts: 1,
    // With "Expect: 100-continue" (the SDK's default for bodies of 2 MB or more) the SDK's handler
    // opens a fresh connection per request, so every part would pay a new TCP/TLS handshake.
    expectContinueHeader: false,
    requestHandler: {
      httpAgent: new HttpAgent(agentOptions),
      httpsAgent: new HttpsAgent(agentOptions),
      connectionTimeout: options.connectionTimeoutMs ?? CONNECTION_TIMEOUT_MS,
      socketTimeout: options.socketIdleTimeoutMs ?? SOCKET_IDLE_TIMEOUT_MS,
      requestTimeout: options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS,
      throwOnRequestTimeout: true,
    },
  });
}
