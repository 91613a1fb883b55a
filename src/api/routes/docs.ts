// The API described: the OpenAPI document, Swagger UI and ReDoc. Everything is served by the app
// itself, so the pages work without Internet access.
import { createReadStream } from 'node:fs';
import { createRequire } from 'node:module';
import type { SwaggerOptions } from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';

export const OPENAPI_PATH = '/openapi.json';
export const SWAGGER_UI_PATH = '/docs';
export const REDOC_PATH = '/redoc';
const REDOC_BUNDLE_PATH = '/redoc/redoc.standalone.js';

const redocBundleFile = createRequire(import.meta.url).resolve('redoc/bundles/redoc.standalone.js');

const API_DESCRIPTION = `Watches local folders and uploads the files that match a glob pattern to S3, keeping the folder structure in the object keys. Uploads are resumable; all state is kept in a database.

Every error reply is a JSON object \`{error, message}\` (plus \`details\` listing the fields at fault for a \`validation_error\`), where \`error\` is one of the codes listed in the Error schema.`;

/** Options of @fastify/swagger, which must be registered before the routes it describes. */
export function openApiOptions(version: string): SwaggerOptions {
  return {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'S3 folder uploader', version, description: API_DESCRIPTION },
      tags: [
        { name: 'uploads', description: 'Upload requests: a folder watched and uploaded to a bucket.' },
        { name: 'files', description: 'The files of an upload request and where each upload stands.' },
        { name: 'health', description: 'Is the service up, and can it reach its database?' },
      ],
    },
  };
}

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
