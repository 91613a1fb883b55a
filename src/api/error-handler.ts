// Every error leaves as `{error, message, details?}`. ApiErrors keep their status, DomainErrors get
// the status of their code; client errors raised by Fastify itself (recognised by their FST_ codes,
// an allow-list) are translated; anything else is a 500 whose cause is never sent. Nothing is
// logged here: the request's access line carries the error code, and the cause of a 5xx.
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DomainError } from '../domain/errors.js';
import {
  ApiError,
  badRequest,
  fromDomainError,
  headersTooLarge,
  internalError,
  invalidJson,
  methodNotAllowed,
  payloadTooLarge,
  requestTimeout,
  routeNotFound,
  unsupportedMediaType,
  validationFailed,
} from './errors.js';
import { noteRequestFailure } from './access-log.js';
import { recordRouteMethods } from './route-methods.js';
import { discardRestOfBody } from './oversized-body.js';
import type { ErrorReply } from './schemas.js';
import { describeFailure } from './validation.js';

export function errorBody(error: ApiError): ErrorReply {
  const body: ErrorReply = { error: error.code, message: error.message };
  if (error.details) body.details = error.details;
  return body;
}

/** Sends the error; its code, and what caused it, go to the request's access line. */
function sendError(reply: FastifyReply, error: ApiError, cause?: unknown): FastifyReply {
  noteRequestFailure(reply.request, { code: error.code, cause });
  return reply.status(error.httpStatus).type('application/json; charset=utf-8').send(errorBody(error));
}

export function installErrorHandling(app: FastifyInstance): void {
  const bodyLimit = app.initialConfig.bodyLimit ?? 1024 * 1024;
  const methodsOf = recordRouteMethods(app);

  app.setErrorHandler((error: unknown, request, reply) => {
    const known =
      error instanceof ApiError
        ? error
        : error instanceof DomainError
          ? fromDomainError(error)
          : fromFrameworkError(error, request, bodyLimit);
    if (known) {
      if (isFrameworkError(error) && error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
        discardRestOfBody(request, reply);
      }
      // A 503 is the service's own trouble (its database, S3): its access line says why.
      return sendError(reply, known, error);
    }
    return sendError(reply, internalError(request.id), error);
  });

  // A path that some route takes, with another method, is a 405 that says which methods it takes.
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?', 1)[0] ?? request.url;
    const allowed = methodsOf(path);
    if (allowed.length === 0) return sendError(reply, routeNotFound(request.method, request.url));
    reply.header('allow', allowed.join(', '));
    return sendError(reply, methodNotAllowed(request.method, path, allowed));
  });
}

function isFrameworkError(error: unknown): error is FastifyError {
  return (
    error instanceof Error &&
    typeof (error as FastifyError).code === 'string' &&
    (error as FastifyError).code.startsWith('FST_')
  );
}

function fromFrameworkError(
  error: unknown,
  request: FastifyRequest,
  bodyLimit: number,
): ApiError | undefined {
  if (!isFrameworkError(error)) return undefined;
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return invalidJson();
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return payloadTooLarge(bodyLimit);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return unsupportedMediaType(request.headers['content-type']);
    case 'FST_ERR_NOT_FOUND':
      return routeNotFound(request.method, request.url);
    case 'FST_ERR_VALIDATION':
      // Only when a schema was compiled by another validator than ours.
      return error.validation
        ? describeFailure({}, error.validationContext ?? 'body', error.validation)
        : validationFailed(error.message, []);
  }
  const status = error.statusCode ?? 500;
  return status >= 400 && status < 500 ? badRequest(error.message) : undefined;
}

/** For the errors Fastify reports before routing (a malformed URL): same shape as every other error. */
export function frameworkErrorHandler(
  error: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
): void {
  const known = fromFrameworkError(error, request, 0) ?? badRequest('The request is malformed.');
  void sendError(reply, known);
}

/** HTTP parse errors happen before there is a request to reply to: answer on the socket itself. */
export function clientErrorHandler(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const apiError =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? requestTimeout()
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? headersTooLarge()
        : badRequest('The HTTP request is malformed.');
  const body = JSON.stringify(errorBody(apiError));
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${apiError.httpStatus} ${STATUS_CODES[apiError.httpStatus] ?? 'Error'}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}
