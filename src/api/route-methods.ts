// Which methods each path takes, so that a known path asked with another method is a 405 naming
// them (RFC 9110 §15.5.6) rather than a 404. The router answers only "no route for this method and
// path"; the routes are recorded as they are added, and a path is matched against their patterns.
import type { FastifyInstance } from 'fastify';

/** The order the `Allow` header lists methods in. */
const METHOD_ORDER = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

interface RoutePattern {
  matches: RegExp;
  methods: Set<string>;
}

/**
 * Records every route added to `app` from now on (call it before the routes are registered), and
 * returns what tells the methods a path (without its query) takes: none when no route has it.
 */
export function recordRouteMethods(app: FastifyInstance): (path: string) => string[] {
  const patterns = new Map<string, RoutePattern>();
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    let pattern = patterns.get(route.url);
    if (!pattern) {
      pattern = { matches: patternRegex(route.url), methods: new Set() };
      patterns.set(route.url, pattern);
    }
    for (const method of methods) pattern.methods.add(method.toUpperCase());
  });
  return (path) => {
    const allowed = new Set<string>();
    for (const { matches, methods } of patterns.values()) {
      if (matches.test(path)) for (const method of methods) allowed.add(method);
    }
    return [...allowed].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  };
}

/** `/uploads/:upload_id/files` → /^\/uploads\/[^/]+\/files$/; a trailing `*` takes the rest of the path. */
function patternRegex(url: string): RegExp {
  const source = url
    .split('/')
    .map((segment) => {
      if (segment.startsWith(':')) return '[^/]+';
      if (segment === '*') return '.*';
      return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  return new RegExp(`^${source}$`);
}

function rank(method: string): number {
  const index = METHOD_ORDER.indexOf(method);
  return index === -1 ? METHOD_ORDER.length : index;
}
