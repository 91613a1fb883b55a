// GET /metrics: the service's Prometheus metrics in the text exposition format. Kept out of the
// OpenAPI document: its body is Prometheus's format rather than JSON, Prometheus does not read the
// document, and the route exists only while metrics are enabled (METRICS_ENABLED).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';

export const METRICS_PATH = '/metrics';

/** What the route serves: the metrics as text, and their content type. */
export interface MetricsExposition {
  readonly contentType: string;
  scrape(): Promise<string>;
}

export interface MetricsRoutesOptions {
  metrics: MetricsExposition;
}

export const metricsRoutes: FastifyPluginAsyncTypebox<MetricsRoutesOptions> = async (app, { metrics }) => {
  app.get(METRICS_PATH, { schema: { hide: true } }, async (_request, reply) => {
    const text = await metrics.scrape();
    return reply.type(metrics.contentType).header('cache-control', 'no-store').send(text);
  });
};
