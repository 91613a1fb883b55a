import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { UploadService } from '../../service/upload-service.js';
import { HealthReply, ref } from '../schemas.js';

export interface HealthRoutesOptions {
  service: UploadService;
  version: string;
}

export const healthRoutes: FastifyPluginAsyncTypebox<HealthRoutesOptions> = async (
  app,
  { service, version },
) => {
  app.get(
    '/',
    {
      schema: {
        operationId: 'getHealth',
        tags: ['health'],
        summary: 'Health of the service',
        description:
          'Answers 200 when the service and its database work, 503 (`degraded`) when the database cannot be reached, or its file was removed or replaced while the service ran (`missing`, `replaced`: then every other request answers 503 `database_unavailable` until the service is restarted). `s3` says whether S3 answers; an S3 outage does not make the service unhealthy (it waits the outage out).',
        response: { 200: ref(HealthReply), 503: ref(HealthReply) },
      },
    },
    async (_request, reply) => {
      const { database, s3 } = await service.health();
      const ok = database === 'reachable';
      return reply.status(ok ? 200 : 503).send({
        status: ok ? 'ok' : 'degraded',
        version,
        database,
        s3: { status: s3.status, since: new Date(s3.since).toISOString(), last_error: s3.lastError },
      });
    },
  );
};
