// The dashboard's way to the API: fetch() with the token, JSON in and out. A refusal arrives as an
// ApiError carrying the API's own code, message and field details, so the page shows what curl
// would; a 401 also tells the page to ask for the token.
import type { ErrorBody, Health } from './api-types.js';

const TOKEN_KEY = 's3-folder-uploader.api-token';

/** The token is kept in sessionStorage only: it is gone when the browser session ends. */
export const savedToken = {
  get(): string | null {
    try {
      return sessionStorage.getItem(TOKEN_KEY);
    } catch {
      return null; // storage disabled: the token lasts as long as the page
    }
  },
  set(token: string): void {
    try {
      sessionStorage.setItem(TOKEN_KEY, token);
    } catch {
      // see get()
    }
  },
  forget(): void {
    try {
      sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      // see get()
    }
  },
};

export interface FieldError {
  field: string;
  message: string;
}

export class ApiError extends Error {
  constructor(
    /** 0 when the service did not answer at all. */
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: FieldError[] = [],
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

let onUnauthorized: () => void = () => {};

/** What the page does when the API answers 401: ask for the token. */
export function whenUnauthorized(handler: () => void): void {
  onUnauthorized = handler;
}

/**
 * A path of the API, from the page's base: the page is /ui/ (or /ui, which carries
 * `<base href="ui/">`) and the API one level up, so that a proxy may mount both under a path.
 */
export function apiUrl(path: string): string {
  return new URL(`../${path}`, document.baseURI).href;
}

export function authorizationHeader(token = savedToken.get()): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}

async function send(method: string, path: string, body: unknown, token: string | null): Promise<Response> {
  try {
    return await fetch(apiUrl(path), {
      method,
      headers: {
        accept: 'application/json',
        ...authorizationHeader(token),
        ...(body !== undefined && { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, 'unreachable', 'The service does not answer: is it running?');
  }
}

function parsed(text: string): unknown {
  try {
    return text === '' ? undefined : (JSON.parse(text) as unknown);
  } catch {
    return undefined;
  }
}

function isErrorBody(value: unknown): value is ErrorBody {
  const body = value as Partial<ErrorBody> | undefined;
  return typeof body?.error === 'string' && typeof body.message === 'string';
}

/** Calls the API; resolves with the JSON answer, or throws an ApiError. */
export async function callApi<T>(
  method: string,
  path: string,
  body?: unknown,
  token = savedToken.get(),
): Promise<T> {
  const response = await send(method, path, body, token);
  const value = parsed(await response.text());
  if (response.ok) return value as T;
  if (response.status === 401) onUnauthorized();
  if (isErrorBody(value)) throw new ApiError(response.status, value.error, value.message, value.details);
  throw new ApiError(response.status, 'http_error', `The service answered ${response.status}.`);
}

/** GET /: its body is the health also when it is a 503 (degraded). */
export async function readHealth(): Promise<Health> {
  const response = await send('GET', '', undefined, null);
  const value = parsed(await response.text());
  if ((response.ok || response.status === 503) && !isErrorBody(value)) return value as Health;
  throw new ApiError(response.status, 'http_error', `The health check answered ${response.status}.`);
}

/** `uploads/<id>...`, the id escaped. */
export function uploadPath(uploadId: string, rest = ''): string {
  return `uploads/${encodeURIComponent(uploadId)}${rest}`;
}
