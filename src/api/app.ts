// The HTTP app, built by a factory that does not listen, so that tests can inject() requests.
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { MIMEType } from 'node:util';
import { unsupportedCharset } from './errors.js';
import type { UploadService } from '../service/upload-service.js';
import type { Logger } from '../logger.js';
import { SettingsService } from '../service/settings.js';
import { AccessLogController } from './access-log.js';
import { requireApiToken } from './auth.js';
import { clientErrorHandler, frameworkErrorHandler, installErrorHandling } from './error-handler.js';
import { NAMED_SCHEMAS } from './schemas.js';
import { openApiOptions } from './openapi.js';
import type { EventSource } from '../domain/events.js';
import { DEFAULT_EVENT_STREAM_SETTINGS, EventStream, type EventStreamSettings } from './event-stream.js';
import { docsRoutes } from './routes/docs.js';
import { eventRoutes } from './routes/events.js';
import { fileRoutes } from './routes/files.js';
import { healthRoutes } from './routes/health.js';
import { instanceRoutes } from './routes/instances.js';
import { METRICS_PATH, metricsRoutes, type MetricsExposition } from './routes/metrics.js';
import { settingsRoutes } from './routes/settings.js';
import { dashboardRoutes } from './routes/ui.js';
import { uploadRoutes } from './routes/uploads.js';
import { validatorCompiler } from './validation.js';

export interface AppDeps {
  service: UploadService;
  /** false: no logging (tests). */
  logger: Logger | false;
  version: string;
  /** When set, every route but `GET /` and the documentation needs `Authorization: Bearer <apiToken>`. */
  apiToken?: string;
  /** What /settings reads and changes; default: settings of its own, with no limit, steering nothing. */
  settings?: SettingsService;
  /** Served at GET /metrics, without the token when `public`; none: no /metrics route (METRICS_ENABLED=false). */
  metrics?: { exposition: MetricsExposition; public: boolean };
  /** What GET /events streams (the engine's bus); default: nothing, the stream only beats. */
  events?: EventSource;
  /** The stream's heartbeat and what may wait for one client; default: 15 s, 1,000 events or 1 MiB. */
  eventStream?: Partial<EventStreamSettings>;
  /** Where the dashboard's built files are; default dist/ui (tests give their own). */
  dashboardDirectory?: string;
}

/**
 * Upload ids are up to 128 characters: a longer path parameter is an unknown id (404) up to this
 * length, and a malformed request (400 bad_request) beyond it.
 */
const MAX_PARAM_LENGTH = 256;
const BODY_LIMIT_BYTES = 64 * 1024;
/** How long requests under way may take to finish once the app closes, before their connections are closed. */
const CLOSE_GRACE_MS = 2000;

export type App = FastifyInstance<
  Server,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

export async function buildApp(deps: AppDeps): Promise<App> {
  const base = Fastify({
    ...(deps.logger
      ? { loggerInstance: deps.logger as FastifyBaseLogger, logController: new AccessLogController() }
      : { logger: false }),
    bodyLimit: BODY_LIMIT_BYTES,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors: frameworkErrorHandler,
    clientErrorHandler,
  });
  base.setValidatorCompiler(validatorCompiler);
  acceptOnlyJsonBodies(base);
  installErrorHandling(base);
  closeConnectionsAfterGrace(base);
  if (deps.apiToken !== undefined) {
    requireApiToken(base, deps.apiToken, deps.metrics?.public ? [METRICS_PATH] : []);
  }
  const app = base.withTypeProvider<TypeBoxTypeProvider>();

  for (const schema of NAMED_SCHEMAS) app.addSchema(schema);
  await app.register(
    swagger,
    openApiOptions({ version: deps.version, bearerAuth: deps.apiToken !== undefined }),
  );
  await app.register(healthRoutes, { service: deps.service, version: deps.version });
  await app.register(uploadRoutes, { service: deps.service });
  await app.register(fileRoutes, { service: deps.service });
  await app.register(instanceRoutes, { service: deps.service });
  await app.register(settingsRoutes, { settings: deps.settings ?? SettingsService.detached() });
  if (deps.metrics) await app.register(metricsRoutes, { metrics: deps.metrics.exposition });
  const streamSettings = { ...DEFAULT_EVENT_STREAM_SETTINGS, ...deps.eventStream };
  await app.register(eventRoutes, {
    stream: new EventStream(deps.events, streamSettings),
    flushMs: streamSettings.flushMs,
    heartbeatMs: streamSettings.heartbeatMs,
    maxQueuedEvents: streamSettings.queueLimits.maxEvents,
    maxQueuedBytes: streamSettings.queueLimits.maxBytes,
  });
  await app.register(docsRoutes);
  await app.register(dashboardRoutes, { directory: deps.dashboardDirectory });
  await app.ready();
  return app;
}

/**
 * server.close() closes the idle keep-alive connections and waits for the others, among them a
 * connection that was opened but has sent no request yet (Node counts it as active), which a
 * client's connection pool may keep for a minute or more: the service would not stop until the
 * client let go. After a grace, every connection left is closed.
 */
function closeConnectionsAfterGrace(app: FastifyInstance): void {
  let grace: NodeJS.Timeout | undefined;
  app.addHook('preClose', (done) => {
    grace = setTimeout(() => app.server.closeAllConnections(), CLOSE_GRACE_MS).unref();
    done();
  });
  app.addHook('onClose', (_instance, done) => {
    clearTimeout(grace);
    done();
  });
}

/**
 * JSON is the only body the API reads (any other content type is a 415). Many clients send
 * `Content-Type: application/json` with every request, bodiless DELETEs and POSTs included: an
 * empty body is read as no body rather than refused. A body is read as UTF-8, so one that
 * declares another charset is a 415 too, rather than text decoded wrongly.
 */
function acceptOnlyJsonBodies(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') {
      done(null, undefined);
      return;
    }
    const charset = foreignCharset(request.headers['content-type']);
    if (charset !== undefined) {
      done(unsupportedCharset(charset), undefined);
      return;
    }
    parseJson(request, text, done);
  });
}

/**
 * The charset a content type declares when it is not UTF-8; undefined when it declares none or
 * UTF-8. Parsed with Node's WHATWG MIME type parser (quotes, case, spaces), and compared by the
 * Encoding standard's labels, so `UTF-8`, `"utf-8"` and `utf8` all name UTF-8.
 */
function foreignCharset(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  let charset: string | null;
  try {
    charset = new MIMEType(contentType).params.get('charset');
  } catch {
    return undefined; // Fastify routed it as application/json; a parameter list this parser refuses names no charset
  }
  if (charset === null) return undefined;
  try {
    return new TextDecoder(charset).encoding === 'utf-8' ? undefined : charset;
  } catch {
    return charset; // not an encoding label at all
  }
}
