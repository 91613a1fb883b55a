// The API token. When the service has one, every route but the health check, the documentation and
// the dashboard's page and assets (whose API calls carry the token) needs `Authorization: Bearer
// <token>`; anything else is a 401 with a `WWW-Authenticate` challenge (RFC 6750). Checked on
// onRequest, before a body is read, so an unknown client costs no parsing.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { unauthorized } from './errors.js';
import { isDocumentationRoute } from './routes/docs.js';
import { isDashboardRoute } from './routes/ui.js';

export const AUTH_REALM = 's3-folder-uploader';

const BEARER = /^Bearer +([^\s]+) *$/i;

/**
 * Registers the check on `app`: call it before the routes are registered. `publicRoutes`: routes
 * read without the token besides the health check, the documentation and the dashboard (/metrics
 * with METRICS_PUBLIC=true).
 */
export function requireApiToken(
  app: FastifyInstance,
  apiToken: string,
  publicRoutes: readonly string[] = [],
): void {
  const expected = digestOf(apiToken);
  app.addHook('onRequest', async (request, reply) => {
    if (isPublic(request, publicRoutes)) return;
    const given = bearerTokenOf(request.headers.authorization);
    if (given !== undefined && timingSafeEqual(digestOf(given), expected)) return;
    reply.header('www-authenticate', challenge(given !== undefined));
    throw unauthorized(given !== undefined);
  });
}

/**
 * The health check, the documentation, the dashboard and `publicRoutes`, read with GET (or HEAD).
 * Decided on the route that matched, not on the URL's text, so no spelling of a path reaches a
 * protected handler; a request that matches no route needs the token too (a 401 rather than a 404
 * tells a stranger nothing).
 */
function isPublic(request: FastifyRequest, publicRoutes: readonly string[]): boolean {
  if (request.method !== 'GET' && request.method !== 'HEAD') return false;
  const route = request.routeOptions.url;
  return (
    route !== undefined &&
    (route === '/' || isDocumentationRoute(route) || isDashboardRoute(route) || publicRoutes.includes(route))
  );
}

/** The token of an `Authorization: Bearer <token>` header; undefined when there is none or another scheme. */
function bearerTokenOf(header: string | undefined): string | undefined {
  return header === undefined ? undefined : BEARER.exec(header)?.[1];
}

/**
 * Both sides are hashed first, so that timingSafeEqual compares equal lengths and the time taken
 * says nothing about the token, not even its length.
 */
function digestOf(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

function challenge(tokenGiven: boolean): string {
  const realm = `Bearer realm="${AUTH_REALM}"`;
  return tokenGiven ? `${realm}, error="invalid_token", error_description="The API token is wrong"` : realm;
}
