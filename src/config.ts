// Every setting, its default and its validation, in one place. Values come from the environment,
// and from a .env file in the working folder when one exists (the environment wins).
import { realpath, stat } from 'node:fs/promises';
import { BlockList, isIP } from 'node:net';
import path from 'node:path';

import {
  checkObjectProperties,
  ObjectPropertiesError,
  type ObjectProperties,
} from './domain/object-properties.js';
import { SUPPORTED_URLS, databaseKindOf, redactPassword } from './store/database-url.js';
import { DEFAULT_POOL_SIZE, postgresTargetOf } from './store/postgres/url.js';
import { MAX_PART_SIZE, MIN_PART_SIZE } from './transfer/part-plan.js';
import { parseAllowedHosts } from './arrival/notify-url.js';

const MiB = 1024 * 1024;
/**
 * Time allowed for one S3 request and its whole answer. Generous on purpose: a part of 8 MiB over a
 * link of 20 KiB/s takes about 7 minutes; the socket idle timeout catches dead connections sooner.
 */
export const DEFAULT_S3_REQUEST_TIMEOUT_MS = 15 * 60_000;

export type ChecksumMode = 'when_required' | 'when_supported';
/** The checksum S3 checks on every part besides Content-MD5 ('md5': Content-MD5 alone). */
export type ChecksumAlgorithm = 'md5' | 'crc32c' | 'sha256';
export type AppendMode = 'auto' | 'off';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
/** 'json': one JSON object a line, for machines; 'pretty': a line people read, through pino-pretty. */
export type LogFormat = 'json' | 'pretty';

export interface S3Settings {
  region: string;
  /** AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL; undefined means AWS itself. */
  endpoint: string | undefined;
  forcePathStyle: boolean;
  checksumMode: ChecksumMode;
  /** Keys given in the environment; otherwise the SDK's default chain (AWS_PROFILE, instance roles...). */
  accessKeyId: string | undefined;
  secretAccessKey: string | undefined;
  sessionToken: string | undefined;
  profile: string | undefined;
}

export interface TransferSettings {
  multipartThresholdBytes: number;
  partSizeBytes: number;
  maxConcurrentParts: number;
  retryMaxAttempts: number;
  retryBaseDelayMs: number;
  /** Upload a file of at least multipartThresholdBytes while it is still being written. */
  streamGrowingFiles: boolean;
  /** Part size of a file uploaded while it grows (its final size is unknown). */
  streamPartSizeBytes: number;
  /** 'auto': a completed file that grew by appends gets its old bytes copied on the server. */
  appendMode: AppendMode;
  checksumAlgorithm: ChecksumAlgorithm;
  /** Memory for file data in flight (parts, small files): bounds the parts in flight too. */
  maxBufferBytes: number;
}

export interface SecuritySettings {
  /** Clients send it as `Authorization: Bearer <token>`; undefined: the API asks for nothing. */
  apiToken: string | undefined;
  /** Listening beyond loopback without an API token is on purpose (a proxy or firewall guards the port). */
  allowUnauthenticated: boolean;
  /** Absolute folders as configured (resolveSourceRoots gives their real paths); undefined: any folder. */
  allowedSourceRoots: string[] | undefined;
  /** The only hosts a notify_url may name (NOTIFY_ALLOWED_HOSTS; see arrival/notify-url.ts); null: any. */
  notifyAllowedHosts: string[] | null;
}

export interface MetricsSettings {
  /** Prometheus metrics collected and served at GET /metrics; false: nothing is measured. */
  enabled: boolean;
  /** GET /metrics answers without the API token. */
  public: boolean;
}

export interface Config {
  port: number;
  host: string;
  databaseUrl: string;
  /** Absolute path of the SQLite file; undefined when DATABASE_URL names PostgreSQL. */
  sqlitePath: string | undefined;
  /** Connections the PostgreSQL store's pool opens at most (unused with SQLite). */
  databasePoolSize: number;
  /** How often this instance's heartbeat renews its leases (and its reaper looks for expired ones). */
  heartbeatSeconds: number;
  /** How long a lease outlives the last heartbeat: at least LEASE_TO_HEARTBEAT heartbeats. */
  leaseSeconds: number;
  /**
   * How often the dispatcher looks at the queue when nothing wakes it, on PostgreSQL while the
   * other instances' changes are heard (QUEUE_POLL_SECONDS); otherwise every second.
   */
  queuePollSeconds: number;
  s3: S3Settings;
  transfer: TransferSettings;
  failedRequeueIntervalSeconds: number;
  rescanIntervalSeconds: number;
  settleSeconds: number;
  maxConcurrentFiles: number;
  /** Longest an S3 request may take, from sending it to the last byte of the answer; then it is retried. */
  s3RequestTimeoutMs: number;
  /** The bandwidth limit at start, shared by every request body to S3; 0: none. Changed at run time through the API. */
  maxUploadBytesPerSecond: number;
  logLevel: LogLevel;
  logFormat: LogFormat;
  security: SecuritySettings;
  metrics: MetricsSettings;
  /** What an upload's objects carry when its order does not say (DEFAULT_STORAGE_CLASS...). */
  objectDefaults: ObjectProperties;
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;

function raw(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

function integer(
  env: Env,
  name: string,
  fallback: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value)) throw new ConfigError(name, `'${value}' is not a whole number`);
  const n = Number(value);
  if (n < min || n > max) throw new ConfigError(name, `${n} is out of range (${min} to ${max})`);
  return n;
}

/** A week: timers beyond about 24.8 days overflow in Node and fire at once. */
const MAX_SECONDS = 7 * 24 * 3600;

function seconds(env: Env, name: string, fallback: number, min: number): number {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  if (!/^\d+(\.\d+)?$/.test(value)) throw new ConfigError(name, `'${value}' is not a number of seconds`);
  const n = Number(value);
  if (n < min) throw new ConfigError(name, `${n} is below the minimum of ${min}`);
  if (n > MAX_SECONDS) throw new ConfigError(name, `${n} is above the maximum of ${MAX_SECONDS} (a week)`);
  return n;
}

function boolean(env: Env, name: string, fallback: boolean): boolean {
  const value = raw(env, name)?.toLowerCase();
  if (value === undefined) return fallback;
  if (['true', '1', 'yes'].includes(value)) return true;
  if (['false', '0', 'no'].includes(value)) return false;
  throw new ConfigError(name, `'${value}' is not true or false`);
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const value = raw(env, name)?.toLowerCase();
  if (value === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new ConfigError(name, `'${value}' is not one of ${allowed.join(', ')}`);
  }
  return value as T;
}

function url(env: Env, name: string): string | undefined {
  const value = raw(env, name);
  if (value === undefined) return undefined;
  try {
    const parsed = new URL(value);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('not http');
  } catch {
    throw new ConfigError(name, `'${value}' is not an http(s) URL`);
  }
  return value;
}

/** A part size: S3 takes parts of 5 MiB to 5 GiB (the last part of an upload may be smaller). */
function partSize(env: Env, name: string, fallback: number): number {
  const bytes = integer(env, name, fallback, 0, MAX_PART_SIZE);
  if (bytes < MIN_PART_SIZE) {
    throw new ConfigError(name, `${bytes} is below S3's minimum part size of ${MIN_PART_SIZE} (5 MiB)`);
  }
  return bytes;
}

/**
 * MAX_BUFFER_BYTES: every buffer of file data is leased from it, so it must hold at least one part
 * of a streamed file and one file below the multipart threshold (read whole), or those could never
 * be sent. A part of a settled file may be larger: it is then sent in pieces.
 */
function bufferBound(
  env: Env,
  needs: { streamPartSizeBytes: number; multipartThresholdBytes: number },
): number {
  const bytes = integer(env, 'MAX_BUFFER_BYTES', 256 * MiB, 1, Number.MAX_SAFE_INTEGER);
  const needed: [string, number][] = [
    ['STREAM_PART_SIZE_BYTES', needs.streamPartSizeBytes],
    ['MULTIPART_THRESHOLD_BYTES', needs.multipartThresholdBytes - 1],
  ];
  for (const [name, need] of needed) {
    if (bytes < need) {
      throw new ConfigError(
        'MAX_BUFFER_BYTES',
        `${bytes} is below ${name} (${need}): raise it, or lower ${name}`,
      );
    }
  }
  return bytes;
}

/**
 * A lease outlasts this many heartbeats at least, so that a beat or two lost to a slow database or
 * a long pause does not hand a live instance's tasks to another.
 */
export const LEASE_TO_HEARTBEAT = 3;

function leaseTimes(env: Env): { heartbeatSeconds: number; leaseSeconds: number } {
  const heartbeatSeconds = seconds(env, 'HEARTBEAT_SECONDS', 5, 0.1);
  const leaseSeconds = seconds(env, 'LEASE_SECONDS', 30, 0.3);
  if (leaseSeconds < LEASE_TO_HEARTBEAT * heartbeatSeconds) {
    throw new ConfigError(
      'LEASE_SECONDS',
      `${leaseSeconds} is less than ${LEASE_TO_HEARTBEAT} × HEARTBEAT_SECONDS (${heartbeatSeconds}): a lease must outlast ${LEASE_TO_HEARTBEAT} heartbeats, or a live instance whose beats are late loses its tasks to another; raise LEASE_SECONDS to at least ${LEASE_TO_HEARTBEAT * heartbeatSeconds} or lower HEARTBEAT_SECONDS`,
    );
  }
  return { heartbeatSeconds, leaseSeconds };
}

/** RFC 6750's b64token: what a client can send after `Bearer ` without quoting. */
const TOKEN_CHARACTERS = /^[A-Za-z0-9\-._~+/]+=*$/;
const MIN_TOKEN_LENGTH = 16;

function apiToken(env: Env): string | undefined {
  const token = raw(env, 'API_TOKEN');
  if (token === undefined) return undefined;
  if (!TOKEN_CHARACTERS.test(token)) {
    throw new ConfigError(
      'API_TOKEN',
      'may only hold A-Z, a-z, 0-9 and - . _ ~ + / (then = signs), so that clients can send it as a bearer token',
    );
  }
  if (token.length < MIN_TOKEN_LENGTH) {
    throw new ConfigError(
      'API_TOKEN',
      `is ${token.length} characters long; use at least ${MIN_TOKEN_LENGTH} random ones (for example the output of: openssl rand -hex 32)`,
    );
  }
  return token;
}

/**
 * Folders separated by ':', like PATH; each one absolute. Unset: any folder. Set to nothing (or
 * only separators) is refused rather than read as unset: a confinement that an empty value in a
 * deployment file turned off without a word is worse than none asked for.
 */
function sourceRoots(env: Env): string[] | undefined {
  const value = env.ALLOWED_SOURCE_ROOTS;
  if (value === undefined) return undefined;
  const roots = value
    .split(':')
    .map((root) => root.trim())
    .filter((root) => root !== '');
  if (roots.length === 0) {
    throw new ConfigError(
      'ALLOWED_SOURCE_ROOTS',
      `is set but names no folder (${JSON.stringify(value)}): list the folders sources may be in, separated by ':', or unset it to allow any folder`,
    );
  }
  for (const root of roots) {
    if (!path.isAbsolute(root)) {
      throw new ConfigError('ALLOWED_SOURCE_ROOTS', `'${root}' is not an absolute path`);
    }
  }
  return roots.map((root) => path.resolve(root));
}

function notifyAllowedHosts(env: Env): string[] | null {
  try {
    return parseAllowedHosts(env.NOTIFY_ALLOWED_HOSTS);
  } catch (error) {
    throw new ConfigError('NOTIFY_ALLOWED_HOSTS', (error as Error).message);
  }
}

function metricsSettings(env: Env): MetricsSettings {
  const enabled = boolean(env, 'METRICS_ENABLED', true);
  const exposed = boolean(env, 'METRICS_PUBLIC', false);
  if (exposed && !enabled) {
    throw new ConfigError(
      'METRICS_PUBLIC',
      'is true but METRICS_ENABLED is false, so there is no /metrics to open: set one of them',
    );
  }
  return { enabled, public: exposed };
}

/** A JSON object of strings: DEFAULT_OBJECT_METADATA, DEFAULT_OBJECT_TAGS. */
function stringMap(env: Env, name: string): Record<string, string> | undefined {
  const value = raw(env, name);
  if (value === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    parsed = undefined;
  }
  const isMap =
    typeof parsed === 'object' &&
    parsed !== null &&
    !Array.isArray(parsed) &&
    Object.values(parsed).every((entry) => typeof entry === 'string');
  if (!isMap)
    throw new ConfigError(name, `'${value}' is not a JSON object of strings, like {"project":"genomics"}`);
  return parsed as Record<string, string>;
}

/** The object properties of an upload whose order leaves them out, checked as an order's would be. */
const OBJECT_DEFAULT_VARIABLES: Record<string, string> = {
  storage_class: 'DEFAULT_STORAGE_CLASS',
  sse: 'DEFAULT_SSE',
  sse_kms_key_id: 'DEFAULT_SSE_KMS_KEY_ID',
  metadata: 'DEFAULT_OBJECT_METADATA',
  tags: 'DEFAULT_OBJECT_TAGS',
};

function objectDefaults(env: Env): ObjectProperties {
  try {
    return checkObjectProperties(
      {
        storageClass: raw(env, 'DEFAULT_STORAGE_CLASS')?.toUpperCase(),
        sse: raw(env, 'DEFAULT_SSE'),
        sseKmsKeyId: raw(env, 'DEFAULT_SSE_KMS_KEY_ID'),
        metadata: stringMap(env, 'DEFAULT_OBJECT_METADATA'),
        tags: stringMap(env, 'DEFAULT_OBJECT_TAGS'),
      },
      '',
    );
  } catch (error) {
    if (!(error instanceof ObjectPropertiesError)) throw error;
    // '.metadata.key' → DEFAULT_OBJECT_METADATA, with the rest of the path in the message.
    const [, property = '', ...rest] = error.problem.field.split('.');
    const where = rest.length > 0 ? `${rest.join('.')}: ` : '';
    throw new ConfigError(OBJECT_DEFAULT_VARIABLES[property] ?? property, `${where}${error.problem.message}`);
  }
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** 127.0.0.0/8, ::1 (IPv4-mapped loopback too) and localhost; any other name or address may be reachable from outside. */
export function isLoopbackHost(host: string): boolean {
  const address = host.replace(/^\[(.*)\]$/, '$1');
  if (/^localhost\.?$/i.test(address)) return true;
  const family = isIP(address);
  if (family === 0) return false;
  return LOOPBACK.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * null when the API is safe to start as configured; otherwise the one-line reason it is not: it
 * would listen beyond loopback with no token, and ALLOW_UNAUTHENTICATED does not say that is meant.
 */
export function unauthenticatedExposureProblem(host: string, security: SecuritySettings): string | null {
  if (security.apiToken !== undefined || security.allowUnauthenticated || isLoopbackHost(host)) return null;
  return (
    `'${host}' lets other machines reach the API and API_TOKEN is not set, so anyone could read and ` +
    'create uploads: set API_TOKEN to a long random secret (clients then send Authorization: ' +
    'Bearer <token>), or HOST=127.0.0.1, or ALLOW_UNAUTHENTICATED=true if a firewall or proxy already guards the port'
  );
}

/**
 * The real paths of ALLOWED_SOURCE_ROOTS, read once at start-up: a source folder is compared with
 * them after its own links are resolved, so the roots' links must be resolved too.
 */
export async function resolveSourceRoots(roots: readonly string[]): Promise<string[]> {
  const resolved: string[] = [];
  for (const root of roots) {
    let real: string;
    try {
      real = await realpath(root);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'unknown error';
      const reason = code === 'ENOENT' ? 'does not exist' : `cannot be resolved (${code})`;
      throw new ConfigError('ALLOWED_SOURCE_ROOTS', `'${root}' ${reason}`);
    }
    if (!(await stat(real)).isDirectory()) {
      throw new ConfigError('ALLOWED_SOURCE_ROOTS', `'${root}' is not a folder`);
    }
    if (!resolved.includes(real)) resolved.push(real);
  }
  return resolved;
}

/**
 * sqlite:./relative/file.db or sqlite:/absolute/file.db, resolved against the working folder. The
 * forms SQLite reads as something else than a path are refused rather than taken as a file name
 * (which is what they became: `sqlite::memory:` made a file named `:memory:`).
 */
export function sqlitePathOf(databaseUrl: string, cwd: string): string {
  const match = /^sqlite:(?:\/\/)?(.+)$/.exec(databaseUrl);
  if (!match?.[1]) {
    throw new ConfigError(
      'DATABASE_URL',
      `'${redactPassword(databaseUrl)}' is not supported: ${SUPPORTED_URLS}`,
    );
  }
  const location = match[1];
  const problem = /^:memory:/i.test(location)
    ? // An in-memory database would lose every upload and task at each restart or crash.
      'an in-memory database is not supported: the service keeps its uploads and tasks across restarts and crashes, which needs a file'
    : /^file:/i.test(location) || /[?#]/.test(location)
      ? 'SQLite URI file names and options (file:..., ?mode=..., #...) are not supported'
      : undefined;
  if (problem !== undefined) {
    throw new ConfigError(
      'DATABASE_URL',
      `'${databaseUrl}': ${problem}; give the path of the database file, e.g. sqlite:./data/uploads.db or sqlite:/var/lib/s3-folder-uploader/uploads.db`,
    );
  }
  return path.resolve(cwd, location);
}

/**
 * A postgres:// or postgresql:// URL is read as the store will read it (its schema included), so
 * that a mistake stops start-up here; its password never appears in the message.
 */
function checkPostgresUrl(databaseUrl: string): void {
  try {
    postgresTargetOf(databaseUrl);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConfigError('DATABASE_URL', `'${redactPassword(databaseUrl)}': ${reason}`);
  }
}

/** The SQLite file DATABASE_URL names, or undefined for PostgreSQL (whose URL is checked here). */
function sqlitePathFor(databaseUrl: string, cwd: string): string | undefined {
  if (databaseKindOf(databaseUrl) !== 'postgres') return sqlitePathOf(databaseUrl, cwd);
  checkPostgresUrl(databaseUrl);
  return undefined;
}

export function loadConfig(env: Env, cwd = process.cwd()): Config {
  const databaseUrl = raw(env, 'DATABASE_URL') ?? 'sqlite:./data/uploads.db';
  const partSizeBytes = partSize(env, 'PART_SIZE_BYTES', 8 * MiB);
  const streamPartSizeBytes = partSize(env, 'STREAM_PART_SIZE_BYTES', 16 * MiB);
  // Above 5 GiB S3 refuses a single PUT.
  const multipartThresholdBytes = integer(env, 'MULTIPART_THRESHOLD_BYTES', 16 * MiB, 1, 5 * 1024 * MiB);
  const maxBufferBytes = bufferBound(env, { streamPartSizeBytes, multipartThresholdBytes });
  const host = raw(env, 'HOST') ?? '127.0.0.1';
  const security: SecuritySettings = {
    apiToken: apiToken(env),
    allowUnauthenticated: boolean(env, 'ALLOW_UNAUTHENTICATED', false),
    allowedSourceRoots: sourceRoots(env),
    notifyAllowedHosts: notifyAllowedHosts(env),
  };
  const exposure = unauthenticatedExposureProblem(host, security);
  if (exposure !== null) throw new ConfigError('HOST', exposure);
  return {
    port: integer(env, 'PORT', 8000, 0, 65535),
    host,
    databaseUrl,
    sqlitePath: sqlitePathFor(databaseUrl, cwd),
    databasePoolSize: integer(env, 'DATABASE_POOL_SIZE', DEFAULT_POOL_SIZE, 1, 1000),
    ...leaseTimes(env),
    queuePollSeconds: seconds(env, 'QUEUE_POLL_SECONDS', 5, 0.1),
    s3: {
      region: raw(env, 'AWS_REGION') ?? raw(env, 'AWS_DEFAULT_REGION') ?? 'us-east-1',
      endpoint: url(env, 'AWS_ENDPOINT_URL_S3') ?? url(env, 'AWS_ENDPOINT_URL'),
      forcePathStyle: boolean(env, 'S3_FORCE_PATH_STYLE', false),
      checksumMode: oneOf(env, 'S3_CHECKSUM_MODE', ['when_required', 'when_supported'], 'when_required'),
      accessKeyId: raw(env, 'AWS_ACCESS_KEY_ID'),
      secretAccessKey: raw(env, 'AWS_SECRET_ACCESS_KEY'),
      sessionToken: raw(env, 'AWS_SESSION_TOKEN'),
      profile: raw(env, 'AWS_PROFILE'),
    },
    transfer: {
      multipartThresholdBytes,
      partSizeBytes,
      maxConcurrentParts: integer(env, 'MAX_CONCURRENT_PARTS', 4, 1, 64),
      retryMaxAttempts: integer(env, 'RETRY_MAX_ATTEMPTS', 5, 1, 100),
      retryBaseDelayMs: integer(env, 'RETRY_BASE_DELAY_MS', 500, 0, 600_000),
      streamGrowingFiles: boolean(env, 'STREAM_GROWING_FILES', true),
      streamPartSizeBytes,
      appendMode: oneOf(env, 'APPEND_MODE', ['auto', 'off'], 'auto'),
      checksumAlgorithm: oneOf(env, 'CHECKSUM_ALGORITHM', ['md5', 'crc32c', 'sha256'], 'md5'),
      maxBufferBytes,
    },
    maxUploadBytesPerSecond: integer(env, 'MAX_UPLOAD_BYTES_PER_SECOND', 0, 0),
    failedRequeueIntervalSeconds: seconds(env, 'FAILED_REQUEUE_INTERVAL_SECONDS', 3600, 0),
    rescanIntervalSeconds: seconds(env, 'RESCAN_INTERVAL_SECONDS', 60, 0.1),
    settleSeconds: seconds(env, 'SETTLE_SECONDS', 2, 0),
    maxConcurrentFiles: integer(env, 'MAX_CONCURRENT_FILES', 64, 1, 1024),
    s3RequestTimeoutMs: integer(
      env,
      'S3_REQUEST_TIMEOUT_MS',
      DEFAULT_S3_REQUEST_TIMEOUT_MS,
      100,
      24 * 3600_000,
    ),
    logLevel: oneOf(env, 'LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info'),
    logFormat: oneOf(env, 'LOG_FORMAT', ['json', 'pretty'], 'json'),
    security,
    metrics: metricsSettings(env),
    objectDefaults: objectDefaults(env),
  };
}

/**
 * Variables that point the service at an S3 or give it credentials. When none is set, the service
 * talks to AWS itself with whatever the SDK's default chain finds (~/.aws, an instance role), which
 * is rarely what a newcomer meant: main.ts says so once at start-up.
 */
const S3_SETTINGS = [
  'AWS_ENDPOINT_URL_S3',
  'AWS_ENDPOINT_URL',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_PROFILE',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
] as const;

/** True when no variable names an S3 endpoint or credentials (see S3_SETTINGS). */
export function s3SettingsUnset(env: NodeJS.ProcessEnv): boolean {
  return S3_SETTINGS.every((name) => (env[name] ?? '').trim() === '');
}
