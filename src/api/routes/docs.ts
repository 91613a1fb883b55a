// The API described: the OpenAPI document, Swagger UI and ReDoc. Everything is served by the app
// itself, so the pages work without Internet access.
import { createReadStream, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';

export const OPENAPI_PATH = '/openapi.json';
export const SWAGGER_UI_PATH = '/docs';
export const REDOC_PATH = '/redoc';
const REDOC_BUNDLE_PATH = '/redoc/redoc.standalone.js';
const REDOC_LICENSE_PATH = '/redoc/redoc.standalone.js.LICENSE.txt';

/** A route of the documentation (a page, its assets, the OpenAPI document), given as registered. */
export function isDocumentationRoute(route: string): boolean {
  return (
    route === OPENAPI_PATH ||
    [SWAGGER_UI_PATH, REDOC_PATH].some((prefix) => route === prefix || route.startsWith(`${prefix}/`))
  );
}

/**
 * ReDoc's standalone bundle: copied next to the built service by `npm run build` (dist/vendor/redoc),
 * or, when the service runs from its sources, taken from the redoc development dependency.
 */
function findRedocBundle(): string | undefined {
  const copied = fileURLToPath(new URL('../../vendor/redoc/redoc.standalone.js', import.meta.url));
  if (existsSync(copied)) return copied;
  try {
    return createRequire(import.meta.url).resolve('redoc/bundles/redoc.standalone.js');
  } catch {
    return undefined;
  }
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
  const redocBundleFile = findRedocBundle();
  if (redocBundleFile === undefined) {
    app.log.warn(
      { route: REDOC_PATH },
      "ReDoc's bundle is missing (neither dist/vendor/redoc from npm run build nor the redoc package): /redoc cannot show the API",
    );
  }

  app.get(OPENAPI_PATH, { schema: { hide: true } }, async () => app.swagger());

  app.get(REDOC_PATH, { schema: { hide: true } }, async (_request, reply) =>
    reply.type('text/html; charset=utf-8').send(REDOC_PAGE),
  );

  app.get(REDOC_BUNDLE_PATH, { schema: { hide: true } }, async (_request, reply) => {
    if (redocBundleFile === undefined) return reply.callNotFound();
    return reply
      .type('text/javascript; charset=utf-8')
      .header('cache-control', 'public, max-age=86400')
      .send(createReadStream(redocBundleFile));
  });

  // The bundle's first line points its readers here for the licenses of what it holds.
  app.get(REDOC_LICENSE_PATH, { schema: { hide: true } }, async (_request, reply) => {
    if (redocBundleFile === undefined) return reply.callNotFound();
    return reply.type('text/plain; charset=utf-8').send(createReadStream(`${redocBundleFile}.LICENSE.txt`));
  });
};
