// The API described: the OpenAPI document, Swagger UI and ReDoc. Everything is served by the app
// itself, so the pages work without Internet access.
import { createReadStream } from 'node:fs';
import { createRequire } from 'node:module';
import type { SwaggerOptions, SwaggerTransform } from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifySchema } from 'fastify';
import { errorReplies } from '../schemas.js';

export const OPENAPI_PATH = '/openapi.json';
export const SWAGGER_UI_PATH = '/docs';
export const REDOC_PATH = '/redoc';
const REDOC_BUNDLE_PATH = '/redoc/redoc.standalone.js';
const BEARER_SCHEME = 'bearerAuth';

/** A route of the documentation (a page, its assets, the OpenAPI document), given as registered. */
export function isDocumentationRoute(route: string): boolean {
  return (
    route === OPENAPI_PATH ||
    [SWAGGER_UI_PATH, REDOC_PATH].some((prefix) => route === prefix || route.startsWith(`${prefix}/`))
  );
}

const redocBundleFile = createRequire(import.meta.url).resolve('redoc/bundles/redoc.standalone.js');

const API_DESCRIPTION = `Watches local folders and uploads the files that match a glob pattern to S3, keeping the folder structure in the object keys. Uploads are resumable; all state is kept in a database.

Every error reply is a JSON object \`{error, message}\` (plus \`details\` listing the fields at fault for a \`validation_error\`), where \`error\` is one of the codes listed in the Error schema.`;

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
      info: { title: 'S3 folder uploader', version, description },
      tags: [
        { name: 'uploads', description: 'Upload requests: a folder watched and uploaded to a bucket.' },
        { name: 'files', description: 'The files of an upload request and where each upload stands.' },
        { name: 'health', description: 'Is the service up, and can it reach its database?' },
      ],
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
    ...(bearerAuth && { transform: withBearerAuth }),
  };
}

/** The health check is open to all (`security: []`); every other operation may answer 401. */
const withBearerAuth: SwaggerTransform = ({ schema, url }) => {
  // A route registered without a schema has none here, whatever the type says.
  const given: FastifySchema = (schema as FastifySchema | undefined) ?? {};
  if (url === '/') return { schema: { ...given, security: [] } as FastifySchema, url };
  const response = { ...(given.response as Record<number, unknown> | undefined), ...errorReplies(401) };
  return { schema: { ...given, response }, url };
};

// Relative URLs, so that the page also works behind a proxy that mounts the API under a path.
const REDOC_PAGE = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>S3 folder uploader API</title>
    <style>body { margin: 0; }</style>
  </head>
  <body>
    <redoc spec-url=".${OPENAPI_PATH}"></redoc>
    <script src=".${REDOC_BUNDLE_PATH}"></script>
  </body>
</html>
`;

export const docsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  await app.register(swaggerUi, { routePrefix: SWAGGER_UI_PATH });

  app.get(OPENAPI_PATH, { schema: { hide: true } }, async () => app.swagger());

  app.get(REDOC_PATH, { schema: { hide: true } }, async (_request, reply) =>
    reply.type('text/html; charset=utf-8').send(REDOC_PAGE),
  );

  app.get(REDOC_BUNDLE_PATH, { schema: { hide: true } }, async (_request, reply) =>
    reply
      .type('text/javascript; charset=utf-8')
      .header('cache-control', 'public, max-age=86400')
      .send(createReadStream(redocBundleFile)),
  );
};
