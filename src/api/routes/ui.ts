// The dashboard: the page at /ui and its assets, bundled by `npm run build` (scripts/build-ui.mjs)
// into dist/ui/. The page needs no token (it is where a user types it in); every API call it makes
// does. The few files are read into memory once; while they are missing (a service run from its
// sources before any build) each request looks again and is answered 503 dashboard_not_built.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { dashboardNotBuilt, routeNotFound } from '../errors.js';

export const DASHBOARD_PATH = '/ui';

/** dist/ui at the repository's root, reached alike from src/api/routes/ and dist/api/routes/. */
export const DEFAULT_DASHBOARD_DIRECTORY = fileURLToPath(new URL('../../../dist/ui/', import.meta.url));

const PAGE = 'index.html';

/** A route of the dashboard (the page or an asset), given as registered. */
export function isDashboardRoute(route: string): boolean {
  return route === DASHBOARD_PATH || route.startsWith(`${DASHBOARD_PATH}/`);
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

// The page is revalidated at every load (its ETag makes that a 304), so that a new build shows at
// once; the assets carry their content's hash in their names, so a browser may keep them for ever.
const PAGE_CACHING = 'no-cache';
const ASSET_CACHING = 'public, max-age=31536000, immutable';

// The page loads only its own script and style and talks only to this service.
const PAGE_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
};

interface DashboardFile {
  body: Buffer;
  contentType: string;
  etag: string;
  caching: string;
}

interface Dashboard {
  /** The page as `/ui` serves it: with `<base href="ui/">`, so that its relative URLs resolve under /ui/. */
  pageWithoutSlash: DashboardFile;
  /** By name: the page (`index.html`, also served at `/ui/`) and the assets. */
  files: Map<string, DashboardFile>;
}

export interface DashboardRoutesOptions {
  /** Where the built files are; default dist/ui at the repository's root. */
  directory?: string;
}

export const dashboardRoutes: FastifyPluginAsync<DashboardRoutesOptions> = async (app, options) => {
  const directory = options.directory ?? DEFAULT_DASHBOARD_DIRECTORY;
  let dashboard = await readDashboard(directory).catch((error: unknown) => {
    app.log.error({ err: error, route: DASHBOARD_PATH, directory }, 'the dashboard could not be read');
    return undefined;
  });
  if (dashboard === undefined) {
    app.log.warn(
      { route: DASHBOARD_PATH, directory },
      'the dashboard is not built (no index.html): /ui answers 503 until npm run build writes it',
    );
  }
  let loading: Promise<Dashboard | undefined> | undefined;
  const current = async (): Promise<Dashboard> => {
    if (dashboard === undefined) {
      loading ??= readDashboard(directory).finally(() => (loading = undefined));
      dashboard = await loading;
    }
    if (dashboard === undefined) throw dashboardNotBuilt();
    return dashboard;
  };

  const hidden = { schema: { hide: true } };
  app.get(DASHBOARD_PATH, hidden, async (request, reply) =>
    send(request, reply, (await current()).pageWithoutSlash),
  );
  app.get(`${DASHBOARD_PATH}/`, hidden, async (request, reply) =>
    send(request, reply, (await current()).files.get(PAGE)),
  );
  app.get<{ Params: { asset: string } }>(`${DASHBOARD_PATH}/:asset`, hidden, async (request, reply) =>
    send(request, reply, (await current()).files.get(request.params.asset)),
  );
};

function send(request: FastifyRequest, reply: FastifyReply, file: DashboardFile | undefined): FastifyReply {
  // Not callNotFound(): the not-found handler would see that /ui/:asset takes GET and answer 405.
  if (file === undefined) throw routeNotFound(request.method, request.url);
  reply
    .header('etag', file.etag)
    .header('cache-control', file.caching)
    .header('x-content-type-options', 'nosniff');
  if (file.contentType.startsWith('text/html')) reply.headers(PAGE_HEADERS);
  if (matchesEtag(request.headers['if-none-match'], file.etag)) return reply.status(304).send();
  return reply.type(file.contentType).send(file.body);
}

/** If-None-Match holds the ETag (weak comparison, RFC 9110 §13.1.2), or is `*`. */
function matchesEtag(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((tag) => {
    const given = tag.trim().replace(/^W\//, '');
    return given === '*' || given === etag;
  });
}

/**
 * Every servable file of the directory, or undefined when it holds no page: not built yet, or a
 * file vanished as a build replaced the directory (the next request reads it again).
 */
async function readDashboard(directory: string): Promise<Dashboard | undefined> {
  try {
    return await readFiles(directory);
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

async function readFiles(directory: string): Promise<Dashboard | undefined> {
  const names = await readdir(directory);
  if (!names.includes(PAGE)) return undefined;
  const files = new Map<string, DashboardFile>();
  for (const name of names) {
    const contentType = CONTENT_TYPES[path.extname(name)];
    if (contentType === undefined) continue;
    const body = await readFile(path.join(directory, name));
    files.set(name, dashboardFile(body, contentType, name === PAGE ? PAGE_CACHING : ASSET_CACHING));
  }
  const page = files.get(PAGE)!;
  const withBase = page.body.toString('utf8').replace('<head>', '<head>\n    <base href="ui/">');
  return {
    pageWithoutSlash: dashboardFile(Buffer.from(withBase), page.contentType, PAGE_CACHING),
    files,
  };
}

function dashboardFile(body: Buffer, contentType: string, caching: string): DashboardFile {
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
  return { body, contentType, etag, caching };
}

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
