// The service's HTTP API, as the CLI uses it: one method per operation, typed by the API's own
// schemas (type-only imports: nothing of the service is loaded). Failures are two errors: the
// service answered with an error, or it could not be reached.
import type {
  CreateUploadBody,
  CreatedUploadReply,
  FileListReply,
  ListFilesQuery,
  ListUploadsQuery,
  RescanReply,
  RetryReply,
  SettingsReply,
  UpdateSettingsBody,
  UploadDetailsReply,
  UploadReply,
  UploadSummaryReply,
  VerifyReply,
} from '../api/schemas.js';

/** Long enough for a busy service, short enough that a stuck one does not hang a script. */
const REQUEST_TIMEOUT_MS = 30_000;

/** The service answered with an error: its HTTP status and the API's `{error, message}`. */
export class ApiRequestError extends Error {
  constructor(
    readonly status: number,
    /** The API's error code (`upload_not_found`...), or `http_<status>` when the body had none. */
    readonly code: string,
    message: string,
    /** Each field at fault, for a `validation_error`. */
    readonly details: readonly { field: string; message: string }[] = [],
  ) {
    super(message);
    this.name = 'ApiRequestError';
  }
}

/** No answer from the service: connection refused, unknown host, timeout, or not this API. */
export class ServiceUnreachableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ServiceUnreachableError';
  }
}

export interface ApiClientOptions {
  /** Where the API is, e.g. http://127.0.0.1:8000 (a path, behind a reverse proxy, is kept). */
  baseUrl: URL;
  /** Sent as `Authorization: Bearer <token>` when set. */
  token?: string;
}

interface RequestOptions {
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  /** undefined: REQUEST_TIMEOUT_MS; null: none (verify checks every file before it answers). */
  timeoutMs?: number | null;
}

export class ApiClient {
  private readonly base: URL;

  constructor(private readonly options: ApiClientOptions) {
    // With a trailing slash, relative paths resolve under it: http://host/uploader/ + uploads.
    this.base = new URL(
      options.baseUrl.href.endsWith('/') ? options.baseUrl.href : `${options.baseUrl.href}/`,
    );
  }

  get baseUrl(): string {
    return this.options.baseUrl.href;
  }

  listUploads(status?: ListUploadsQuery['status']): Promise<UploadSummaryReply[]> {
    return this.request('GET', 'uploads', { query: { status } });
  }

  getUpload(uploadId: string): Promise<UploadDetailsReply> {
    return this.request('GET', uploadPath(uploadId));
  }

  listFiles(uploadId: string, query: ListFilesQuery): Promise<FileListReply> {
    return this.request('GET', `${uploadPath(uploadId)}/files`, { query: { ...query } });
  }

  createUpload(body: CreateUploadBody): Promise<CreatedUploadReply> {
    return this.request('POST', 'uploads', { body });
  }

  cancelUpload(uploadId: string): Promise<UploadReply> {
    return this.request('DELETE', uploadPath(uploadId));
  }

  retryFailed(uploadId: string): Promise<RetryReply> {
    return this.request('POST', `${uploadPath(uploadId)}/retry`);
  }

  rescan(uploadId: string): Promise<RescanReply> {
    return this.request('POST', `${uploadPath(uploadId)}/rescan`);
  }

  verify(uploadId: string): Promise<VerifyReply> {
    return this.request('POST', `${uploadPath(uploadId)}/verify`, { timeoutMs: null });
  }

  getSettings(): Promise<SettingsReply> {
    return this.request('GET', 'settings');
  }

  updateSettings(body: UpdateSettingsBody): Promise<SettingsReply> {
    return this.request('PATCH', 'settings', { body });
  }

  private async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const url = new URL(path, this.base);
    for (const [name, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, String(value));
    }
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    const timeoutMs = options.timeoutMs === undefined ? REQUEST_TIMEOUT_MS : options.timeoutMs;

    let response: Response;
    let text: string;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        signal: timeoutMs === null ? undefined : AbortSignal.timeout(timeoutMs),
      });
      text = await response.text();
    } catch (error) {
      throw new ServiceUnreachableError(
        `cannot reach the service at ${this.baseUrl}: ${networkReason(error, timeoutMs)}`,
        { cause: error },
      );
    }
    const body = parseJson(text);
    if (!response.ok) throw errorOf(response, body);
    if (body === undefined) {
      throw new ServiceUnreachableError(
        `${this.baseUrl} answered ${method} /${path} with something that is not JSON: is it the s3-folder-uploader API?`,
      );
    }
    return body as T;
  }
}

function uploadPath(uploadId: string): string {
  return `uploads/${encodeURIComponent(uploadId)}`;
}

function parseJson(text: string): unknown {
  try {
    return text === '' ? undefined : (JSON.parse(text) as unknown);
  } catch {
    return undefined;
  }
}

function errorOf(response: Response, body: unknown): ApiRequestError {
  if (typeof body === 'object' && body !== null) {
    const { error, message, details } = body as { error?: unknown; message?: unknown; details?: unknown };
    if (typeof error === 'string' && typeof message === 'string') {
      return new ApiRequestError(response.status, error, message, Array.isArray(details) ? details : []);
    }
  }
  const reason = response.statusText ? `${response.status} ${response.statusText}` : String(response.status);
  return new ApiRequestError(
    response.status,
    `http_${response.status}`,
    `the service answered HTTP ${reason}`,
  );
}

/** Why fetch failed, in words: undici puts the system error (ECONNREFUSED...) in `cause`. */
function networkReason(error: unknown, timeoutMs: number | null): string {
  if (error instanceof Error && error.name === 'TimeoutError') {
    return `no answer within ${(timeoutMs ?? 0) / 1000} s`;
  }
  const cause =
    error instanceof Error ? (error.cause as { code?: unknown; message?: unknown } | undefined) : undefined;
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  const known: Record<string, string> = {
    ECONNREFUSED: 'connection refused (is the service running? s3-folder-uploader serve starts it)',
    ENOTFOUND: 'host not found',
    EAI_AGAIN: 'the host name could not be resolved (DNS)',
    ECONNRESET: 'the connection was reset',
    ETIMEDOUT: 'the connection timed out',
    EHOSTUNREACH: 'host unreachable',
    ENETUNREACH: 'network unreachable',
    UND_ERR_CONNECT_TIMEOUT: 'the connection timed out',
    UND_ERR_SOCKET: 'the connection closed before an answer',
  };
  if (code !== undefined) return `${known[code] ?? String(cause?.message ?? 'network error')} (${code})`;
  if (typeof cause?.message === 'string') return cause.message;
  return error instanceof Error ? error.message : String(error);
}
