// The access log: one line per request, written when its response is finished, or when the client
// went away first; a streamed response gets its line when it ends. The line is at debug level for
// an answer below 400, warn for a 4xx, error for a 5xx, and info for a request the client left
// before any answer. It carries the API error code of a refusal, and for a 5xx its cause with the
// stack, so that the error handler logs nothing of its own: one line per request, at most.
//
// Fastify's own request lines ("incoming request", "request completed", its error lines) are
// turned off by the log controller below, which Fastify calls for every request, those refused
// before routing (a malformed URL) included: that is where each request's line is set up.
import { performance } from 'node:perf_hooks';
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';
import { levels } from 'pino';

/** What the error handler knows of a failed request, for its access line. */
export interface RequestFailure {
  /** The API error code sent to the client (`error` in the body). */
  code?: string;
  /** What went wrong on the server; logged, never sent. */
  cause?: unknown;
}

const failures = new WeakMap<FastifyRequest, RequestFailure>();

/** Records a failure for the request's access line; a later note adds to an earlier one. */
export function noteRequestFailure(request: FastifyRequest, failure: RequestFailure): void {
  failures.set(request, { ...failures.get(request), ...failure });
}

/** Fastify's request logging, replaced by one access line per request. */
export class AccessLogController extends LogController {
  constructor() {
    super({ disableRequestLogging: true });
  }

  override incomingRequest(request: FastifyRequest, reply: FastifyReply): void {
    logWhenDone(request, reply);
  }

  /** An error from a streamed body after its headers went out: the access line says it. */
  override streamError(error: Error, request: FastifyRequest): void {
    // A premature close is the client going away, which the access line says anyway.
    if ((error as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE') return;
    noteRequestFailure(request, { cause: error });
  }

  override serializerError(error: Error, request: FastifyRequest): void {
    noteRequestFailure(request, { cause: error });
  }

  override writeHeadError(error: Error, request: FastifyRequest): void {
    noteRequestFailure(request, { cause: error });
  }
}

type AccessLevel = 'debug' | 'info' | 'warn' | 'error';

function logWhenDone(request: FastifyRequest, reply: FastifyReply): void {
  const startedAt = performance.now();
  const response = reply.raw;
  let written = false;
  const write = (aborted: boolean): void => {
    if (written) return;
    written = true;
    const status = response.headersSent ? response.statusCode : undefined;
    const level = levelOf(status);
    if (!enabled(request.log.level, level)) return; // at the default level, a success costs nothing more
    const failure = failures.get(request);
    const line = {
      method: request.method,
      url: loggableUrl(request.url),
      status,
      durationMs: Math.round((performance.now() - startedAt) * 10) / 10,
      bytes: aborted ? undefined : bodyBytes(request, reply),
      remoteAddress: request.ip,
      error: failure?.code,
      // The cause of a 4xx is the client's mistake, which the code says.
      err: status !== undefined && status >= 500 ? failure?.cause : undefined,
      aborted: aborted || undefined,
    };
    request.log[level](line, 'http request');
  };
  response.once('finish', () => write(false));
  // After 'finish' this does nothing; before it, the connection closed under an unfinished answer.
  response.once('close', () => write(true));
}

/** Whether a logger at `threshold` writes lines at `level` ('silent' writes none). */
function enabled(threshold: string, level: AccessLevel): boolean {
  return (levels.values[level] ?? 0) >= (levels.values[threshold] ?? Infinity);
}

function levelOf(status: number | undefined): AccessLevel {
  if (status === undefined) return 'info';
  if (status >= 500) return 'error';
  if (status >= 400) return 'warn';
  return 'debug';
}

/** The size of the body sent, when the answer declared it (not for a streamed one). */
function bodyBytes(request: FastifyRequest, reply: FastifyReply): number | undefined {
  if (request.method === 'HEAD') return 0;
  const length = Number(reply.getHeader('content-length'));
  return Number.isSafeInteger(length) && length >= 0 ? length : undefined;
}

/** Query parameters whose value is masked: a client may put a token or a signature there. */
const SECRET_PARAMETER = /token|secret|key|password|passwd|signature|credential|auth|session/i;
const MASK = '[redacted]';
/** A longer URL is cut: a line stays readable whatever a client sends. */
export const MAX_LOGGED_URL_LENGTH = 1024;

/**
 * The URL as a log line may show it: the values of query parameters that could hold a secret
 * masked, the user information of an absolute URL (`GET http://user:pass@host/`) too, and no
 * longer than MAX_LOGGED_URL_LENGTH.
 */
export function loggableUrl(url: string): string {
  const queryAt = url.indexOf('?');
  const path = queryAt === -1 ? url : url.slice(0, queryAt);
  let loggable = path.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, `$1${MASK}@`);
  if (queryAt !== -1) {
    const parameters = url
      .slice(queryAt + 1)
      .split('&')
      .map((parameter) => {
        const equalsAt = parameter.indexOf('=');
        const name = equalsAt === -1 ? parameter : parameter.slice(0, equalsAt);
        return SECRET_PARAMETER.test(decodedName(name)) ? `${name}=${MASK}` : parameter;
      });
    loggable += `?${parameters.join('&')}`;
  }
  return loggable.length > MAX_LOGGED_URL_LENGTH ? `${loggable.slice(0, MAX_LOGGED_URL_LENGTH)}…` : loggable;
}

function decodedName(name: string): string {
  try {
    return decodeURIComponent(name.replaceAll('+', ' '));
  } catch {
    return name;
  }
}
