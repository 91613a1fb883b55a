// Every error leaves as `{error, message, details?}`. AppErrors keep their status; client errors
// raised by Fastify itself (recognised by their FST_ codes, an allow-list) are translated; anything
// else is a 500 whose cause is logged with the request and never sent.
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  AppError,
  DatabaseUnavailableError,
  badRequest,
  databaseUnavailable,
  headersTooLarge,
  internalError,
  invalidJson,
  payloadTooLarge,
  requestTimeout,
  routeNotFound,
  unsupportedMediaType,
  validationFailed,
} from '../domain/errors.js';
import { discardRestOfBody } from './oversized-body.js';
import type { ErrorReply } from './schemas.js';
import { describeFailure } from './validation.js';

export function errorBody(error: AppError): ErrorReply {
  const body: ErrorReply = { error: error.code, message: error.message };
  if (error.details) body.details = error.details;
  return body;
}

function sendError(reply: FastifyReply, error: AppError): FastifyReply {
  return reply.status(error.httpStatus).type('application/json; charset=utf-8').send(errorBody(error));
}

export function installErrorHandling(app: FastifyInstance): void {
  const bodyLimit = app.initialConfig.bodyLimit ?? 1024 * 1024;

  app.setErrorHandler((error: unknown, request, reply) => {
    const known =
      error instanceof AppError
        ? error
        : (fromFrameworkError(error, request, bodyLimit) ?? fromStoreError(error));
    if (known) {
      if (isFrameworkError(error) && error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
        discardRestOfBody(request, reply);
      }
      // A 503 is the service's own trouble (its database, S3): the operator must see it and why.
      if (known.httpStatus >= 500) request.log.warn({ err: error, code: known.code }, known.message);
      else request.log.info({ code: known.code, status: known.httpStatus }, known.message);
      return sendError(reply, known);
    }
    request.log.error(
      { err: error, method: request.method, url: request.url, route: request.routeOptions.url },
      'request failed with an unexpected error',
    );
    return sendError(reply, internalError(request.id));
  });

  app.setNotFoundHandler((request, reply) => sendError(reply, routeNotFound(request.method, request.url)));
}

/** A database that cannot be used right now (full or read-only disk, I/O error, lock) is a 503, not a bug. */
function fromStoreError(error: unknown): AppError | undefined {
  return error instanceof DatabaseUnavailableError ? databaseUnavailable(error.reason) : undefined;
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
): AppError | undefined {
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
  const appError =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? requestTimeout()
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? headersTooLarge()
        : badRequest('The HTTP request is malformed.');
  const body = JSON.stringify(errorBody(appError));
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${appError.httpStatus} ${STATUS_CODES[appError.httpStatus] ?? 'Error'}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}
