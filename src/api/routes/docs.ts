// The API described: the OpenAPI document, Swagger UI and ReDoc. Everything is served by the app
// itself, so the pages work without Internet access.
import { createReadStream } from 'node:fs';
import { createRequire } from 'node:module';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';

export const OPENAPI_PATH = '/openapi.json';
export const SWAGGER_UI_PATH = '/docs';
export const REDOC_PATH = '/redoc';
const REDOC_BUNDLE_PATH = '/redoc/redoc.standalone.js';

/** A route of the documentation (a page, its assets, the OpenAPI document), given as registered. */
export function isDocumentationRoute(route: string): boolean {
  return (
    route === OPENAPI_PATH ||
    [SWAGGER_UI_PATH, REDOC_PATH].some((prefix) => route === prefix || route.startsWith(`${prefix}/`))
  );
}

const redocBundleFile = createRequire(import.meta.url).resolve('redoc/bundles/redoc.standalone.js');

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
