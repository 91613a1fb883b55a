// The OpenAPI document, as @fastify/swagger writes it from the routes' schemas, completed here:
// the named shapes become `#/components/schemas/<$id>`, and every operation gets its error replies
// from the table of operations.ts, one per status, each with an example of each code it may carry.
import type { SwaggerOptions, SwaggerTransformObject } from '@fastify/swagger';
import { AUTH_REALM } from './auth.js';
import { ERROR_EXAMPLES } from './error-examples.js';
import { ERROR_CATALOGUE, type ErrorCode } from './errors.js';
import { errorCodesOf, isOperationId } from './operations.js';
import { errorBody } from './error-handler.js';

const BEARER_SCHEME = 'bearerAuth';
const ERROR_SCHEMA_REF = '#/components/schemas/Error';

/** The service has no LICENSE file and package.json names no license: all rights are reserved. */
const LICENSE = { name: 'Proprietary' };

const API_DESCRIPTION = `Watches local folders and uploads the files that match a glob pattern to S3, keeping the folder structure in the object keys. Uploads are resumable; all state is kept in a database.

Every error reply is a JSON object \`{error, message}\` (plus \`details\` listing the fields at fault for a \`validation_error\` and the \`invalid_*\` errors), where \`error\` is one of the codes listed in the Error schema. Each operation lists the codes it may answer, by status. Besides those, any request may be answered 404 \`route_not_found\` (no such path), 405 \`method_not_allowed\` (the path exists with other methods, listed in the \`Allow\` header), 408 \`request_timeout\` or 431 \`headers_too_large\`.`;

const AUTH_DESCRIPTION = `

This service has an API token: every route but \`GET /\` and the documentation needs the header \`Authorization: Bearer <token>\` (in Swagger UI: Authorize), and answers 401 \`unauthorized\` without it.`;

export interface OpenApiSettings {
  version: string;
  /** The service has an API token: the document declares the bearer scheme and the 401s. */
  bearerAuth: boolean;
}

/**
 * Options of @fastify/swagger, which must be registered before the routes it describes. The bearer
 * scheme is declared only when the service has a token, so that the document describes the
 * service as it runs: without a token, no Authorize button and no 401 that never comes.
 */
export function openApiOptions({ version, bearerAuth }: OpenApiSettings): SwaggerOptions {
  const description = bearerAuth ? API_DESCRIPTION + AUTH_DESCRIPTION : API_DESCRIPTION;
  return {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'S3 folder uploader', version, description, license: LICENSE },
      servers: [{ url: '/', description: 'This service, where it serves this document.' }],
      tags: [
        { name: 'uploads', description: 'Uploads: a folder watched and uploaded to a bucket.' },
        { name: 'files', description: 'The files of an upload and where each upload stands.' },
        { name: 'health', description: 'Is the service up, and can it reach its database?' },
        {
          name: 'instances',
          description: 'The running instances of the service that share the database, and what each uploads.',
        },
        { name: 'settings', description: 'Settings changed while the service runs: the bandwidth limit.' },
        { name: 'events', description: 'What happens, live: the event stream.' },
      ],
      // Without a token every operation is open to all: said once, for the whole document.
      security: [],
      ...(bearerAuth && {
        components: {
          securitySchemes: {
            [BEARER_SCHEME]: {
              type: 'http',
              scheme: 'bearer',
              description: 'The API_TOKEN the service was started with.',
            },
          },
        },
        security: [{ [BEARER_SCHEME]: [] }],
      }),
    },
    // A named shape is a component under its own name, rather than `def-N`.
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) =>
        typeof json.$id === 'string' ? json.$id : `def-${i}`,
    },
    transformObject: withErrorReplies(bearerAuth),
  };
}

interface Operation {
  operationId?: string;
  responses?: Record<string, unknown>;
  security?: unknown[];
}

/** Adds to every operation the error replies of its codes, and opens the public ones to all. */
function withErrorReplies(bearerAuth: boolean): SwaggerTransformObject {
  return (documentObject) => {
    if (!('openapiObject' in documentObject)) return documentObject.swaggerObject;
    const document = documentObject.openapiObject;
    const paths = (document.paths ?? {}) as Record<string, Record<string, Operation>>;
    for (const [path, methods] of Object.entries(paths)) {
      for (const [method, operation] of Object.entries(methods)) {
        const { operationId } = operation;
        if (!isOperationId(operationId)) {
          throw new Error(`${method.toUpperCase()} ${path} has no operationId of operations.ts`);
        }
        const codes = errorCodesOf(operationId, bearerAuth);
        operation.responses = { ...operation.responses, ...errorReplies(codes) };
        if (bearerAuth && !codes.includes('unauthorized')) operation.security = [];
      }
    }
    return document;
  };
}

/** One reply per status: the Error schema, the codes it may carry, and an example of each. */
function errorReplies(codes: readonly ErrorCode[]): Record<string, unknown> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) {
    const { status } = ERROR_CATALOGUE[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const replies: Record<string, unknown> = {};
  for (const [status, ofStatus] of [...byStatus].sort(([a], [b]) => a - b)) {
    replies[String(status)] = {
      description: ofStatus.map((code) => `\`${code}\`: ${ERROR_CATALOGUE[code].description}`).join('\n\n'),
      ...(ofStatus.includes('unauthorized') && {
        headers: {
          'WWW-Authenticate': {
            description: 'The Bearer challenge (RFC 6750).',
            schema: { type: 'string', example: `Bearer realm="${AUTH_REALM}"` },
          },
        },
      }),
      content: {
        'application/json': {
          schema: { $ref: ERROR_SCHEMA_REF },
          examples: Object.fromEntries(
            ofStatus.map((code) => [code, { summary: code, value: errorBody(ERROR_EXAMPLES[code]) }]),
          ),
        },
      },
    };
  }
  return replies;
}
